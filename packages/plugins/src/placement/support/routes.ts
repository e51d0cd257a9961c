import type { RoutingTable } from '@kvmesh/core';

/** A layout's routing table with member indices (LayoutPlacement turns them into ids and adds the epoch). */
export interface LayoutRoutes {
  readonly hash: RoutingTable['hash'];
  readonly order: RoutingTable['order'];
  /** Replica lists as member indices, in preference order. */
  readonly replicaSets: readonly (readonly number[])[];
  /** Inclusive upper ends of the ranges, ascending. */
  readonly ends: readonly number[];
  /** For each range, its list's index in `replicaSets`. */
  readonly sets: readonly number[];
}

/**
 * Builds LayoutRoutes from consecutive ranges given in ascending order of
 * their ends: equal replica lists are stored once, and a range with the
 * list of the one before it is merged into it (its end moves up).
 */
export class RoutesBuilder {
  readonly #hash: RoutingTable['hash'];
  readonly #order: RoutingTable['order'];
  readonly #replicaSets: (readonly number[])[] = [];
  readonly #index = new Map<string, number>();
  readonly #ends: number[] = [];
  readonly #sets: number[] = [];

  constructor(hash: RoutingTable['hash'], order: RoutingTable['order']) {
    this.#hash = hash;
    this.#order = order;
  }

  /** The range up to `end` (inclusive) belongs to `replicas`. */
  add(end: number, replicas: readonly number[]): void {
    const label = replicas.join(',');
    let set = this.#index.get(label);
    if (set === undefined) {
      set = this.#replicaSets.length;
      this.#replicaSets.push(Object.freeze([...replicas]));
      this.#index.set(label, set);
    }
    const last = this.#sets.length - 1;
    if (last >= 0 && this.#sets[last] === set) this.#ends[last] = end;
    else {
      this.#ends.push(end);
      this.#sets.push(set);
    }
  }

  build(): LayoutRoutes {
    return Object.freeze({
      hash: this.#hash,
      order: this.#order,
      replicaSets: Object.freeze(this.#replicaSets),
      ends: Object.freeze(this.#ends),
      sets: Object.freeze(this.#sets),
    });
  }
}
