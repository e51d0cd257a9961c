import type { Lifecycle } from './lifecycle.js';

/**
 * The version of a record: a hybrid logical clock timestamp plus the id of the
 * node that wrote it. Versions are totally ordered (see `compareVersions`), so
 * every replica picks the same winner.
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
   * Stores `record` if its version is newer than the stored one (or none is
   * stored). Resolves to true when written, false when an equal or newer
   * version was already there. A tombstone record is a delete.
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
  /** Removes a record whatever its version (after a hand-off moved it away). */
  purge(key: string): Promise<void>;
}
