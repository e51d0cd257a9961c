import type { NodeRef } from './node-ref.js';
import { clockwiseKey, fingerStart, inHalfOpen, inOpen, type Ident } from './ring.js';
import { RingWindow } from './window.js';

/** What a node answers about the successor of a target: the replicas, or nodes closer to it. */
export type Answer =
  | { readonly done: true; readonly replicas: readonly NodeRef[]; readonly rangeStart: Ident }
  | { readonly done: false; readonly closer: readonly NodeRef[] };

/** Nodes a lookup step names as closer to the target (the best one and alternatives if it fails). */
const CLOSER_CANDIDATES = 3;
/** Members past the replicas an answer names: the fallback for hinted writes. */
export const ANSWER_FALLBACKS = 1;

export interface RoutingTableOptions {
  readonly self: NodeRef;
  readonly bits: number;
  /** Successor list length (Chord's r). */
  readonly successors: number;
  /** Backups per key; the predecessor list is one longer, so the last backed-up arc has a known start. */
  readonly backups: number;
}

/**
 * One node's Chord state (Stoica et al. 2001, section 4): the predecessor
 * list, the successor list of length r, and the finger table, finger i
 * being the first node at or after self + 2^i. Pure state: the placement's
 * maintenance and message handlers change it; every change bumps `version`.
 */
export class RoutingTable {
  readonly self: NodeRef;
  readonly bits: number;
  readonly #o: RoutingTableOptions;
  #predecessors: NodeRef[] = [];
  #successors: NodeRef[] = [];
  /** The successor list went round the ring to this node: it lists every other node. */
  #complete = false;
  /** Finger i for i >= #trivial; below it every finger is the successor. */
  readonly #fingers: (NodeRef | undefined)[];
  /** Finger starts, computed when first needed (most fingers of a large ring are the successor). */
  readonly #starts: (Ident | undefined)[];
  readonly #selfValue: bigint;
  /** Fingers below this index start in (self, successor]: they are the successor. */
  #trivial = 0;
  /** Ids found failed, until when (ms) their mentions by others are ignored. */
  readonly #dead = new Map<string, number>();
  #routes: { readonly refs: NodeRef[]; readonly keys: string[] } | undefined;
  #window: RingWindow | undefined;
  #digest: number | undefined;
  version = 0;

  constructor(options: RoutingTableOptions) {
    this.#o = options;
    this.self = options.self;
    this.bits = options.bits;
    this.#fingers = new Array<NodeRef | undefined>(options.bits).fill(undefined);
    this.#starts = new Array<Ident | undefined>(options.bits).fill(undefined);
    this.#selfValue = BigInt(`0x${options.self.ident}`);
  }

  get predecessors(): readonly NodeRef[] {
    return this.#predecessors;
  }

  get successors(): readonly NodeRef[] {
    return this.#successors;
  }

  get complete(): boolean {
    return this.#complete;
  }

  get successor(): NodeRef | undefined {
    return this.#successors[0];
  }

  get predecessor(): NodeRef | undefined {
    return this.#predecessors[0];
  }

  finger(i: number): NodeRef | undefined {
    return i < this.#trivial ? this.successor : this.#fingers[i];
  }

  /** The start of finger i: self + 2^i. */
  start(i: number): Ident {
    let start = this.#starts[i];
    if (start === undefined) {
      start = fingerStart(this.self.ident, i, this.bits);
      this.#starts[i] = start;
    }
    return start;
  }

