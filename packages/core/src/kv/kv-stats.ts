import { isKvError } from '../errors.js';

export const KV_OPERATIONS = ['get', 'put', 'delete'] as const;
export type KvOperation = (typeof KV_OPERATIONS)[number];

/**
 * How an operation ended. found / not_found: a get, or a delete of a missing
 * key (not_found); created / replaced: a put; deleted: a delete; invalid: a
 * key, value or argument was refused before any work; precondition_failed:
 * If-Match / If-None-Match did not hold; unavailable: no quorum or no
 * replica (placement empty); error: anything else.
 */
export const KV_OUTCOMES = [
  'found',
  'not_found',
  'created',
  'replaced',
  'deleted',
  'invalid',
  'precondition_failed',
  'unavailable',
  'error',
] as const;
export type KvOutcome = (typeof KV_OUTCOMES)[number];

/** Counters of the KV service for metrics exporters. Read them, never write them. */
export interface KvServiceStats {
  /** Completed client operations by kind and outcome (every pair present, from 0). */
  readonly operations: Readonly<Record<KvOperation, Readonly<Record<KvOutcome, number>>>>;
  /** Records written back to stale replicas after a read. */
  readonly readRepairs: number;
  /** Requests to replicas (local or remote) that failed or timed out. */
  readonly replicaFailures: number;
  /** Tombstones removed by the periodic collection. */
  readonly tombstonesCollected: number;
  /** Writes left on a fallback member for a replica that was down. */
  readonly hintsWritten: number;
  /** Client writes this node sent on to the key's primary. */
  readonly forwardedWrites: number;
  /** Times an operation located its key again after a replica refused it (view changes, moves). */
  readonly relocations: number;
}

/** The mutable counters behind KvServiceStats. */
export interface MutableKvServiceStats {
  operations: Record<KvOperation, Record<KvOutcome, number>>;
  readRepairs: number;
  replicaFailures: number;
  tombstonesCollected: number;
  hintsWritten: number;
  forwardedWrites: number;
  relocations: number;
}

export function createKvServiceStats(): MutableKvServiceStats {
  const outcomes = (): Record<KvOutcome, number> =>
    Object.fromEntries(KV_OUTCOMES.map((o) => [o, 0])) as Record<KvOutcome, number>;
  return {
    operations: { get: outcomes(), put: outcomes(), delete: outcomes() },
    readRepairs: 0,
    replicaFailures: 0,
    tombstonesCollected: 0,
    hintsWritten: 0,
    forwardedWrites: 0,
    relocations: 0,
  };
}

/** The outcome a failed operation is counted under. */
export function failureOutcome(err: unknown): KvOutcome {
  if (!isKvError(err)) return 'error';
  switch (err.code) {
    case 'KVMESH_ERR_KV_KEY_INVALID':
    case 'KVMESH_ERR_KV_KEY_TOO_LONG':
    case 'KVMESH_ERR_KV_VALUE_TOO_LARGE':
    case 'KVMESH_ERR_KV_REQUEST_INVALID':
      return 'invalid';
    case 'KVMESH_ERR_KV_PRECONDITION_FAILED':
      return 'precondition_failed';
    case 'KVMESH_ERR_KV_QUORUM':
    case 'KVMESH_ERR_KV_NOT_JOINED':
    case 'KVMESH_ERR_KV_NOT_OWNER':
    case 'KVMESH_ERR_KV_FROZEN':
    case 'KVMESH_ERR_PLACEMENT_EMPTY':
      return 'unavailable';
    default:
      return 'error';
  }
}
