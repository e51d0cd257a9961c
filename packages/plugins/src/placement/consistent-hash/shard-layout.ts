import type { GroupsDrawing } from '@kvmesh/core';
import type { Member, Move, ViewParameters } from '@kvmesh/core';
import { mix32 } from '../support/hash.js';
import type { HashName, KeyHash } from '../support/hash.js';
import { PointCache } from '../support/hash-ring.js';
import type { HashRing } from '../support/hash-ring.js';
import type { Layout, LayoutStrategy } from '../support/layout.js';
import { ringMoves } from '../support/moves.js';
import type { QuorumOption } from '../support/quorum.js';
import { RoutesBuilder } from '../support/routes.js';
import type { LayoutRoutes } from '../support/routes.js';
import { checkFactorParameters, factorOf } from './view-parameters.js';

export interface ShardSettings {
  readonly replicationFactor: number;
  readonly virtualNodes: number;
  readonly writeQuorum: QuorumOption;
  readonly readQuorum: QuorumOption;
  readonly hash: KeyHash;
  readonly hashName: HashName;
}

/**
 * Members (sorted by id) cut into shards, CSE138 style: `floor(n / factor)`
 * shards (at least one) of `factor` consecutive members; the `n mod factor`
 * members left over join the last shards, one each, so no shard is ever
 * smaller than the factor while there are enough members. Every node sorts
 * the same ids, so every node computes the same shards.
 */
export function cutShards(count: number, factor: number): number[][] {
  if (count === 0) return [];
  const shards = Math.max(1, Math.floor(count / factor));
  const out = Array.from({ length: shards }, (_, s) =>
    Array.from({ length: Math.min(factor, count) }, (_, k) => s * factor + k),
  );
  for (let extra = shards * factor, s = shards - 1; extra < count; extra++, s = s === 0 ? shards - 1 : s - 1) {
    out[s]!.push(extra);
  }
  return out;
}

/**
 * Keys hash onto a ring of `virtualNodes` points per shard; a key's replicas
 * are its shard's members. Their order is rotated by the key's hash so that
 * primaries (which stamp versions) spread over the shard rather than all
 * being its first member.
 */
export class ShardLayout implements Layout {
  readonly members: readonly Member[];
  readonly ring: HashRing;
  /** Member indices per shard, ascending. */
  readonly shards: readonly (readonly number[])[];
  /** Members per shard this layout was cut with: the view's parameter, else the option. */
  readonly replicationFactor: number;
  readonly #hash: KeyHash;
  /** Shard of each member. */
  readonly #shardOf: Int32Array;
  /** Slots per shard: the largest shard's size (a slot is a shard and a rotation). */
  readonly #stride: number;
  #idsAt: (readonly string[])[] | undefined;

  constructor(
    members: readonly Member[],
    ring: HashRing,
    shards: number[][],
    hash: KeyHash,
    replicationFactor: number,
  ) {
    this.members = members;
    this.ring = ring;
    this.shards = shards;
    this.replicationFactor = replicationFactor;
    this.#hash = hash;
    this.#shardOf = new Int32Array(members.length);
    shards.forEach((shard, s) => shard.forEach((m) => (this.#shardOf[m] = s)));
    this.#stride = Math.max(1, ...shards.map((s) => s.length));
  }

  get slots(): number {
    return this.shards.length * this.#stride;
  }

  slotOf(key: string): number {
    const h = this.#hash(key);
    const shard = this.ring.owners[this.ring.successor(h)]!;
    return shard * this.#stride + (mix32(h) % this.shards[shard]!.length);
  }

  replicaIndices(slot: number): readonly number[] {
    const shard = this.shards[Math.floor(slot / this.#stride)]!;
    const rotation = slot % this.#stride;
    return [...shard.slice(rotation), ...shard.slice(0, rotation)];
  }

  fallbackIndices(): readonly number[] {
    return [];
  }

  hasReplica(slot: number, member: number): boolean {
    return this.#shardOf[member] === Math.floor(slot / this.#stride);
  }

  /** Member ids of the shard that ring point `point` belongs to, sorted. */
  idsAt(point: number): readonly string[] {
    this.#idsAt ??= this.shards.map((shard) => shard.map((m) => this.members[m]!.id).sort());
    return this.#idsAt[this.ring.owners[point]!]!;
  }
}

export class ShardStrategy implements LayoutStrategy<ShardLayout> {
  readonly name = 'consistent-hash';
  readonly writeQuorum: QuorumOption;
  readonly readQuorum: QuorumOption;
  readonly #settings: ShardSettings;
  readonly #points: PointCache;

  constructor(settings: ShardSettings) {
    this.#settings = settings;
    this.writeQuorum = settings.writeQuorum;
    this.readQuorum = settings.readQuorum;
    this.#points = new PointCache(settings.hash, settings.virtualNodes);
  }

  build(members: readonly Member[], parameters: ViewParameters): ShardLayout {
    const factor = factorOf(parameters, this.#settings.replicationFactor);
    const shards = cutShards(members.length, factor);
    const ring = this.#points.ring(shards.map((_, s) => `shard-${s}`));
    return new ShardLayout(members, ring, shards, this.#settings.hash, factor);
  }

  checkParameters(parameters: ViewParameters, members: number): void {
    checkFactorParameters(parameters, members, { writeQuorum: this.writeQuorum, readQuorum: this.readQuorum });
  }

  plan(before: ShardLayout, after: ShardLayout): Move[] {
    return ringMoves(before, after, this.#settings.hash);
  }

  /** Ranges of the ring to their shard's members, rotated per key by fmix32 of its hash (`slotOf`). */
  routes(layout: ShardLayout): LayoutRoutes {
    const routes = new RoutesBuilder(this.#settings.hashName, 'fmix32');
    const { positions, owners } = layout.ring;
    for (let i = 0; i < positions.length; i++) routes.add(positions[i]!, layout.shards[owners[i]!]!);
    return routes.build();
  }

  describe(layout: ShardLayout): Record<string, unknown> {
    const s = this.#settings;
    const shares = layout.ring.shares();
    return {
      mode: 'shards',
      hash: s.hashName,
      replicationFactor: layout.replicationFactor,
      virtualNodes: s.virtualNodes,
      shards: layout.shards.map((shard, i) => ({
        id: `shard-${i}`,
        members: shard.map((m) => layout.members[m]!.id),
        keyShare: Number(shares[i]!.toFixed(4)),
      })),
      drawing: {
        shape: 'groups',
        caption: `${layout.shards.length} shards of ${layout.replicationFactor}; a key belongs to one shard, on every member of it`,
        groups: layout.shards.map((shard, i) => ({
          id: `shard-${i}`,
          members: shard.map((m) => layout.members[m]!.id),
          weight: shares[i]!,
          label: `${(shares[i]! * 100).toFixed(1)}% of keys`,
        })),
      } satisfies GroupsDrawing,
    };
  }
}
