import type { Move } from '@kvmesh/core';
import type { Metric } from './metric.js';
import type { NodeRef } from './node-ref.js';
import { clockwiseKey, inHalfOpen, type Ident } from './ring.js';
import type { RingWindow } from './window.js';

/**
 * The key moves between two windows of one node: every arc this node holds
 * in either whose replicas differ, as one Move per maximal run of arcs with
 * the same old and new replicas. `from` is the replicas before (for an arc
 * this node did not hold before, the replicas it knows still hold it:
 * the new ones but itself), `to` the replicas after. Arcs are cut at every
 * node of either window, so two nodes that know the same nodes name a range
 * alike: the old owner's MoveDone matches the new owner's pending range.
 * Arcs this node held whose owners lie beyond what it knows now (a burst of
 * joins in front of it) come back as `orphans`.
 */
export function ownershipMoves(
  before: RingWindow | undefined,
  after: RingWindow,
  self: NodeRef,
  metric: Metric,
): OwnershipDiff {
  const orphans: Arc[] = [];
  const boundaries = new Map<Ident, string>();
  for (const window of before === undefined ? [after] : [before, after]) {
    for (const node of window.nodes) boundaries.set(node.ident, clockwiseKey(node.ident, self.ident));
  }
  const cuts = [...boundaries.entries()].sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)).map((e) => e[0]);
  const moves: ArcMove[] = [];
  let open: { start: Ident; end: Ident; from: string[]; to: string[]; signature: string } | undefined;
  const close = (): void => {
    if (open === undefined) return;
    moves.push(move(open.start, open.end, open.from, open.to, metric));
    open = undefined;
  };
  for (let i = 0; i < cuts.length; i++) {
    const start = cuts[(i - 1 + cuts.length) % cuts.length]!;
    const end = cuts[i]!;
    // A window that does not know where the arc around `end` starts (a node that has not learnt its
    // predecessor yet) cannot tell whether unknown nodes sit inside the segment: nothing to say about it.
    if (after.arcStart(end) === undefined && before?.arcStart(end) === undefined) {
      close();
      continue;
    }
    // Either window counts only where it knows the arc's start (what admit goes by): a window that
    // does not may be missing nodes inside the segment.
    const now = after.arcStart(end) !== undefined ? after.replicasAt(end) : undefined;
    const then = before?.arcStart(end) !== undefined ? before.replicasAt(end) : undefined;
    const heldNow = now?.some((n) => n.id === self.id) ?? false;
    const heldThen = then?.some((n) => n.id === self.id) ?? false;
    if (heldThen && now === undefined) {
      // Held, and now beyond what this node knows: the new owners must be looked up.
      const last = orphans[orphans.length - 1];
      if (last !== undefined && last.end === start) orphans[orphans.length - 1] = { start: last.start, end };
      else orphans.push({ start, end });
      close();
      continue;
    }
    let change: { from: string[]; to: string[] } | undefined;
    if ((heldNow || heldThen) && now !== undefined) {
      const to = now.map((n) => n.id);
      const from = then !== undefined ? then.map((n) => n.id) : to.filter((id) => id !== self.id);
      if (from.length > 0 && !sameIds(from, to)) change = { from, to };
    }
    if (change === undefined) {
      close();
      continue;
    }
    const signature = `${change.from.join(',')}>${change.to.join(',')}`;
    if (open !== undefined && open.signature === signature && open.end === start) {
      open.end = end;
    } else {
      close();
      open = { start, end, ...change, signature };
    }
  }
  close();
  // A run that wraps past the first cut is two pieces; join them.
  if (moves.length > 1) {
    const first = moves[0]!;
    const last = moves[moves.length - 1]!;
    if (last.end === first.start && sameIds(first.from, last.from) && sameIds(first.to, last.to)) {
      moves.splice(0, 1);
      moves[moves.length - 1] = move(last.start, first.end, last.from, last.to, metric);
    }
  }
  return { moves, orphans };
}

/** The arc (start, end]. */
export interface Arc {
  readonly start: Ident;
  readonly end: Ident;
}

export interface OwnershipDiff {
  readonly moves: ArcMove[];
  /** Arcs this node held and no longer knows the owners of: their new owners are found by lookup. */
  readonly orphans: Arc[];
}

/** A Move of the arc (start, end]. */
export interface ArcMove extends Move {
  readonly start: Ident;
  readonly end: Ident;
}

export function move(
  start: Ident,
  end: Ident,
  from: readonly string[],
  to: readonly string[],
  metric: Metric,
): ArcMove {
  return Object.freeze({
    start,
    end,
    range: `(${start}, ${end}]`,
    contains: (key: string) => {
      try {
        return inHalfOpen(metric.keyIdent(key), start, end);
      } catch {
        return false;
      }
    },
    from: Object.freeze([...from]),
    to: Object.freeze([...to]),
  });
}

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((id) => set.has(id));
}
