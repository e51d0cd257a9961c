import type { Clock, ReplicaSet } from '@kvmesh/core';
import { LRUCache } from 'lru-cache';
import { inHalfOpen, type Ident } from './ring.js';

interface Route {
  readonly start: Ident;
  readonly end: Ident;
  readonly set: ReplicaSet;
}

/**
 * The replica sets of arcs this node looked up lately, so keys near each
 * other skip the routing. An arc is forgotten when a replica refused a key
 * of it (the coordinator locates again with `retry`), when one of its
 * replicas is found failed, after `ttlMs` on the injected clock, and as the
 * least recently used one.
 */
export class RouteCache {
  readonly #max: number;
  readonly #ttlMs: number;
  readonly #clock: Clock;
  /** Built on the first lookup: a node that never routes (or ten thousand simulated ones) holds no slots. */
  #cache: LRUCache<Ident, Route> | undefined;

  constructor(max: number, ttlMs: number, clock: Clock) {
    this.#max = max;
    this.#ttlMs = ttlMs;
    this.#clock = clock;
  }

  get size(): number {
    return this.#cache?.size ?? 0;
  }

  /** The cached set of the arc holding `target`, marked recently used. */
  find(target: Ident): ReplicaSet | undefined {
    return this.#cache?.find((route) => inHalfOpen(target, route.start, route.end))?.set;
  }

  remember(start: Ident, end: Ident, set: ReplicaSet): void {
    if (this.#max === 0) return;
    const clock = this.#clock;
    this.#cache ??= new LRUCache<Ident, Route>({ max: this.#max, ttl: this.#ttlMs, perf: { now: () => clock.now() } });
    this.#cache.set(end, { start, end, set });
  }

  /** Drops the arc holding `target`. */
  forget(target: Ident): void {
    const cache = this.#cache;
    if (cache === undefined) return;
    const stale: Ident[] = [];
    for (const [end, route] of cache.entries()) if (inHalfOpen(target, route.start, route.end)) stale.push(end);
    for (const end of stale) cache.delete(end);
  }

  /** Drops every arc that names node `id` among its replicas. */
  forgetNode(id: string): void {
    const cache = this.#cache;
    if (cache === undefined) return;
    const stale: Ident[] = [];
    for (const [end, route] of cache.entries()) if (route.set.replicas.some((m) => m.id === id)) stale.push(end);
    for (const end of stale) cache.delete(end);
  }
}
