import type { ScanOptions, ScanPage, Storage, StoredRecord } from '@kvmesh/core';
import { KvError, compareKeys, compareVersions } from '@kvmesh/core';
import { LRUCache } from 'lru-cache';
import { recordBytes, validateKey, validateRecord } from '../validate-record.js';

export interface MemoryStorageOptions {
  /** Most records kept; past it the least recently used one is evicted. 0 = unbounded. */
  readonly maxKeys: number;
}

/**
 * Records examined per scan page at most, so a selective filter over a large
 * store cannot block the event loop; the page then ends early with a cursor.
 */
export const MEMORY_SCAN_BUDGET = 10_000;

/** The part of Map and LRUCache the store uses. */
interface RecordTable {
  get(key: string): StoredRecord | undefined;
  peek(key: string): StoredRecord | undefined;
  set(key: string, record: StoredRecord): void;
  delete(key: string): void;
  clear(): void;
}

/**
 * Records in process memory, lost on restart. Keys are kept in a sorted array
 * beside the table, so scans run in key order without sorting; each method
 * runs to completion synchronously, which makes put-if-newer atomic per key.
 *
 * With `maxKeys` > 0 the table is an LRU cache: a get or put makes a key most
 * recent, scans do not, and inserting past the bound evicts the least recent
 * record (a tombstone counts like any record, so a bounded store can forget
 * a delete; use it as a cache, not as the only copy).
 *
 * Usable from construction; `stop()` frees the records, after which every
 * method throws KVMESH_ERR_STORAGE_CLOSED.
 */
export class MemoryStorage implements Storage {
  readonly name = 'memory';
  readonly maxKeys: number;
  private readonly table: RecordTable;
  private readonly sortedKeys: string[] = [];
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
    this.table = maxKeys === 0 ? mapTable() : this.lruTable(maxKeys);
  }

  /** Records evicted by the LRU bound since construction (for metrics). */
  get evictions(): number {
    return this.evicted;
  }

  start(): void {}

  stop(): void {
    if (this.closed) return;
    this.closed = true;
    this.table.clear();
    this.sortedKeys.length = 0;
    this.live = 0;
    this.bytes = 0;
  }

  async get(key: string): Promise<StoredRecord | undefined> {
    this.checkOpen();
    return this.table.get(validateKey(key));
  }

  async put(record: StoredRecord): Promise<boolean> {
    this.checkOpen();
    validateRecord(record);
    const existing = this.table.peek(record.key);
    if (existing !== undefined && compareVersions(record.version, existing.version) <= 0) return false;
    const stored: StoredRecord = {
      key: record.key,
      value: record.tombstone ? new Uint8Array(0) : record.value.slice(),
      contentType: record.contentType,
      version: { wallMs: record.version.wallMs, logical: record.version.logical, node: record.version.node },
      tombstone: record.tombstone,
    };
    if (existing === undefined) {
      const at = this.indexOf(record.key);
      this.sortedKeys.splice(at.index, 0, record.key);
    } else {
      this.forget(existing);
    }
    this.remember(stored);
    // Last, because an LRU insert may evict another record through the dispose hook.
    this.table.set(record.key, stored);
    return true;
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
    if (options.start !== undefined) from = this.indexOf(options.start).index;
    if (options.after !== undefined) {
      const at = this.indexOf(options.after);
      from = Math.max(from, at.found ? at.index + 1 : at.index);
    }
    const records: StoredRecord[] = [];
    let examined = 0;
    for (let i = from; i < this.sortedKeys.length; i++) {
      const key = this.sortedKeys[i]!;
      if (options.end !== undefined && compareKeys(key, options.end) >= 0) break;
      if (records.length === limit || examined === MEMORY_SCAN_BUDGET) {
        return { records, next: this.sortedKeys[i - 1] };
      }
      examined++;
      const record = this.table.peek(key)!;
      if (record.tombstone && !includeTombstones) continue;
      if (options.filter !== undefined && !options.filter(key)) continue;
      records.push(record);
    }
    return { records, next: undefined };
  }

  async collectTombstones(olderThanMs: number): Promise<number> {
    this.checkOpen();
    let removed = 0;
    for (const key of [...this.sortedKeys]) {
      const record = this.table.peek(key);
      if (record?.tombstone === true && record.version.wallMs < olderThanMs) {
        this.remove(record);
        removed++;
      }
    }
    return removed;
  }

  async purge(key: string): Promise<void> {
    this.checkOpen();
    const record = this.table.peek(validateKey(key));
    if (record !== undefined) this.remove(record);
  }

  private remove(record: StoredRecord): void {
    this.table.delete(record.key);
    this.unindex(record);
  }

  private unindex(record: StoredRecord): void {
    const at = this.indexOf(record.key);
    if (at.found) this.sortedKeys.splice(at.index, 1);
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

  /** Binary search in byte order: where `key` is, or where it would be inserted. */
  private indexOf(key: string): { index: number; found: boolean } {
    let lo = 0;
    let hi = this.sortedKeys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareKeys(this.sortedKeys[mid]!, key);
      if (c === 0) return { index: mid, found: true };
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return { index: lo, found: false };
  }

  private lruTable(max: number): RecordTable {
    return new LRUCache<string, StoredRecord>({
      max,
      dispose: (record, _key, reason) => {
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
