import { slotGroupsDrawing } from '../support/drawing.js';
import { hash } from 'node:crypto';
import type { Member, Move } from '@kvmesh/core';
import { mix32 } from '../support/hash.js';
import type { Layout, LayoutStrategy } from '../support/layout.js';
import { partitionMoves } from '../support/moves.js';
import type { QuorumOption } from '../support/quorum.js';
import { RoutesBuilder } from '../support/routes.js';
import type { LayoutRoutes } from '../support/routes.js';

export interface PartitionSettings {
  /** Leading hex digits of the key's SHA-1 that number its partition: 16^digits partitions. */
  readonly digits: number;
  readonly replicas: number;
  readonly fallbacks: number;
  readonly writeQuorum: QuorumOption;
  readonly readQuorum: QuorumOption;
}

/** Odd constant (2^32 / golden ratio) that spreads partition numbers before mixing. */
const GOLDEN = 0x9e37_79b1;

/** The partition of `key`: its SHA-1's first `digits` hex digits as a number (Velour Fog, seed 002). */
export function partitionOf(key: string, digits: number): number {
  return hash('sha1', key, 'buffer').readUInt32BE(0) >>> (32 - 4 * digits);
}

/** A member's rendezvous seed: the first 32 bits of the SHA-1 of its id. */
export function memberSeed(id: string): number {
  return hash('sha1', id, 'buffer').readUInt32BE(0);
}

/** Rendezvous score of a member (by seed) for a partition; the highest scores hold it. */
export function rendezvousScore(seed: number, partition: number): number {
  return mix32(seed ^ Math.imul(partition + 1, GOLDEN));
}

/**
 * Velour Fog's partitions: 16^digits partitions, each held by the
 * `replicas` data members with the highest rendezvous (HRW) score for it,
 * in score order (the first is the primary), followed by `fallbacks` more.
 *
 * The table is a pure function of the member ids, so every node computes
 * the same one with no coordination, and movement is minimal for a pure
 * function: a joining member takes exactly the partition slots it now
 * outscores someone for (about replicas/(n+1) of them), a leaving member's
 * slots go to the next-highest scorer, and nothing else moves.
 */
export class PartitionLayout implements Layout {
  readonly members: readonly Member[];
  readonly digits: number;
  readonly slots: number;
  /** Per partition, `width` member indices by descending score. */
  readonly #table: Int32Array;
  readonly #width: number;
  readonly #replicas: number;

  constructor(members: readonly Member[], settings: PartitionSettings) {
    this.members = members;
    this.digits = settings.digits;
    this.slots = 16 ** settings.digits;
    this.#replicas = Math.min(settings.replicas, members.length);
    this.#width = Math.min(settings.replicas + settings.fallbacks, members.length);
    this.#table = rendezvousTable(
      members.map((m) => memberSeed(m.id)),
      this.slots,
      this.#width,
    );
  }

  slotOf(key: string): number {
    return partitionOf(key, this.digits);
  }

  replicaIndices(slot: number): readonly number[] {
    return Array.from(this.#table.subarray(slot * this.#width, slot * this.#width + this.#replicas));
  }

  fallbackIndices(slot: number): readonly number[] {
    return Array.from(this.#table.subarray(slot * this.#width + this.#replicas, (slot + 1) * this.#width));
  }

  hasReplica(slot: number, member: number): boolean {
    const start = slot * this.#width;
    for (let k = start; k < start + this.#replicas; k++) if (this.#table[k] === member) return true;
    return false;
  }

  /** Replica ids of partition `slot`, sorted. */
  idsAt(slot: number): string[] {
    return this.replicaIndices(slot)
      .map((i) => this.members[i]!.id)
      .sort();
  }

  /** The partition's name: its hex digits, as the hash starts. */
  name(slot: number): string {
    return slot.toString(16).padStart(this.digits, '0');
  }

  /** Partitions each member holds as a replica, and as the primary. */
  load(): { replica: Int32Array; primary: Int32Array } {
    const replica = new Int32Array(this.members.length);
    const primary = new Int32Array(this.members.length);
    for (let p = 0; p < this.slots; p++) {
      for (let k = 0; k < this.#replicas; k++) replica[this.#table[p * this.#width + k]!]! += 1;
      if (this.#replicas > 0) primary[this.#table[p * this.#width]!]! += 1;
    }
    return { replica, primary };
  }
}

/** For each partition, the `width` member indices with the highest scores, best first (ties: lower index). */
function rendezvousTable(seeds: readonly number[], partitions: number, width: number): Int32Array {
  const table = new Int32Array(partitions * width);
  const best = new Float64Array(width);
  const who = new Int32Array(width);
  for (let p = 0; p < partitions; p++) {
    let filled = 0;
    for (let m = 0; m < seeds.length; m++) {
      const score = rendezvousScore(seeds[m]!, p);
      if (filled === width && score <= best[width - 1]!) continue;
      // Insertion into the short sorted list; equal scores keep the earlier (lower) index first.
      let at = filled < width ? filled++ : width - 1;
      while (at > 0 && best[at - 1]! < score) {
        best[at] = best[at - 1]!;
        who[at] = who[at - 1]!;
        at--;
      }
      best[at] = score;
      who[at] = m;
    }
    table.set(who.subarray(0, width), p * width);
  }
  return table;
}

export class PartitionStrategy implements LayoutStrategy<PartitionLayout> {
  readonly name = 'hash-mod';
  readonly writeQuorum: QuorumOption;
  readonly readQuorum: QuorumOption;
  readonly #settings: PartitionSettings;

  constructor(settings: PartitionSettings) {
    this.#settings = settings;
    this.writeQuorum = settings.writeQuorum;
    this.readQuorum = settings.readQuorum;
  }

  build(members: readonly Member[]): PartitionLayout {
    return new PartitionLayout(members, this.#settings);
  }

  plan(before: PartitionLayout, after: PartitionLayout): Move[] {
    const digits = this.#settings.digits;
    return partitionMoves(
      before.slots,
      (p) => before.idsAt(p),
      (p) => after.idsAt(p),
      (key) => partitionOf(key, digits),
      (p) => after.name(p),
    );
  }

  /** Partition p is the hashes whose leading hex digits are p: the range up to ((p + 1) << (32 - 4 * digits)) - 1. */
  routes(layout: PartitionLayout): LayoutRoutes {
    const routes = new RoutesBuilder('sha1', 'listed');
    const width = 2 ** (32 - 4 * layout.digits);
    for (let p = 0; p < layout.slots; p++) routes.add((p + 1) * width - 1, layout.replicaIndices(p));
    return routes.build();
  }

  describe(layout: PartitionLayout): Record<string, unknown> {
    const s = this.#settings;
    const { replica, primary } = layout.load();
    return {
      digits: s.digits,
      partitions: layout.slots,
      replicas: s.replicas,
      fallbacks: s.fallbacks,
      partitionsPerMember: layout.members.map((m, i) => ({
        id: m.id,
        replica: replica[i],
        primary: primary[i],
      })),
      drawing: slotGroupsDrawing(
        layout.slots,
        (p) => layout.replicaIndices(p),
        layout.members,
        `${layout.slots} partitions by their replicas (primary first)`,
      ),
    };
  }
}
