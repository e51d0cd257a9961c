import type {
  HintStore,
  Logger,
  PurgeEntry,
  ScanOptions,
  ScanPage,
  Storage,
  StoredRecord,
  Version,
} from '@kvmesh/core';
import {
  DataDirLock,
  KvError,
  compareRecords,
  compareStamps,
  compareVersions,
  coveredBy,
  isKvError,
  silentLogger,
} from '@kvmesh/core';
import { open } from 'lmdb';
import { validateKey, validateRecord, validateUpTo } from '../validate-record.js';
import { HINTS_DB_NAME, LmdbHints, type HintsDb } from './lmdb-hints.js';
import { META_PREFIX, addToCounter, metaKey, readCounter, type Db } from './meta.js';
import { RECORD_FORMAT, decodeHead, decodeRecord, encodeRecord } from './record-codec.js';

export interface LmdbStorageOptions {
  /** Absolute directory of the lmdb environment (created if missing). */
  readonly dataDir: string;
  /** Initial map size; lmdb-js grows the map on demand. 0 = lmdb-js default. */
  readonly mapSizeBytes: number;
  /** True: a put resolves only after its transaction is fsynced. See the class comment. */
  readonly syncWrites: boolean;
  /** LZ4-compress values above 1000 bytes. */
  readonly compression: boolean;
  /**
   * The node the environment belongs to, written in its lock file and named
   * to a second process that tries to open it. Default: this process, unnamed.
   */
  readonly owner?: { readonly id: string; readonly address: string };
}

/**
 * The storage's lock file in its directory: its own name, so a node whose
 * `dataDir` is also its lmdb directory holds both locks there.
 */
export const LMDB_LOCK_FILE = 'kvmesh-storage.lock';

/** Records examined per scan page at most, so a selective filter cannot block the event loop. */
export const LMDB_SCAN_BUDGET = 10_000;

/** Tombstones removed per write transaction by collectTombstones, to keep each transaction short. */
const COLLECT_BATCH = 1_000;

// Key space of the root lmdb database: 0x00 + name for metadata, 0x01 + UTF-8
// key for records. The prefix keeps byte order (lmdb's memcmp order is UTF-8
// byte order) and lets the empty key exist, which lmdb itself refuses. LMDB
// also keeps the names of sub-databases as root keys ('hints' = 0x68...):
// outside both ranges, so no record scan or counter meets them.
const RECORD_PREFIX = META_PREFIX + 1;
const RECORDS_START = Buffer.from([RECORD_PREFIX]);
const RECORDS_END = Buffer.from([RECORD_PREFIX + 1]);
const META_FORMAT = metaKey('format');
const META_LIVE = metaKey('live');
const META_BYTES = metaKey('bytes');

/** lmdb-js's default key size limit, used when the store does not report one. */
const DEFAULT_LMDB_MAX_KEY_BYTES = 1978;
/**
 * Longest key, in UTF-8 bytes, that the storage holds with lmdb-js's
 * default build: one byte of each stored key is the record prefix.
 * `limits.maxKeyBytes` above it is refused by the config check.
 */
export const LMDB_MAX_USER_KEY_BYTES = DEFAULT_LMDB_MAX_KEY_BYTES - 1;

