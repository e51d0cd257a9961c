import type { KeyHash } from './hash.js';

/** 2^16: owner indices are packed below the position in one float64 for sorting. */
const OWNER_SPACE = 65_536;

/**
 * Points on a 32-bit hash ring, each owned by a unit (a member, a shard),
 * sorted by position. A key belongs to the first point at or after its hash,
 * wrapping past the top. Immutable once built.
 */
export class HashRing {
  /** Positions, ascending; equal positions are ordered by owner index. */
  readonly positions: Uint32Array;
  /** Unit index that owns each point. */
  readonly owners: Int32Array;
  /** Number of units the ring was built over. */
  readonly units: number;

  private constructor(positions: Uint32Array, owners: Int32Array, units: number) {
    this.positions = positions;
    this.owners = owners;
    this.units = units;
  }

  /**
   * A ring of `points[u]` for every unit u (its point positions). The order
   * of `points` decides ties, so callers pass units in a deterministic order.
   */
  static fromPoints(points: readonly Uint32Array[]): HashRing {
    if (points.length > OWNER_SPACE) throw new RangeError(`a ring holds at most ${OWNER_SPACE} units`);
    let total = 0;
    for (const p of points) total += p.length;
    // Sorting packed numbers is several times faster than sorting pairs.
    const packed = new Float64Array(total);
    let at = 0;
    for (let u = 0; u < points.length; u++) {
      for (const position of points[u]!) packed[at++] = position * OWNER_SPACE + u;
    }
    packed.sort();
    const positions = new Uint32Array(total);
    const owners = new Int32Array(total);
    for (let i = 0; i < total; i++) {
      const owner = packed[i]! % OWNER_SPACE;
      owners[i] = owner;
      positions[i] = (packed[i]! - owner) / OWNER_SPACE;
    }
    return new HashRing(positions, owners, points.length);
  }

  get size(): number {
    return this.positions.length;
  }

  /** Index of the first point at or after `hash` (0 past the last point). Binary search: O(log points). */
  successor(hash: number): number {
    const positions = this.positions;
    let lo = 0;
    let hi = positions.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (positions[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    return lo === positions.length ? 0 : lo;
  }

  /**
   * Up to `count` distinct owners met walking clockwise from each point:
   * a flat array, `count` entries per point (fewer units than `count`: all
   * of them). Entry `[i * count + k]` is point i's k-th distinct owner.
   */
  distinctOwners(count: number): Int32Array {
    const width = Math.min(count, this.units);
    const size = this.size;
    const out = new Int32Array(size * width);
    const seenAt = new Int32Array(this.units).fill(-1);
    for (let i = 0; i < size; i++) {
      let found = 0;
      for (let j = i; found < width; j = j + 1 === size ? 0 : j + 1) {
        const owner = this.owners[j]!;
        if (seenAt[owner] === i) continue;
        seenAt[owner] = i;
        out[i * width + found++] = owner;
      }
    }
    return out;
  }

  /** Share of the hash space (0..1) whose keys land on each unit's points. */
  shares(): Float64Array {
    const out = new Float64Array(this.units);
    const size = this.size;
    for (let i = 0; i < size; i++) {
      const from = i === 0 ? this.positions[size - 1]! - 2 ** 32 : this.positions[i - 1]!;
      out[this.owners[i]!]! += (this.positions[i]! - from) / 2 ** 32;
    }
    return out;
  }
}

/**
 * Point positions of units by label, hashed once and kept across rebuilds:
 * a membership change rehashes only the members that are new.
 */
export class PointCache {
  readonly #hash: KeyHash;
  readonly #pointsPerUnit: number;
  readonly #cache = new Map<string, Uint32Array>();

  constructor(hash: KeyHash, pointsPerUnit: number) {
    this.#hash = hash;
    this.#pointsPerUnit = pointsPerUnit;
  }

  /** The positions of `label`'s points: the hash of `label#0`, `label#1`, ... */
  points(label: string): Uint32Array {
    let points = this.#cache.get(label);
    if (points === undefined) {
      points = new Uint32Array(this.#pointsPerUnit);
      for (let v = 0; v < this.#pointsPerUnit; v++) points[v] = this.#hash(`${label}#${v}`);
      this.#cache.set(label, points);
    }
    return points;
  }

  /** A ring over `labels` (in that order). Forgets cached labels far beyond the ones in use. */
  ring(labels: readonly string[]): HashRing {
    const ring = HashRing.fromPoints(labels.map((l) => this.points(l)));
    if (this.#cache.size > 4 * labels.length + 64) {
      const keep = new Set(labels);
      for (const label of this.#cache.keys()) if (!keep.has(label)) this.#cache.delete(label);
    }
    return ring;
  }
}