  /** Distinct nodes of the finger table, in finger order. */
  distinctFingers(): NodeRef[] {
    const out: NodeRef[] = [];
    const successor = this.successor;
    if (this.#trivial > 0 && successor !== undefined) out.push(successor);
    for (let i = this.#trivial; i < this.bits; i++) {
      const f = this.#fingers[i];
      if (f !== undefined && out[out.length - 1] !== f && !out.includes(f)) out.push(f);
    }
    return out;
  }

  /** The ring around this node as it knows it now. */
  window(): RingWindow {
    this.#window ??= new RingWindow(this.self, this.#predecessors, this.#successors, this.#complete, this.#o.backups);
    return this.#window;
  }

  isDead(id: string, now: number): boolean {
    const until = this.#dead.get(id);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#dead.delete(id);
    return false;
  }

  /** The node answered or wrote: whatever failure was recorded for it is over. */
  heard(id: string): void {
    this.#dead.delete(id);
  }

  /**
   * Forgets every failure recorded: a node that lost every successor was
   * most likely cut off itself, so the nodes it found failed meanwhile may
   * well be alive.
   */
  forgiveAll(): void {
    this.#dead.clear();
  }

  /** Every successor failed and the ring did not shrink to this node alone: it has lost the ring. */
  get lost(): boolean {
    return this.#successors.length === 0 && !this.#complete;
  }

  /**
   * Records that `id` failed (or left) and forgets it everywhere: lists,
   * fingers. Its mentions in other nodes' lists are ignored until `untilMs`.
   * @returns whether this node's lists changed.
   */
  markDead(id: string, untilMs: number): boolean {
    this.#dead.set(id, untilMs);
    const before = this.#predecessors.length + this.#successors.length;
    this.#predecessors = this.#predecessors.filter((n) => n.id !== id);
    this.#successors = this.#successors.filter((n) => n.id !== id);
    let fingers = false;
    for (let i = 0; i < this.#fingers.length; i++) {
      if (this.#fingers[i]?.id === id) {
        this.#fingers[i] = undefined;
        fingers = true;
      }
    }
    const lists = before !== this.#predecessors.length + this.#successors.length;
    if (lists && this.#successors.length === 0) this.#complete = false;
    if (lists) this.#updateTrivial();
    if (lists) this.#changed();
    else if (fingers) this.#fingersChanged();
    return lists;
  }

  /**
   * The successor list: `first`, then `rest` (the successor's own list), without
   * this node, duplicates or dead nodes, at most r long. Meeting this node
   * means the list went all the way round: the ring is complete.
   */
  setSuccessors(first: NodeRef, rest: readonly NodeRef[], now: number): void {
    const out: NodeRef[] = [];
    let complete = false;
    for (const n of [first, ...rest]) {
      if (n.id === this.self.id) {
        complete = true;
        break;
      }
      if (this.isDead(n.id, now) || out.includes(n)) continue;
      out.push(n);
      if (out.length === this.#o.successors) break;
    }
    if (sameRefs(out, this.#successors) && complete === this.#complete) return;
    this.#successors = out;
    this.#complete = complete;
    this.#updateTrivial();
    this.#changed();
  }

  /** The predecessor list, likewise: `first`, then its own predecessors; backups + 1 long. */
  setPredecessors(list: readonly NodeRef[], now: number): void {
    const out: NodeRef[] = [];
    for (const n of list) {
      if (n.id === this.self.id) break;
      if (this.isDead(n.id, now) || out.includes(n)) continue;
      out.push(n);
      if (out.length === this.#o.backups + 1) break;
    }
    if (sameRefs(out, this.#predecessors)) return;
    this.#predecessors = out;
    this.#changed();
  }

  /** This node alone: a ring of one that owns every key. */
  alone(): void {
    this.#predecessors = [];
    this.#successors = [];
    this.#complete = true;
    this.#trivial = 0;
    this.#changed();
  }

  /**
   * Finger `i` is `node`; so is every later finger whose start lies in
   * (start_i, node]. @returns the next finger index it did not cover.
   */
  setFinger(i: number, node: NodeRef | undefined): number {
    let j = i;
    let changed = false;
    do {
      if (this.#fingers[j] !== node) {
        this.#fingers[j] = node;
        changed = true;
      }
      j++;
    } while (node !== undefined && j < this.bits && inHalfOpen(this.start(j), this.start(i), node.ident));
    if (changed) this.#fingersChanged();
    return j;
  }

  /** Fills every finger from the nodes `known` (a joining node's first guess: its successor's table). */
  seedFingers(known: readonly NodeRef[], now: number): void {
    const byId = new Map<string, NodeRef>();
    for (const n of known) if (n.id !== this.self.id && !this.isDead(n.id, now)) byId.set(n.id, n);
    if (byId.size === 0) return;
    const origin = this.self.ident;
    const sorted = [...byId.values()]
      .map((ref) => ({ ref, key: clockwiseKey(ref.ident, origin) }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    // Finger starts grow clockwise from this node, so one walk finds each one's first node at or after it.
    let j = 0;
    for (let i = this.#trivial; i < this.bits; i++) {
      const key = clockwiseKey(this.start(i), origin);
      while (j < sorted.length && sorted[j]!.key < key) j++;
      this.#fingers[i] = j < sorted.length ? sorted[j]!.ref : sorted[0]!.ref;
    }
    this.#fingersChanged();
  }

  /** A digest of the predecessor and successor lists, so a peer can tell they did not change. */
  digest(): number {
    if (this.#digest === undefined) {
      let text = '';
      for (const n of this.#predecessors) text += `${n.id}@${n.address}#${n.ident};`;
      text += '|';
      for (const n of this.#successors) text += `${n.id}@${n.address}#${n.ident};`;
      // Never 0, which names "nothing known".
      this.#digest = fnv1a(text) || 1;
    }
    return this.#digest;
  }

  /**
   * The first finger index worth refreshing at or after `from`: fingers whose
   * start lies in (self, successor] are the successor and need no lookup.
   */
  nextFingerIndex(from: number): number {
    if (this.#trivial >= this.bits) return this.bits - 1;
    return from >= this.#trivial && from < this.bits ? from : this.#trivial;
  }

  /**
   * What this node can say about the successor of `target` (the FindSuccessor
   * step): done when the target is in its own arc or between it and its
   * successor (Chord's find_successor), the replicas being the successor
   * and the nodes after it; else the closest preceding nodes. Deeper
   * entries of the lists would shorten some lookups, but they are the
   * stalest (news of a join travels back one node per period), and a
   * stale "done" sends every retry to the same wrong primary.
   */
  answer(target: Ident): Answer {
    const window = this.window();
    const self = this.self.ident;
    const predecessor = this.predecessor;
    const successor = this.successor;
    const own =
      (predecessor !== undefined && inHalfOpen(target, predecessor.ident, self)) ||
      (successor === undefined && this.#complete);
    if (own || (successor !== undefined && inHalfOpen(target, self, successor.ident))) {
      const replicas = window.replicasAt(target, ANSWER_FALLBACKS);
      // Fewer replicas than a key has, in a ring not known whole: the successor list lost nodes (this
      // node was cut off); naming so few would let a write be acknowledged by fewer than promised.
      if (replicas !== undefined && (window.complete || replicas.length > this.#o.backups)) {
        return { done: true, replicas, rangeStart: window.arcStart(target) ?? target };
      }
    }
    return { done: false, closer: this.closestPreceding(target, CLOSER_CANDIDATES) };
  }

  /**
   * Up to `count` known nodes in (self, target), the closest to `target`
   * first (Chord's closest_preceding_finger, with the successor list too).
   */
  closestPreceding(target: Ident, count: number): NodeRef[] {
    const routes = this.#routesSorted();
    const key = clockwiseKey(target, this.self.ident);
    let lo = 0;
    let hi = routes.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (routes.keys[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    const out: NodeRef[] = [];
    for (let i = lo - 1; i >= 0 && out.length < count; i--) out.push(routes.refs[i]!);
    return out;
  }

  /** Every node this node knows, nearest clockwise first. */
  known(): readonly NodeRef[] {
    return this.#routesSorted().refs;
  }

  #routesSorted(): { readonly refs: NodeRef[]; readonly keys: string[] } {
    if (this.#routes !== undefined) return this.#routes;
    const byId = new Map<string, NodeRef>();
    for (const n of this.#successors) byId.set(n.id, n);
    for (const n of this.#predecessors) byId.set(n.id, n);
    for (let i = this.#trivial; i < this.bits; i++) {
      const n = this.#fingers[i];
      if (n !== undefined && n.id !== this.self.id) byId.set(n.id, n);
    }
    const entries = [...byId.values()].map((ref) => ({ ref, key: clockwiseKey(ref.ident, this.self.ident) }));
    entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.#routes = { refs: entries.map((e) => e.ref), keys: entries.map((e) => e.key) };
    return this.#routes;
  }

  /** Fingers whose start lies in (self, successor] are the successor: those with 2^i <= the distance to it. */
  #updateTrivial(): void {
    const successor = this.#successors[0];
    if (successor === undefined) {
      this.#trivial = 0;
      return;
    }
    const modulus = 1n << BigInt(this.bits);
    const distance = (BigInt(`0x${successor.ident}`) - this.#selfValue + modulus) % modulus;
    this.#trivial = distance === 0n ? this.bits : distance.toString(2).length;
  }

  /** Only fingers changed: the window, the lists' digest and the ring view stay. */
  #fingersChanged(): void {
    this.version++;
    this.#routes = undefined;
  }

  #changed(): void {
    this.version++;
    this.#routes = undefined;
    this.#window = undefined;
    this.#digest = undefined;
  }
}

/** x ∈ [a, b) on the circle. */
export function inClosedOpen(x: Ident, a: Ident, b: Ident): boolean {
  return x === a || (x !== b && inOpen(x, a, b));
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

function sameRefs(a: readonly NodeRef[], b: readonly NodeRef[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i] || sameNode(n, b[i]!));
}

function sameNode(a: NodeRef, b: NodeRef): boolean {
  return a.id === b.id && a.ident === b.ident && a.address === b.address;
}