/**
 * Records in an lmdb environment (one memory-mapped B+tree file, copy-on-write,
 * single writer), one entry per key in the layout of `record-codec.ts`.
 *
 * One writer: `start` takes the environment's directory for this process
 * (`kvmesh-storage.lock`, the data-directory lock of core's `DataDirLock`), so a
 * second process opening it fails with KVMESH_ERR_DATA_DIR_LOCKED naming
 * the holder, and every write of the environment goes through this object.
 *
 * Atomic put-if-newer, two ways:
 * - A put that changes the live count or the byte total (a new key, a
 *   delete, a value of another size), a put of a key with another write
 *   still on its way to lmdb, and every batch run the read of the stored
 *   version, the comparison and the write in one `db.transaction()`
 *   callback. lmdb-js runs such callbacks one after another inside the
 *   environment's single write transaction, in the order they were queued
 *   among the other writes, and reads inside the callback see that
 *   transaction's own writes, so no other write can slip between the check
 *   and the write.
 * - Any other put (the overwrite of a key nobody else is writing, by a
 *   record of the same size) compares on the calling thread with the
 *   committed record and queues a plain `db.put`, which lmdb-js's write
 *   thread applies without calling back into JavaScript: about a sixth more
 *   PUTs a second on one node, since a commit no longer waits for the main
 *   thread. It is exact because nothing can change the key in between: this
 *   process is the environment's only writer, and `#writing` counts every
 *   queued write per key until lmdb-js resolved it, when reads see it.
 *
 * Counts: the live-record count and the byte total are entries of their own,
 * updated in the same transaction as the record, so `count()` is one read and
 * is never off by a racing write or a crash.
 *
 * `putBatch` applies every record in one transaction: all or none are on disk.
 * Hints live in a sub-database of the same environment (see `LmdbHints`).
 *
 * Durability: with `syncWrites` (default) the environment is opened with
 * `overlappingSync: false`, so LMDB's commit flushes data and meta pages to
 * disk (fdatasync) before lmdb-js resolves the transaction's promise: a
 * resolved put survives a kill of the process and a crash of the machine.
 * With `syncWrites: false` the environment uses lmdb-js's `overlappingSync`
 * with `separateFlushed`: a put resolves as soon as its commit is visible,
 * and the flush follows in the background (without `separateFlushed`,
 * lmdb-js 3.5 resolves only after the flush in both modes: measured with a
 * delayed fdatasync). The commit's meta page then goes to the page cache
 * before the data is flushed, rather than through an O_DSYNC descriptor
 * after it (`test/storage/lmdb.test.ts` traces both orders). A resolved put
 * still survives a killed process (the pages are in the OS cache and
 * lmdb-js restores the latest commit while the boot id is unchanged), but
 * the last moments of writes can be lost if the machine itself crashes.
 * `noSync` is never used.
 */
export class LmdbStorage implements Storage {
  readonly name = 'lmdb';
  readonly options: LmdbStorageOptions;
  readonly hints: HintStore;
  private readonly logger: Logger;
  private db: Db | undefined;
  private hintsDb: HintsDb | undefined;
  private lock: DataDirLock | undefined;
  private lmdbMaxKeyBytes = DEFAULT_LMDB_MAX_KEY_BYTES;
  private maxKeyBytes = DEFAULT_LMDB_MAX_KEY_BYTES - 1;
  /** Keys with a write queued in lmdb-js and not yet resolved, with how many. */
  readonly #writing = new Map<string, number>();

  constructor(options: LmdbStorageOptions, logger: Logger = silentLogger) {
    this.options = options;
    this.logger = logger;
    this.hints = new LmdbHints({
      opened: () => {
        const root = this.opened();
        return { root, hints: this.hintsDb! };
      },
      maxKeyBytes: () => this.lmdbMaxKeyBytes,
      read: (fn) => this.read(fn),
      write: (fn) => this.writeHints(fn),
    });
  }

  async start(): Promise<void> {
    if (this.db !== undefined) return;
    const { dataDir, mapSizeBytes, syncWrites, compression } = this.options;
    const lock = await DataDirLock.acquire(
      dataDir,
      this.options.owner ?? { id: `lmdb storage of pid ${process.pid}`, address: '-' },
      this.logger,
      {
        advice: 'stop that node first, or give this one its own lmdb directory (storage.options.dataDir)',
        file: LMDB_LOCK_FILE,
      },
    );
    let db: Db;
    try {
      db = open<Buffer, Buffer>(dataDir, {
        keyEncoding: 'binary',
        encoding: 'binary',
        noSubdir: false,
        overlappingSync: !syncWrites,
        // Without it lmdb-js 3.5 resolves a put only after its commit's flush in either mode.
        ...(syncWrites ? {} : { separateFlushed: true }),
        compression,
        ...(mapSizeBytes > 0 ? { mapSize: mapSizeBytes } : {}),
      });
    } catch (err) {
      await lock.release();
      throw ioError(`cannot open the lmdb environment in ${dataDir}`, err);
    }
    let hintsDb: HintsDb;
    try {
      await checkFormat(db, dataDir);
      hintsDb = db.openDB<Buffer, Buffer>(HINTS_DB_NAME, { keyEncoding: 'binary', encoding: 'binary', compression });
    } catch (err) {
      try {
        await db.close();
      } finally {
        await lock.release();
      }
      throw isKvError(err) ? err : ioError(`cannot read the lmdb environment in ${dataDir}`, err);
    }
    this.lock = lock;
    const reported = (db as unknown as { maxKeySize?: number }).maxKeySize;
    this.lmdbMaxKeyBytes = typeof reported === 'number' ? reported : DEFAULT_LMDB_MAX_KEY_BYTES;
    this.maxKeyBytes = this.lmdbMaxKeyBytes - 1;
    this.hintsDb = hintsDb;
    this.db = db;
    this.logger.info({ dataDir, syncWrites, compression }, 'lmdb storage opened');
  }

