import type { Lifecycle } from './lifecycle.js';

/**
 * The version of a record: a hybrid logical clock timestamp plus the id of the
 * node that wrote it. Records are kept by `compareRecords`: the newer
 * timestamp wins, and two records of one timestamp (two nodes stamping at
 * once) are ordered by value, then node id, so every replica picks the same
 * winner.
 */
export interface Version {
  /** Physical part: milliseconds since the Unix epoch. */
  readonly wallMs: number;
  /** Logical counter for events within one millisecond (0..65535). */
  readonly logical: number;
  /** Id of the writing node: breaks ties deterministically. */
  readonly node: string;
}

export interface StoredRecord {
  readonly key: string;
  /** The value's bytes (empty for a tombstone). */
  readonly value: Uint8Array;
  /** Content-Type given by the writer. */
  readonly contentType: string;
  readonly version: Version;
  /** True when this record marks a delete. */
  readonly tombstone: boolean;
}

/** One key of `Storage.purgeBatch`: remove it if it is version `upTo` or of an older timestamp. */
export interface PurgeEntry {
  readonly key: string;
  readonly upTo: Version;
}

export interface ScanOptions {
  /** Only keys > after (exclusive cursor, as returned in `ScanPage.next`). */
  readonly after?: string;
  /** Only keys >= start. */
  readonly start?: string;
  /** Only keys < end. */
  readonly end?: string;
  /** Only keys for which this returns true (e.g. a hash range from Placement). */
  readonly filter?: (key: string) => boolean;
  /** At most this many records in the page. */
  readonly limit: number;
  /** Include tombstones (hand-off must, so deletes are not resurrected). Default true. */
  readonly tombstones?: boolean;
}

export interface ScanPage {
  readonly records: readonly StoredRecord[];
  /** Cursor for the next page (pass as `after`); undefined at the end. */
  readonly next: string | undefined;
}

/** A write meant for another replica that could not take it, kept here until it is back (hinted hand-off). */
export interface Hint {
  /** Id of the member the record belongs to. */
  readonly target: string;
  readonly record: StoredRecord;
}

export interface HintPage {
  /** Hints of one target, in key order. */
  readonly hints: readonly Hint[];
  /** Cursor for the next page (pass as `after`); undefined at the end. */
  readonly next: string | undefined;
}

/**
 * Hints, kept apart from the node's own records: `Storage.get`, `count`,
 * `scan`, `sizeBytes` and `collectTombstones` never see them. As durable as
 * the storage's records. All methods may be called concurrently; `add` and
 * `remove` are atomic per (target, key).
 */
export interface HintStore {
  /**
   * Keeps `hint.record` for `hint.target`. Of two hints for one target and
   * key the newer record (`compareRecords`) is kept. Tombstones are kept like
   * any record.
   */
  add(hint: Hint): Promise<void>;
  /** Ids of the members this node holds hints for, in id order. */
  targets(): Promise<string[]>;
  /** One page of the hints for `target`, in key order. */
  list(target: string, options: { readonly after?: string; readonly limit: number }): Promise<HintPage>;
  /**
   * Removes the hint for (`target`, `key`) if its version is `upTo` or of an
   * older timestamp (a newer hint arrived while the older one was replayed,
   * or one of the same timestamp from another node: keep it). Resolves to
   * true when a hint was removed.
   */
  remove(target: string, key: string, upTo: Version): Promise<boolean>;
  /** Number of hints held, all targets together. */
  count(): Promise<number>;
}

/** Optional gauges and counters a storage strategy reports for `/metrics`: name (snake_case) → value. */
export type StorageMetrics = Readonly<Record<string, number>>;

/**
 * The local record store of one node. Keys are UTF-8 strings in byte order.
 *
 * All methods may be called concurrently; `put` and `delete` are atomic per
 * key (check-and-write happen in one step). A resolved `put`/`delete` is as
 * durable as the strategy promises (lmdb: on disk). Storage never decides
 * ownership and never talks to other nodes.
 */
export interface Storage extends Lifecycle {
  readonly name: string;
  /** The record for `key`, tombstones included; undefined when none. */
  get(key: string): Promise<StoredRecord | undefined>;
  /**
   * Stores `record` if it is newer than the stored one by `compareRecords`
   * (or none is stored). Resolves to true when written, false when the same
   * or a newer record was already there. A tombstone record is a delete.
   */
  put(record: StoredRecord): Promise<boolean>;
  /** Number of live (non-tombstone) records. */
  count(): Promise<number>;
  /** Approximate bytes used by keys and values. */
  sizeBytes(): Promise<number>;
  /** One page of records in key order. */
  scan(options: ScanOptions): Promise<ScanPage>;
  /** Removes tombstones whose version is older than `olderThanMs` (wall clock); resolves to how many. */
  collectTombstones(olderThanMs: number): Promise<number>;
  /**
   * Stores every record of `records` as `put` would, in one step where the
   * strategy can (lmdb: one transaction); for data movement. Resolves, in
   * order, to whether each was written. Keys may repeat (the newest wins).
   */
  putBatch(records: readonly StoredRecord[]): Promise<boolean[]>;
  /**
   * Removes the record for `key` if its version is `upTo` or of an older
   * timestamp: after a hand-off copied version `upTo` away, a write that
   * landed here during the move is kept (a newer timestamp, or one of the
   * same timestamp from another node, whose order against the copied one
   * only the values tell: the move's next pass copies it). Resolves to true
   * when removed.
   */
  purge(key: string, upTo: Version): Promise<boolean>;
  /**
   * `purge` of every entry, in one step where the strategy can (lmdb: one
   * transaction); for data movement, which purges a page of keys at once.
   * Resolves, in order, to whether each was removed. Optional: without it,
   * movement purges key by key.
   */
  purgeBatch?(entries: readonly PurgeEntry[]): Promise<boolean[]>;
  /** Hints for other members, stored apart from this node's records. */
  readonly hints: HintStore;
  /**
   * Strategy-specific figures for `/metrics` (e.g. LRU evictions), each
   * exported as `kvmesh_storage_<name>`. Cheap and synchronous; optional.
   */
  metrics?(): StorageMetrics;
}
