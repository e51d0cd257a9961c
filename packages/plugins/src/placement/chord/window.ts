import type { NodeRef } from './node-ref.js';
import { clockwiseKey, inHalfOpen, type Ident } from './ring.js';

/**
 * The stretch of the ring a node knows for certain: its predecessor list,
 * itself, its successor list, in ring order. Keys live at their successor
 * and are backed up on the `backups` nodes after it, so from this stretch a
 * node knows every arc it holds: the one it owns, (p1, self], and the arcs
 * of its `backups` predecessors it backs up, (p(i+1), p(i)]. The two roles
 * are kept apart (`owned`, `backupArcs`): when a predecessor fails, its arc
 * is promoted from backup to owned, and the node restores the backup count.
 *
 * When the successor list went all the way round (`complete`), the node
 * knows the whole ring.
 */
export class RingWindow {
  /** [p_m .. p_1, self, s_1 .. s_k] (distinct); or, complete, [self, s_1 .. s_(n-1)]. */
  readonly nodes: readonly NodeRef[];
  readonly selfIndex: number;
  readonly complete: boolean;
  readonly #replicas: number;
  /** Exclusive start of the span this node holds; undefined: it holds nothing it can tell. */
  readonly heldStart: Ident | undefined;
  /** The whole circle (a ring of at most `replicas` nodes). */
  readonly holdsAll: boolean;
  readonly signature: string;

  constructor(
    self: NodeRef,
    predecessors: readonly NodeRef[],
    successors: readonly NodeRef[],
    complete: boolean,
    backups: number,
  ) {
    this.#replicas = backups + 1;
    // Lists that meet (the successors reach a predecessor) cover the whole circle: a small ring.
    const overlap = predecessors.some((p) => successors.includes(p));
    this.complete = complete || overlap;
    if (this.complete) {
      const others = new Map<string, NodeRef>();
      for (const n of [...successors, ...predecessors]) if (n.id !== self.id) others.set(n.id, n);
      const sorted = [...others.values()].sort((a, b) => {
        const ka = clockwiseKey(a.ident, self.ident);
        const kb = clockwiseKey(b.ident, self.ident);
        return ka < kb ? -1 : ka > kb ? 1 : 0;
      });
      this.nodes = [self, ...sorted];
      this.selfIndex = 0;
      const n = this.nodes.length;
      this.holdsAll = n <= this.#replicas;
      this.heldStart = this.holdsAll ? self.ident : this.nodes[n - 1 - backups]!.ident;
    } else {
      this.nodes = [...[...predecessors].reverse(), self, ...successors];
      this.selfIndex = predecessors.length;
      this.holdsAll = false;
      this.heldStart = this.selfIndex === 0 ? undefined : this.nodes[Math.max(0, this.selfIndex - backups - 1)]!.ident;
    }
    this.signature = `${this.complete ? 'c' : 'w'}${this.nodes.map((n) => `${n.id}@${n.ident}`).join(',')}`;
  }

  /** Whether this node holds (owns or backs up) the key at `x`. */
  holds(x: Ident): boolean {
    if (this.holdsAll) return true;
    return this.heldStart !== undefined && inHalfOpen(x, this.heldStart, this.nodes[this.selfIndex]!.ident);
  }

  /**
   * The replicas of the arc holding `x` (its successor, then the next
   * nodes), `extra` more after them when known; undefined when the window
   * does not reach `x`, or does not know its successor's `backups` followers
   * (only arcs this node holds may have fewer: the ring is small, or the
   * successor list still filling).
   */
  replicasAt(x: Ident, extra = 0): NodeRef[] | undefined {
    const nodes = this.nodes;
    const n = nodes.length;
    if (this.complete) {
      let j = 0;
      if (n > 1) {
        j = -1;
        for (let i = 0; i < n; i++) {
          if (inHalfOpen(x, nodes[(i - 1 + n) % n]!.ident, nodes[i]!.ident)) {
            j = i;
            break;
          }
        }
      }
      const count = Math.min(n, this.#replicas + extra);
      const out: NodeRef[] = [];
      for (let i = 0; i < count; i++) out.push(nodes[(j + i) % n]!);
      return out;
    }
    for (let j = 0; j < n; j++) {
      // The arc ending at a node of the window is known even when the node before it is not (j = 0).
      if (x !== nodes[j]!.ident && (j === 0 || !inHalfOpen(x, nodes[j - 1]!.ident, nodes[j]!.ident))) continue;
      const end = j + this.#replicas;
      if (end > n && j > this.selfIndex) return undefined;
      return nodes.slice(j, Math.min(n, end + extra));
    }
    return undefined;
  }

  /** Exclusive start of the arc holding `x`, when the window reaches it. */
  arcStart(x: Ident): Ident | undefined {
    const nodes = this.nodes;
    const n = nodes.length;
    if (this.complete) {
      if (n === 1) return nodes[0]!.ident;
      for (let i = 0; i < n; i++) {
        const start = nodes[(i - 1 + n) % n]!.ident;
        if (inHalfOpen(x, start, nodes[i]!.ident)) return start;
      }
      return undefined;
    }
    for (let j = 1; j < n; j++) if (inHalfOpen(x, nodes[j - 1]!.ident, nodes[j]!.ident)) return nodes[j - 1]!.ident;
    return undefined;
  }

  /** The arc this node owns (its predecessor, itself], when it knows its predecessor. */
  owned(): { readonly start: Ident; readonly end: Ident } | undefined {
    const self = this.nodes[this.selfIndex]!;
    if (this.complete) {
      const n = this.nodes.length;
      return { start: this.nodes[(n - 1) % n]!.ident, end: self.ident };
    }
    if (this.selfIndex === 0) return undefined;
    return { start: this.nodes[this.selfIndex - 1]!.ident, end: self.ident };
  }

  /** The arcs this node backs up, nearest predecessor's first, each with the node that owns it. */
  backupArcs(): { readonly start: Ident; readonly end: Ident; readonly owner: NodeRef }[] {
    const out: { start: Ident; end: Ident; owner: NodeRef }[] = [];
    const nodes = this.nodes;
    const n = nodes.length;
    const backups = this.#replicas - 1;
    if (this.complete) {
      for (let i = 1; i <= Math.min(backups, n - 1); i++) {
        const owner = nodes[(n - i) % n]!;
        out.push({ start: nodes[(n - i - 1 + n) % n]!.ident, end: owner.ident, owner });
      }
      return out;
    }
    for (let i = 1; i <= backups && this.selfIndex - i >= 1; i++) {
      const owner = nodes[this.selfIndex - i]!;
      out.push({ start: nodes[this.selfIndex - i - 1]!.ident, end: owner.ident, owner });
    }
    return out;
  }
}
