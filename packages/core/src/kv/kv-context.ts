import type { Clock } from '../contracts/clock.js';
import type { Logger } from '../contracts/logger.js';
import type { Random } from '../contracts/random.js';
import type { Member } from '../contracts/membership.js';
import type { Placement, ReplicaSet } from '../contracts/placement.js';
import type { Rpc } from '../contracts/rpc.js';
import type { StoredRecord } from '../contracts/storage.js';
import type { HybridLogicalClock } from './hlc.js';
import type { KvSettings } from './kv-config.js';
import type { MutableKvServiceStats } from './kv-stats.js';
import type { LocalReplica } from './local-replica.js';
import type { ReplicaClient } from './replica-client.js';

/** Stores a write for a replica that is down on another member, to be replayed when it is back. */
export type HintSink = (fallback: Member, target: Member, record: StoredRecord) => Promise<void>;

/** What the read and write paths of one KV service share. */
export interface KvContext {
  readonly selfId: string;
  readonly placement: Placement;
  readonly local: LocalReplica;
  readonly replicas: ReplicaClient;
  readonly rpc: Rpc;
  readonly settings: KvSettings;
  readonly stats: MutableKvServiceStats;
  readonly clock: Clock;
  /** For choices that must spread (`kv.readFrom` "any"); the node's injected Random. */
  readonly random: Random;
  readonly hlc: HybridLogicalClock;
  readonly logger: Logger;
  /** Aborted when the service stops: background writes and repairs end with it. */
  readonly lifetime: AbortSignal;
  /** Where hints go; undefined when the node keeps none. */
  readonly hint: HintSink | undefined;
  /** Keeps `promise` until it settles, so stop() can wait for writes and repairs still in flight. */
  track<T>(promise: Promise<T>): Promise<T>;
  /** Counts and logs a failed replica request, and tells membership when the member could not be reached. */
  replicaFailed(member: Member, err: unknown, what: string): void;
}

/** Not known to be down: dead and left members are asked last or not at all. */
export function isReachable(member: Member): boolean {
  return member.state === 'alive' || member.state === 'suspect';
}

export function isLive(record: StoredRecord | undefined): record is StoredRecord {
  return record !== undefined && !record.tombstone;
}

/** This node's entry in `set`, or undefined when it is not a replica. */
export function selfIn(set: ReplicaSet, selfId: string): Member | undefined {
  return set.replicas.find((m) => m.id === selfId);
}