  async stop(): Promise<void> {
    const db = this.db;
    if (db === undefined) return;
    this.db = undefined;
    this.hintsDb = undefined;
    try {
      await db.close();
    } finally {
      const lock = this.lock;
      this.lock = undefined;
      await lock?.release();
    }
  }

  // Not async and no closure: this is the read of every key request, and an
  // lmdb read is synchronous anyway.
  get(key: string): Promise<StoredRecord | undefined> {
    try {
      const db = this.opened();
      const bytes = this.readRecord(db, recordKey(validateKey(key, this.maxKeyBytes)));
      return Promise.resolve(bytes === undefined ? undefined : decodeRecord(key, bytes));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  // Not async, and lmdb-js's promise is handed back with one handler: this
  // is the write of every key request.
  put(record: StoredRecord): Promise<boolean> {
    let db: Db;
    let key: Buffer;
    let encoded: Buffer;
    let plain = false;
    try {
      db = this.opened();
      validateRecord(record, this.maxKeyBytes);
      key = recordKey(record.key);
      encoded = encodeRecord(record);
      if (!this.#writing.has(record.key)) {
        // Nothing of this process is on its way to this key: the committed record is the latest.
        const change = changeIfNewer(record, key, encoded, this.readRecord(db, key));
        if (change === undefined) return Promise.resolve(false);
        plain = change.live === 0 && change.bytes === 0;
      }
    } catch (err) {
      return Promise.reject(err);
    }
    const keys = [record.key];
    this.#hold(keys);
    let committed: Promise<boolean>;
    try {
      committed = plain
        ? db.put(key, encoded).then(() => true)
        : db.transaction(() => {
            const change = writeIfNewer(db, record, key, encoded);
            if (change === undefined) return false;
            adjustCounters(db, change.live, change.bytes);
            return true;
          });
    } catch (err) {
      this.#release(keys);
      return Promise.reject(this.writeError(err));
    }
    return committed.then(
      (written) => {
        this.#release(keys);
        return written;
      },
      (err: unknown) => {
        this.#release(keys);
        throw this.writeError(err);
      },
    );
  }

  async putBatch(records: readonly StoredRecord[]): Promise<boolean[]> {
    const db = this.opened();
    // Encoded before the transaction: a bad record fails the batch with nothing written.
    const prepared = records.map((record) => {
      validateRecord(record, this.maxKeyBytes);
      return { record, key: recordKey(record.key), encoded: encodeRecord(record) };
    });
    if (prepared.length === 0) return [];
    return this.write(
      prepared.map((p) => p.record.key),
      () =>
        db.transaction(() => {
          let live = 0;
          let bytes = 0;
          // Reads inside the transaction see its own writes, so a repeated key compares with the earlier one.
          const written = prepared.map(({ record, key, encoded }) => {
            const change = writeIfNewer(db, record, key, encoded);
            if (change === undefined) return false;
            live += change.live;
            bytes += change.bytes;
            return true;
          });
          adjustCounters(db, live, bytes);
          return written;
        }),
    );
  }

  async count(): Promise<number> {
    const db = this.opened();
    return this.read(() => readCounter(db, META_LIVE));
  }

  async sizeBytes(): Promise<number> {
    const db = this.opened();
    return this.read(() => readCounter(db, META_BYTES));
  }

  async scan(options: ScanOptions): Promise<ScanPage> {
    const db = this.opened();
    const limit = Math.max(1, Math.floor(options.limit));
    const includeTombstones = options.tombstones ?? true;
    let start = options.start === undefined ? RECORDS_START : recordKey(validateKey(options.start));
    let exclusiveStart = false;
    if (options.after !== undefined) {
      const after = recordKey(validateKey(options.after));
      if (Buffer.compare(after, start) >= 0) {
        start = after;
        exclusiveStart = true;
      }
    }
    const end = options.end === undefined ? RECORDS_END : recordKey(validateKey(options.end));
    if (Buffer.compare(start, end) >= 0) return { records: [], next: undefined };

    return this.read(() => {
      const records: StoredRecord[] = [];
      let examined = 0;
      let last: string | undefined;
      for (const entry of db.getRange({ start, end, exclusiveStart, snapshot: true })) {
        if (records.length === limit || examined === LMDB_SCAN_BUDGET) return { records, next: last };
        examined++;
        const key = entry.key.toString('utf8', 1);
        last = key;
        if (!includeTombstones && decodeHead(key, entry.value).tombstone) continue;
        if (options.filter !== undefined && !options.filter(key)) continue;
        records.push(decodeRecord(key, entry.value));
      }
      return { records, next: undefined };
    });
  }

  async collectTombstones(olderThanMs: number): Promise<number> {
    const db = this.opened();
    let removed = 0;
    let after: Buffer | undefined;
    for (;;) {
      const batch: Buffer[] = [];
      let exhausted = true;
      this.read(() => {
        let examined = 0;
        const range = db.getRange({
          start: after ?? RECORDS_START,
          exclusiveStart: after !== undefined,
          end: RECORDS_END,
          snapshot: false,
        });
        for (const entry of range) {
          if (batch.length === COLLECT_BATCH || examined === LMDB_SCAN_BUDGET) {
            exhausted = false;
            break;
          }
          examined++;
          after = Buffer.from(entry.key);
          if (isCollectable(entry.key, entry.value, olderThanMs)) batch.push(after);
        }
      });
      if (batch.length > 0) {
        removed += await this.write(batch.map(userKey), () =>
          db.transaction(() => {
            let n = 0;
            for (const key of batch) {
              // Re-checked under the write lock: a newer put may have replaced the tombstone since the scan.
              const bytes = db.getBinary(key);
              if (bytes === undefined || !isCollectable(key, bytes, olderThanMs)) continue;
              db.removeSync(key);
              adjustCounters(db, 0, -(key.length + bytes.length));
              n++;
            }
            return n;
          }),
        );
      }
      if (exhausted) return removed;
    }
  }

  async purge(key: string, upTo: Version): Promise<boolean> {
    const [removed] = await this.purgeBatch([{ key, upTo }]);
    return removed!;
  }

  async purgeBatch(entries: readonly PurgeEntry[]): Promise<boolean[]> {
    const db = this.opened();
    // Checked before the transaction: a bad entry fails the batch with nothing removed.
    const prepared = entries.map(({ key, upTo }) => {
      validateUpTo(upTo);
      return { key, upTo, k: recordKey(validateKey(key, this.maxKeyBytes)) };
    });
    if (prepared.length === 0) return [];
    return this.write(
      prepared.map((p) => p.key),
      () =>
        db.transaction(() => {
          let live = 0;
          let bytes = 0;
          const removed = prepared.map(({ key, upTo, k }) => {
            const old = db.getBinary(k);
            if (old === undefined) return false;
            let wasLive = true;
            try {
              const head = decodeHead(key, old);
              if (!coveredBy(head.version, upTo)) return false;
              wasLive = !head.tombstone;
            } catch {
              // A damaged record must still be removable (it can never be served); most records are live.
            }
            db.removeSync(k);
            if (wasLive) live -= 1;
            bytes -= k.length + old.length;
            return true;
          });
          if (live !== 0 || bytes !== 0) adjustCounters(db, live, bytes);
          return removed;
        }),
    );
  }

  private opened(): Db {
    if (this.db === undefined) {
      throw new KvError(
        'KVMESH_ERR_STORAGE_CLOSED',
        `lmdb storage in ${this.options.dataDir} is not open (start it first; after stop, build a new one)`,
      );
    }
    return this.db;
  }

  /**
   * lmdb's reusable read buffer, not a copy: valid until the next lmdb call,
   * so the caller decodes it at once (decodeRecord copies the value out).
   */
  private readRecord(db: Db, key: Buffer): Buffer | undefined {
    try {
      return db.getBinaryFast(key);
    } catch (err) {
      throw ioError(`lmdb read in ${this.options.dataDir} failed`, err);
    }
  }

  private read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw isKvError(err) ? err : ioError(`lmdb read in ${this.options.dataDir} failed`, err);
    }
  }

