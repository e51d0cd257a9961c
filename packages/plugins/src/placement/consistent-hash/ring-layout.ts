import type { Member, Move, ViewParameters } from '@kvmesh/core';
import type { HashName, KeyHash } from '../support/hash.js';
import { PointCache } from '../support/hash-ring.js';
import type { HashRing } from '../support/hash-ring.js';
import type { Layout, LayoutStrategy } from '../support/layout.js';
import { ringDrawing } from '../support/drawing.js';
import { ringMoves } from '../support/moves.js';
import type { QuorumOption } from '../support/quorum.js';
import { RoutesBuilder } from '../support/routes.js';
import type { LayoutRoutes } from '../support/routes.js';
import { checkFactorParameters, factorOf } from './view-parameters.js';

export interface RingSettings {
  readonly replicationFactor: number;
  readonly fallbacks: number;
  readonly virtualNodes: number;
  readonly writeQuorum: QuorumOption;
  readonly readQuorum: QuorumOption;
  readonly hash: KeyHash;
  readonly hashName: HashName;
}

/**
 * The dht-node ring: `virtualNodes` points per member; a key's replicas are
 * the first `replicationFactor` distinct members clockwise from its hash
 * (its preference list), its fallbacks the next `fallbacks` distinct ones.
 */
export class RingLayout implements Layout {
  readonly members: readonly Member[];
  readonly ring: HashRing;
  /** Replicas per key this layout was built with: the view's parameter, else the option. */
  readonly replicationFactor: number;
  readonly #hash: KeyHash;
  /** Distinct owners per point: replicas first, then fallbacks. */
  readonly #walk: Int32Array;
  readonly #width: number;
  readonly #replicas: number;
  #idsAt: (readonly string[])[] | undefined;

  constructor(members: readonly Member[], ring: HashRing, settings: RingSettings, replicationFactor: number) {
    this.members = members;
    this.ring = ring;
    this.replicationFactor = replicationFactor;
    this.#hash = settings.hash;
    this.#replicas = Math.min(replicationFactor, members.length);
    this.#width = Math.min(replicationFactor + settings.fallbacks, members.length);
    this.#walk = ring.distinctOwners(this.#width);
  }

  get slots(): number {
    return this.ring.size;
  }

  slotOf(key: string): number {
    return this.ring.successor(this.#hash(key));
  }

  replicaIndices(slot: number): readonly number[] {
    return Array.from(this.#walk.subarray(slot * this.#width, slot * this.#width + this.#replicas));
  }

  fallbackIndices(slot: number): readonly number[] {
    return Array.from(this.#walk.subarray(slot * this.#width + this.#replicas, (slot + 1) * this.#width));
  }

  hasReplica(slot: number, member: number): boolean {
    const start = slot * this.#width;
    for (let k = start; k < start + this.#replicas; k++) if (this.#walk[k] === member) return true;
    return false;
  }

  /** Replica ids of point `slot`'s keys, sorted (for plans). */
  idsAt(slot: number): readonly string[] {
    this.#idsAt ??= new Array<readonly string[]>(this.slots);
    let ids = this.#idsAt[slot];
    if (ids === undefined) {
      ids = this.replicaIndices(slot)
        .map((i) => this.members[i]!.id)
        .sort();
      this.#idsAt[slot] = ids;
    }
    return ids;
  }
}

export class RingStrategy implements LayoutStrategy<RingLayout> {
  readonly name = 'consistent-hash';
  readonly writeQuorum: QuorumOption;
  readonly readQuorum: QuorumOption;
  readonly #settings: RingSettings;
  readonly #points: PointCache;

  constructor(settings: RingSettings) {
    this.#settings = settings;
    this.writeQuorum = settings.writeQuorum;
    this.readQuorum = settings.readQuorum;
    this.#points = new PointCache(settings.hash, settings.virtualNodes);
  }

  build(members: readonly Member[], parameters: ViewParameters): RingLayout {
    const factor = factorOf(parameters, this.#settings.replicationFactor);
    return new RingLayout(members, this.#points.ring(members.map((m) => m.id)), this.#settings, factor);
  }

  checkParameters(parameters: ViewParameters, members: number): void {
    checkFactorParameters(parameters, members, { writeQuorum: this.writeQuorum, readQuorum: this.readQuorum });
  }

  plan(before: RingLayout, after: RingLayout): Move[] {
    return ringMoves(before, after, this.#settings.hash);
  }

  /** A key's point is the first at or after its hash: each point ends the range of hashes since the point before it. */
  routes(layout: RingLayout): LayoutRoutes {
    const routes = new RoutesBuilder(this.#settings.hashName, 'listed');
    const positions = layout.ring.positions;
    for (let i = 0; i < positions.length; i++) routes.add(positions[i]!, layout.replicaIndices(i));
    return routes.build();
  }

  describe(layout: RingLayout): Record<string, unknown> {
    const s = this.#settings;
    const shares = layout.ring.shares();
    return {
      mode: 'ring',
      hash: s.hashName,
      replicationFactor: layout.replicationFactor,
      fallbacks: s.fallbacks,
      virtualNodes: s.virtualNodes,
      points: layout.ring.size,
      // Share of the hash space each member is primary for: how even the ring is.
      ring: layout.members.map((m, i) => ({ id: m.id, primaryShare: Number(shares[i]!.toFixed(4)) })),
      drawing: ringDrawing(
        layout.ring,
        layout.members,
        `${layout.ring.size} virtual points, ${s.virtualNodes} per member; a key belongs to the next ${layout.replicationFactor} members clockwise`,
      ),
    };
  }
}
