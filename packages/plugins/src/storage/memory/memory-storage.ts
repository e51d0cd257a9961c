import type {
  HintStore,
  PurgeEntry,
  ScanOptions,
  ScanPage,
  Storage,
  StorageMetrics,
  StoredRecord,
  Version,
} from '@kvmesh/core';
import { KvError, compareKeys, compareRecords, coveredBy } from '@kvmesh/core';
import { LRUCache } from 'lru-cache';
import { copyRecord, recordBytes, validateKey, validateRecord, validateUpTo } from '../validate-record.js';
import { MemoryHints } from './memory-hints.js';
import { SortedKeys } from './sorted-keys.js';

export interface MemoryStorageOptions {
  /**
   * Most live records kept; past it the least recently used live record is
   * evicted. Tombstones are never evicted and do not count. 0 = unbounded.
   */
  readonly maxKeys: number;
}

/**
 * Records examined per scan page at most, so a selective filter over a large
 * store cannot block the event loop; the page then ends early with a cursor.
 */
export const MEMORY_SCAN_BUDGET = 10_000;

/** The part of Map and LRUCache the store uses for live records. */
interface RecordTable {
  get(key: string): StoredRecord | undefined;
  peek(key: string): StoredRecord | undefined;
  set(key: string, record: StoredRecord): void;
  delete(key: string): void;
  clear(): void;
}

/**
 * Records in process memory, lost on restart. Keys are kept in a sorted array
 * beside the tables, so scans run in key order without sorting; each method
 * runs to completion synchronously, which makes put-if-newer atomic per key.
 *
 * Live records and tombstones sit in two tables. With `maxKeys` > 0 the live
 * table is an LRU cache: a get or put makes a key most recent, scans do not,
 * and inserting past the bound evicts the least recent live record (counted
 * in `metrics().evictions_total`). An evicted live record is only a cache
 * miss: another replica or a hand-off still has it, and a stale copy of it
 * loses to any newer write. A tombstone is different: forgetting it lets a
 * replica that missed the delete bring the key back through read repair or
 * anti-entropy. So tombstones are never evicted; they leave only through
 * `collectTombstones` after the grace period (or `purge`). They hold no value
 * bytes, so what they cost is bounded by the delete rate times the grace
 * period; `metrics().tombstones` shows how many there are.
 *
 * Hints live apart from both tables (see `MemoryHints`) and are not bounded.
 *
 * Usable from construction; `stop()` frees the records and hints, after
 * which every method throws KVMESH_ERR_STORAGE_CLOSED.
 */
export class MemoryStorage implements Storage {
  readonly name = 'memory';
  readonly maxKeys: number;
  readonly hints: HintStore;
  private readonly liveTable: RecordTable;
  private readonly tombstones = new Map<string, StoredRecord>();
  private readonly keys = new SortedKeys();
  private readonly memoryHints: MemoryHints;
  private live = 0;
  private bytes = 0;
  private evicted = 0;
  private closed = false;

  constructor(options: Partial<MemoryStorageOptions> = {}) {
    const maxKeys = options.maxKeys ?? 0;
    if (!Number.isInteger(maxKeys) || maxKeys < 0) {
      throw new KvError(
        'KVMESH_ERR_CONFIG_INVALID',
        `memory storage: maxKeys must be an integer >= 0 (found ${maxKeys})`,
      );
    }
    this.maxKeys = maxKeys;
    this.liveTable = maxKeys === 0 ? mapTable() : this.lruTable(maxKeys);
    this.memoryHints = new MemoryHints(() => this.checkOpen());
    this.hints = this.memoryHints;
  }

  start(): void {}

  stop(): void {
    if (this.closed) return;
    this.closed = true;
    this.liveTable.clear();
    this.tombstones.clear();
    this.keys.clear();
    this.memoryHints.clear();
    this.live = 0;
    this.bytes = 0;
  }

  /** `evictions_total`: live records evicted by `maxKeys` since construction; `tombstones`: tombstones held now. */
  metrics(): StorageMetrics {
    return { evictions_total: this.evicted, tombstones: this.tombstones.size };
  }

  async get(key: string): Promise<StoredRecord | undefined> {
    this.checkOpen();
    validateKey(key);
    return this.liveTable.get(key) ?? this.tombstones.get(key);
  }

  async put(record: StoredRecord): Promise<boolean> {
    this.checkOpen();
    validateRecord(record);
    return this.write(record);
  }

  async putBatch(records: readonly StoredRecord[]): Promise<boolean[]> {
    this.checkOpen();
    // All checked before any is written, so a bad record leaves the store untouched.
    for (const record of records) validateRecord(record);
    return records.map((record) => this.write(record));
  }