  /** Runs a write transaction of records; `keys` count as being written until it settled (see `put`). */
  private async write<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    this.#hold(keys);
    try {
      return await fn();
    } catch (err) {
      throw this.writeError(err);
    } finally {
      this.#release(keys);
    }
  }

  /** Writes of the hints sub-database: no record key is involved. */
  private async writeHints<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.writeError(err);
    }
  }

  #hold(keys: readonly string[]): void {
    for (const key of keys) this.#writing.set(key, (this.#writing.get(key) ?? 0) + 1);
  }

  #release(keys: readonly string[]): void {
    for (const key of keys) {
      const n = this.#writing.get(key)!;
      if (n === 1) this.#writing.delete(key);
      else this.#writing.set(key, n - 1);
    }
  }

  private writeError(err: unknown): unknown {
    return isKvError(err) ? err : ioError(`lmdb write in ${this.options.dataDir} failed`, err);
  }
}

/** The user key of a stored record's lmdb key. */
function userKey(key: Buffer): string {
  return key.toString('utf8', 1);
}

function recordKey(key: string): Buffer {
  const out = Buffer.allocUnsafe(1 + Buffer.byteLength(key, 'utf8'));
  out[0] = RECORD_PREFIX;
  out.write(key, 1, 'utf8');
  return out;
}

