import { LRUCache } from 'lru-cache';
import type { NodeRef } from './node-ref.js';
import { clockwiseKey } from './ring.js';

interface Seen {
  readonly ref: NodeRef;
  readonly atMs: number;
}

/**
 * The nodes of the ring a node heard from, or saw in its own lists, lately,
 * remembered past their failure (the lists forget a failed node at once).
 * Two uses: a node that lost every successor joins again through them, and
 * a node whose whole ring shrank to a minority of the nodes it saw lately
 * (its side of a partition re-formed as a ring of its own) knows it.
 */
export class RingMemory {
  readonly #nodes: LRUCache<string, Seen>;
  readonly #memoryMs: number;

  /** @param max nodes kept (the least recently seen go first); @param memoryMs how long a node seen counts. */
  constructor(max: number, memoryMs: number) {
    this.#nodes = new LRUCache({ max });
    this.#memoryMs = memoryMs;
  }

  saw(ref: NodeRef, nowMs: number): void {
    this.#nodes.set(ref.id, { ref, atMs: nowMs });
  }

  /** The node left the ring for good (a graceful leave). */
  forget(id: string): void {
    this.#nodes.delete(id);
  }

  get size(): number {
    return this.#nodes.size;
  }

  /** Every node kept, seen lately or not. */
  refs(): NodeRef[] {
    return [...this.#nodes.values()].map((s) => s.ref);
  }

  /** The nodes kept, the nearest clockwise from `origin` first; with `sinceMs`, only those seen since then. */
  nearest(origin: string, sinceMs?: number): NodeRef[] {
    return [...this.#nodes.values()]
      .filter((s) => sinceMs === undefined || s.atMs >= sinceMs)
      .map((s) => ({ ref: s.ref, key: clockwiseKey(s.ref.ident, origin) }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map((e) => e.ref);
  }

  /** Nodes seen within the memory, besides the one remembering. */
  recent(nowMs: number): number {
    let count = 0;
    for (const s of this.#nodes.values()) if (nowMs - s.atMs <= this.#memoryMs) count++;
    return count;
  }

  get memoryMs(): number {
    return this.#memoryMs;
  }
}
