import { KEY_HASHES, fmix32 } from './key-hash.js';
import type { KeyHash, KeyHashName } from './key-hash.js';

/** A member as `GET /v1/cluster` and `GET /v1/cluster/routes` list it. */
export interface ClusterMember {
  readonly id: string;
  /** Transport URI, e.g. `http://127.0.0.1:7700`. */
  readonly address: string;
  readonly state: string;
}

/**
 * What `GET /v1/cluster/routes` answers: a key's position is `hash` of its
 * UTF-8 bytes; it belongs to the first range whose end is at or above it
 * (past the last, the first); the range's list is its replicas, in order,
 * rotated left by fmix32(position) mod its length when `order` is `fmix32`.
 */
export interface RoutesAnswer {
  readonly epoch: number;
  readonly hash: KeyHashName;
  readonly order: 'listed' | 'fmix32';
  readonly replicaSets: readonly (readonly string[])[];
  readonly ends: readonly number[];
  readonly sets: readonly number[];
  readonly members: readonly ClusterMember[];
}

/** A routing table read from a node, with its hash function loaded: answers a key's replica ids. */
export class RoutingTable {
  readonly epoch: number;
  readonly answer: RoutesAnswer;
  readonly #hash: KeyHash;
  readonly #ends: Float64Array;

  constructor(answer: RoutesAnswer, hash: KeyHash) {
    this.answer = answer;
    this.epoch = answer.epoch;
    this.#hash = hash;
    this.#ends = Float64Array.from(answer.ends);
  }

  /** The key's replica ids in preference order (the first is its primary); empty for an empty table. */
  replicas(key: string): readonly string[] {
    const ends = this.#ends;
    if (ends.length === 0) return [];
    const position = this.#hash(key);
    let lo = 0;
    let hi = ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ends[mid]! < position) lo = mid + 1;
      else hi = mid;
    }
    const list = this.answer.replicaSets[this.answer.sets[lo === ends.length ? 0 : lo]!]!;
    if (this.answer.order === 'listed' || list.length < 2) return list;
    const rotation = fmix32(position) % list.length;
    return rotation === 0 ? list : [...list.slice(rotation), ...list.slice(0, rotation)];
  }
}

/**
 * Checks that `body` is a routing table this client can use.
 * @returns the problem in words, or undefined when it is well formed.
 */
export function routesProblem(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return 'not a JSON object';
  const r = body as Partial<Record<keyof RoutesAnswer, unknown>>;
  if (typeof r.epoch !== 'number') return 'no numeric epoch';
  if (!(KEY_HASHES as readonly unknown[]).includes(r.hash)) return `an unknown hash ${JSON.stringify(r.hash)}`;
  if (r.order !== 'listed' && r.order !== 'fmix32') return `an unknown order ${JSON.stringify(r.order)}`;
  if (!Array.isArray(r.replicaSets) || !r.replicaSets.every((s) => Array.isArray(s) && s.length > 0))
    return 'replicaSets is not a list of non-empty lists';
  if (!Array.isArray(r.ends) || !Array.isArray(r.sets) || r.ends.length !== r.sets.length)
    return 'ends and sets are not lists of one length';
  const sets = r.replicaSets.length;
  if (!r.sets.every((s) => Number.isInteger(s) && (s as number) >= 0 && (s as number) < sets))
    return 'sets names a list that replicaSets does not hold';
  for (let i = 0; i < r.ends.length; i++) {
    const end = r.ends[i] as unknown;
    if (typeof end !== 'number' || end < 0 || (i > 0 && end < (r.ends[i - 1] as number)))
      return 'ends are not ascending';
  }
  if (!Array.isArray(r.members)) return 'no members';
  return undefined;
}