function isCollectable(key: Buffer, bytes: Uint8Array, olderThanMs: number): boolean {
  try {
    const head = decodeHead(key.toString('utf8', 1), bytes);
    return head.tombstone && head.version.wallMs < olderThanMs;
  } catch {
    return false;
  }
}

/**
 * Put-if-newer of one encoded record; must run inside a write transaction.
 * Resolves to the change of the live count and byte total, or undefined when
 * an equal or newer version is stored.
 */
function writeIfNewer(
  db: Db,
  record: StoredRecord,
  key: Buffer,
  encoded: Buffer,
): { live: number; bytes: number } | undefined {
  // Read without a copy: only the head and length are used, before the next lmdb call.
  const change = changeIfNewer(record, key, encoded, db.getBinaryFast(key));
  if (change !== undefined) db.putSync(key, encoded);
  return change;
}

/**
 * What storing `record` over `old` (the stored bytes of its key, if any)
 * changes in the live count and byte total, or undefined when `old` is an
 * equal or newer version.
 */
function changeIfNewer(
  record: StoredRecord,
  key: Buffer,
  encoded: Buffer,
  old: Buffer | undefined,
): { live: number; bytes: number } | undefined {
  let live = record.tombstone ? 0 : 1;
  let bytes = key.length + encoded.length;
  if (old !== undefined) {
    const head = decodeHead(record.key, old);
    const order = compareVersions(record.version, head.version);
    // One timestamp from two nodes: the values decide (compareRecords), which only then are read whole.
    const tie = order !== 0 && compareStamps(record.version, head.version) === 0;
    if (tie ? compareRecords(record, decodeRecord(record.key, old)) <= 0 : order <= 0) return undefined;
    if (!head.tombstone) live -= 1;
    bytes -= key.length + old.length;
  }
  return { live, bytes };
}

/** Must run inside a write transaction. */
function adjustCounters(db: Db, liveDelta: number, bytesDelta: number): void {
  addToCounter(db, META_LIVE, liveDelta);
  addToCounter(db, META_BYTES, bytesDelta);
}

/** Stamps a new environment with the layout version; refuses one stamped by a newer layout. */
async function checkFormat(db: Db, dataDir: string): Promise<void> {
  const stamp = db.getBinary(META_FORMAT);
  if (stamp === undefined) {
    await db.put(META_FORMAT, Buffer.from([RECORD_FORMAT]));
    return;
  }
  if (stamp.length !== 1 || stamp[0] !== RECORD_FORMAT) {
    throw new KvError(
      'KVMESH_ERR_STORAGE_CORRUPT',
      `the lmdb environment in ${dataDir} has layout ${stamp[0]}; this kvmesh reads layout ${RECORD_FORMAT}`,
    );
  }
}

function ioError(message: string, err: unknown): KvError {
  const detail = err instanceof Error ? err.message : String(err);
  return new KvError('KVMESH_ERR_STORAGE_IO', `${message}: ${detail}`, { cause: err });
}