  async count(): Promise<number> {
    this.checkOpen();
    return this.live;
  }

  async sizeBytes(): Promise<number> {
    this.checkOpen();
    return this.bytes;
  }

  async scan(options: ScanOptions): Promise<ScanPage> {
    this.checkOpen();
    const limit = Math.max(1, Math.floor(options.limit));
    const includeTombstones = options.tombstones ?? true;
    let from = 0;
    if (options.start !== undefined) from = this.keys.indexOf(options.start).index;
    if (options.after !== undefined) from = Math.max(from, this.keys.firstAfter(options.after));
    const records: StoredRecord[] = [];
    let examined = 0;
    for (let i = from; i < this.keys.size; i++) {
      const key = this.keys.at(i)!;
      if (options.end !== undefined && compareKeys(key, options.end) >= 0) break;
      if (records.length === limit || examined === MEMORY_SCAN_BUDGET) {
        return { records, next: this.keys.at(i - 1) };
      }
      examined++;
      const record = this.peek(key)!;
      if (record.tombstone && !includeTombstones) continue;
      if (options.filter !== undefined && !options.filter(key)) continue;
      records.push(record);
    }
    return { records, next: undefined };
  }

  async collectTombstones(olderThanMs: number): Promise<number> {
    this.checkOpen();
    const old = [...this.tombstones.values()].filter((record) => record.version.wallMs < olderThanMs);
    for (const record of old) this.remove(record);
    return old.length;
  }

  async purge(key: string, upTo: Version): Promise<boolean> {
    this.checkOpen();
    validateKey(key);
    validateUpTo(upTo);
    return this.purgeOne(key, upTo);
  }

  async purgeBatch(entries: readonly PurgeEntry[]): Promise<boolean[]> {
    this.checkOpen();
    // Checked first: a bad entry fails the batch with nothing removed.
    for (const { key, upTo } of entries) {
      validateKey(key);
      validateUpTo(upTo);
    }
    return entries.map(({ key, upTo }) => this.purgeOne(key, upTo));
  }

  private purgeOne(key: string, upTo: Version): boolean {
    const record = this.peek(key);
    if (record === undefined || !coveredBy(record.version, upTo)) return false;
    this.remove(record);
    return true;
  }

  /** Put-if-newer of a validated record, in one synchronous step. */
  private write(record: StoredRecord): boolean {
    const existing = this.peek(record.key);
    if (existing !== undefined && compareRecords(record, existing) <= 0) return false;
    const stored = copyRecord(record);
    if (existing === undefined) {
      this.keys.add(record.key);
    } else {
      this.forget(existing);
      if (existing.tombstone) this.tombstones.delete(record.key);
      else if (stored.tombstone) this.liveTable.delete(record.key);
    }
    this.remember(stored);
    if (stored.tombstone) {
      this.tombstones.set(record.key, stored);
    } else {
      // Last, because an LRU insert may evict another record through the dispose hook.
      this.liveTable.set(record.key, stored);
    }
    return true;
  }

  /** The stored record without touching recency. */
  private peek(key: string): StoredRecord | undefined {
    return this.liveTable.peek(key) ?? this.tombstones.get(key);
  }

  private remove(record: StoredRecord): void {
    if (record.tombstone) this.tombstones.delete(record.key);
    else this.liveTable.delete(record.key);
    this.unindex(record);
  }

  private unindex(record: StoredRecord): void {
    this.keys.delete(record.key);
    this.forget(record);
  }

  private remember(record: StoredRecord): void {
    if (!record.tombstone) this.live++;
    this.bytes += recordBytes(record);
  }

  private forget(record: StoredRecord): void {
    if (!record.tombstone) this.live--;
    this.bytes -= recordBytes(record);
  }

  private lruTable(max: number): RecordTable {
    return new LRUCache<string, StoredRecord>({
      max,
      dispose: (record, _key, reason) => {
        // 'set' and 'delete' are the store's own replacements and removals, already accounted for.
        if (reason !== 'evict') return;
        this.evicted++;
        this.unindex(record);
      },
    });
  }

  private checkOpen(): void {
    if (this.closed) {
      throw new KvError('KVMESH_ERR_STORAGE_CLOSED', 'memory storage is stopped; build a new node to use it again');
    }
  }
}

function mapTable(): RecordTable {
  const map = new Map<string, StoredRecord>();
  return {
    get: (key) => map.get(key),
    peek: (key) => map.get(key),
    set: (key, record) => void map.set(key, record),
    delete: (key) => void map.delete(key),
    clear: () => map.clear(),
  };
}
