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

export interface PutResult {
  /** True when the key did not exist (or was deleted) before. */
  readonly created: boolean;
  readonly version: Version;
}

export interface DeleteResult {
  /** False when there was nothing to delete (no record, or already a tombstone). */
  readonly existed: boolean;
  /** Version of the tombstone written, when it existed. */
  readonly version?: Version;
}

/**
 * The one place where a client operation becomes work: ask placement for the
 * replica set, read or write the replicas (local storage or Rpc), apply the
 * version rule, answer. It knows no strategy by name.
 *
 * All methods may be called concurrently. A write resolves only once
 * `writeQuorum` replicas stored it.
 * @throws KvError KVMESH_ERR_KV_* (key/value limits, precondition failed, quorum not reached).
 */
export interface KvService {
  /** The live record for `key`, or undefined when absent or deleted. */
  get(key: string, options?: { signal?: AbortSignal }): Promise<StoredRecord | undefined>;
  put(key: string, value: Uint8Array, contentType: string, conditions?: WriteConditions): Promise<PutResult>;
  delete(key: string, conditions?: WriteConditions): Promise<DeleteResult>;
}
