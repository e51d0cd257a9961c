import type { Lifecycle } from './lifecycle.js';
import type { Member } from './membership.js';

/** Where a key lives, for one operation. */
export interface ReplicaSet {
  /** Replicas in preference order: the first is the coordinator (primary). */
  readonly replicas: readonly Member[];
  /** Acknowledgements a write needs before it is acknowledged to the client. */
  readonly writeQuorum: number;
  /** Replicas a read consults. */
  readonly readQuorum: number;
}

/** A key set that changes owner after a membership change. */
export interface Move {
  /** Human-readable description of the range (for logs and /v1/cluster). */
  readonly range: string;
  /** True for the keys in the range. */
  readonly contains: (key: string) => boolean;
  /** Member ids that held the range before. */
  readonly from: readonly string[];
  /** Member ids that hold it after. */
  readonly to: readonly string[];
}

/**
 * Decides which members hold a key.
 *
 * `locate` may be called concurrently and may talk to other nodes through the
 * injected Rpc (Chord and Kademlia lookups); strategies that move ownership on
 * access (KeyShift) do it inside `locate`. It must never read or write the
 * local Storage's records other than through its own messages.
 * `plan` is pure: the same inputs give the same moves.
 */
export interface Placement extends Lifecycle {
  readonly name: string;
  /**
   * The ordered replica set for `key` among the live members.
   * @throws KvError when no member can hold the key (e.g. an empty cluster).
   */
  locate(key: string, options?: { signal?: AbortSignal }): Promise<ReplicaSet>;
  /** The key ranges that move when the member list goes from `before` to `after`. */
  plan(before: readonly Member[], after: readonly Member[]): readonly Move[];
  /** A JSON summary for `GET /v1/cluster` (ring, shards, partitions...). */
  describe(): Record<string, unknown>;
}
