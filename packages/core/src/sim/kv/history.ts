/**
 * What a simulated KV run records: every client operation with its virtual
 * invoke and complete times and outcome, then, once the faults healed and the
 * cluster settled, what every replica holds and what every node reads. The
 * history checker (`checkHistory`) judges it; it is plain JSON, so a run can
 * be saved and judged again.
 */

/** Kinds of client operation. `create` is a put with `If-None-Match: *`; `cas` a put with `If-Match`. */
export type KvOpKind = 'get' | 'put' | 'create' | 'cas' | 'delete';

/**
 * How an operation ended, as the client saw it:
 * - `ok`: acknowledged.
 * - `refused`: definitely not applied (its precondition did not hold, or the
 *   node was still joining its cluster and took no client operation).
 * - `unknown`: it failed or the client gave up waiting; a write may or may not
 *   have been applied (a quorum error can follow a write stored on some replicas).
 */
export type KvOpOutcome = 'ok' | 'refused' | 'unknown';

export interface KvOp {
  /** Position in invoke order, from 0. */
  readonly id: number;
  /** Client number, from 0. */
  readonly client: number;
  /** Id of the node the client sent the operation to. */
  readonly node: string;
  readonly kind: KvOpKind;
  readonly key: string;
  /** The value written (put, create, cas); unique in the run, so a read tells which write it saw. */
  readonly value?: string;
  /** The `If-Match` of a cas: a formatted version, or `*`. */
  readonly ifMatch?: string;
  /** True when the op is a counter increment's conditional write (a `create` or `cas` of the read value + 1). */
  readonly increment?: boolean;
  /** Virtual ms when the client sent it. */
  readonly invokeMs: number;
  /** Virtual ms when the client had its answer or gave up. */
  readonly completeMs: number;
  readonly outcome: KvOpOutcome;
  /** The error code (or message) of an op that was not `ok`. */
  readonly error?: string;
  /** What a `get` read: the value, or null for absent. */
  readonly read?: string | null;
  /** The formatted version a write was stored with, or a `get` read. */
  readonly version?: string;
  /** The member that answered: the primary that ran a write, the replica whose record a read returned. */
  readonly servedBy?: string;
  /** For an acknowledged delete: false when the primary found nothing to delete (and wrote no tombstone). */
  readonly existed?: boolean;
}

/** One node's read of one key after the cluster settled, through its KV service. */
export interface FinalRead {
  readonly node: string;
  readonly key: string;
  /** The value read, null for absent; undefined when the read failed. */
  readonly value?: string | null;
  readonly version?: string;
  readonly error?: string;
}

/** What one replica's storage holds for a key, read directly (not through the KV service). */
export interface ReplicaRecord {
  readonly node: string;
  /** Formatted version, or null when the replica holds no record. */
  readonly version: string | null;
  readonly tombstone: boolean;
  /** The value (null for a tombstone or no record). */
  readonly value: string | null;
}

/** Every replica of one key, as the placement of a settled node names them. */
export interface ReplicaState {
  readonly key: string;
  /** Empty when the replicas could not be named (`error`). */
  readonly replicas: readonly ReplicaRecord[];
  /** Why placement could not name the key's replicas after settling. */
  readonly error?: string;
}

export interface KvHistory {
  /** Client operations, in invoke order. */
  readonly ops: readonly KvOp[];
  /** Keys that are counters: written only by increments (conditional writes of the read value + 1). */
  readonly counters: readonly string[];
  /** Replica states after settling (before the final reads, so read repair does not hide a divergence). */
  readonly replicas: readonly ReplicaState[];
  /** Every key read from every node after settling. */
  readonly finals: readonly FinalRead[];
}

/** True for the kinds that write. */
export function isWrite(op: KvOp): boolean {
  return op.kind !== 'get';
}
