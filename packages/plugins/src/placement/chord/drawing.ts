import type { RingDrawing } from '@kvmesh/core';
import type { NodeRef } from './node-ref.js';

/** Where `ident` (hex, `bits` wide) is on the circle, in [0, 1). */
function positionOf(ident: string, bits: number): number {
  const scale = 1n << 32n;
  return Number((BigInt(`0x${ident}`) * scale) >> BigInt(bits)) / Number(scale);
}

/**
 * The Chord ring as this node knows it, for the dashboard: itself, its
 * predecessors, successors and fingers on the identifier circle, with a
 * chord from itself to every finger.
 */
export function chordDrawing(
  self: NodeRef,
  neighbours: { readonly predecessors: readonly NodeRef[]; readonly successors: readonly NodeRef[] },
  fingers: readonly NodeRef[],
  bits: number,
): RingDrawing {
  const seen = new Map<string, NodeRef>();
  for (const n of [self, ...neighbours.predecessors, ...neighbours.successors, ...fingers]) seen.set(n.id, n);
  const at = positionOf(self.ident, bits);
  return {
    shape: 'ring',
    caption: `this node's view of the ring: ${neighbours.predecessors.length} predecessors, ${neighbours.successors.length} successors and ${fingers.length} distinct fingers (lines: its fingers)`,
    points: [...seen.values()].map((n) => ({ at: positionOf(n.ident, bits), member: n.id })),
    links: fingers.filter((f) => f.id !== self.id).map((f) => ({ from: at, to: positionOf(f.ident, bits) })),
  };
}
