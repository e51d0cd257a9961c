import type { Member } from './membership.js';
import type { StoredRecord, Version } from './storage.js';

/** Preconditions of a write, from HTTP `If-Match` / `If-None-Match`. */
export interface WriteConditions {
  /**
   * The write applies only if the key exists and its current version formats
   * to this string (`formatVersion`); `*` matches any existing version.
   */
  readonly ifMatch?: string;
  /** `*`: the write applies only if the key does not exist (create-only). */
  readonly ifNoneMatch?: '*';
}

/** Per-call options of every KV operation. */
export interface KvCallOptions {
  /**
   * Stops waiting when aborted: the operation rejects with
   * KVMESH_ERR_RPC_ABORTED. A write already sent to its replicas may still
   * be applied there (it is never half applied on one replica).
   */
  readonly signal?: AbortSignal;
  /**
   * The client request's id (e.g. its `X-Request-Id`), for logs: a write
   * forwarded to its primary carries it there, so the log lines of both
   * nodes name the same request. Without one, a forwarded write gets an id
   * of its coordinator's (`<node id>-<n>`).
   */
  readonly requestId?: string;
}

export interface GetResult {
  /** The live record, or undefined when absent or deleted. */
  readonly record: StoredRecord | undefined;
  /** The replica whose answer this is (facades report its address). */
  readonly servedBy: Member;
}

export interface PutResult {
  /** True when the key did not exist (or was deleted) before. */
  readonly created: boolean;
  readonly version: Version;
  /** The key's primary replica, which ran the write. */
  readonly servedBy: Member;
}

export interface DeleteResult {
  /** False when there was nothing to delete (no record, or already a tombstone). */
  readonly existed: boolean;
  /** Version of the tombstone written, when it existed. */
  readonly version?: Version;
  /** The key's primary replica, which ran the delete. */
  readonly servedBy: Member;
}

/**
 * The one place where a client operation becomes work: ask placement for the
 * replica set, read or write the replicas (local storage or Rpc), apply the
 * version rule, answer. It knows no strategy by name.
 *
 * All methods may be called concurrently, on any node: a node that holds no
 * replica of the key works through the replicas (reads) or the key's
 * primary (writes), one hop away. A write resolves only once `writeQuorum`
 * replicas stored it with a version newer than what they held; a
 * conditional write is decided by the key's primary under its key lock, so
 * two nodes racing `If-None-Match: *` on one key cannot both win.
 * @throws KvError KVMESH_ERR_KV_* (key/value limits, precondition failed,
 *   quorum not reached, not owner after relocating), KVMESH_ERR_RPC_ABORTED.
 */
export interface KvService {
  /** The live record for `key` (undefined when absent or deleted), and who served it. */
  get(key: string, options?: KvCallOptions): Promise<GetResult>;
  put(
    key: string,
    value: Uint8Array,
    contentType: string,
    conditions?: WriteConditions,
    options?: KvCallOptions,
  ): Promise<PutResult>;
  delete(key: string, conditions?: WriteConditions, options?: KvCallOptions): Promise<DeleteResult>;
}
