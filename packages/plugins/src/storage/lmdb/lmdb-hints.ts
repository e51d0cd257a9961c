import type { Hint, HintPage, HintStore, StoredRecord, Version } from '@kvmesh/core';
import { KvError, compareKeys, compareRecords, coveredBy } from '@kvmesh/core';
import type { Database } from 'lmdb';
import { validateHint, validateKey, validateTarget, validateUpTo } from '../validate-record.js';
import { addToCounter, metaKey, readCounter, type Db } from './meta.js';
import { decodeHead, decodeRecord, encodeRecord } from './record-codec.js';

/** Name of the lmdb sub-database that holds the hints. */
export const HINTS_DB_NAME = 'hints';

/** Root-database entry counting the hints, updated in the transaction that adds or removes one. */
export const META_HINTS = metaKey('hints');

export type HintsDb = Database<Buffer, Buffer>;

/** The open databases, or a KVMESH_ERR_STORAGE_CLOSED throw; given by the storage that owns the hints. */
export interface HintDatabases {
  opened(): { readonly root: Db; readonly hints: HintsDb };
  /** Longest lmdb key the environment accepts. */
  maxKeyBytes(): number;
  /** Runs `fn`, turning an lmdb failure into KVMESH_ERR_STORAGE_IO. */
  read<T>(fn: () => T): T;
  write<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * Hints in a sub-database of their own (`openDB('hints')`), so no range over
 * the root database, where the records are, can meet one: `get`, `count`,
 * `scan`, `sizeBytes` and `collectTombstones` never see hints, and the
 * record counters do not include them. They share the environment, so a
 * resolved `add` or `remove` is exactly as durable as a resolved `put`.
 *
 * Key of a hint: uint16 BE byte length of the target, the target's UTF-8,
 * then the record key's UTF-8. The length prefix keeps one target's hints
 * contiguous and in key order whatever bytes the target holds; the value is
 * the record in the `record-codec.ts` layout. The prefix order is by length
 * first, so `targets()` sorts the few targets it finds.
 *
 * `add` and `remove` read, compare and write in one `transaction()` callback
 * (atomic, as `put` is); the hint count lives in the root database and is
 * updated in the same transaction.
 */
export class LmdbHints implements HintStore {
  readonly #dbs: HintDatabases;

  constructor(dbs: HintDatabases) {
    this.#dbs = dbs;
  }

  async add(hint: Hint): Promise<void> {
    const { root, hints } = this.#dbs.opened();
    validateHint(hint);
    const key = this.#hintKey(hint.target, hint.record.key);
    const encoded = encodeRecord(hint.record);
    const { record } = hint;
    await this.#dbs.write(() =>
      root.transaction(() => {
        const old = hints.getBinaryFast(key);
        if (old !== undefined && !isOlderOrDamaged(record.key, old, record)) return;
        hints.putSync(key, encoded);
        if (old === undefined) addToCounter(root, META_HINTS, 1);
      }),
    );
  }

  async targets(): Promise<string[]> {
    const { hints } = this.#dbs.opened();
    return this.#dbs.read(() => {
      const found: string[] = [];
      let start: Buffer = Buffer.from([0, 0]);
      for (;;) {
        let prefix: Buffer | undefined;
        for (const key of hints.getKeys({ start, limit: 1, snapshot: false })) prefix = targetPrefixOf(key);
        if (prefix === undefined) break;
        found.push(prefix.toString('utf8', 2));
        start = prefixEnd(prefix);
      }
      return found.sort(compareKeys);
    });
  }

  async list(target: string, options: { readonly after?: string; readonly limit: number }): Promise<HintPage> {
    const { hints } = this.#dbs.opened();
    const prefix = targetPrefix(validateTarget(target));
    const limit = Math.max(1, Math.floor(options.limit));
    const start = options.after === undefined ? prefix : Buffer.concat([prefix, utf8(validateKey(options.after))]);
    return this.#dbs.read(() => {
      const page: Hint[] = [];
      let last: string | undefined;
      const range = hints.getRange({
        start,
        end: prefixEnd(prefix),
        exclusiveStart: options.after !== undefined,
        snapshot: true,
      });
      for (const entry of range) {
        if (page.length === limit) return { hints: page, next: last };
        const key = entry.key.toString('utf8', prefix.length);
        last = key;
        page.push({ target, record: decodeRecord(key, entry.value) });
      }
      return { hints: page, next: undefined };
    });
  }

  async remove(target: string, key: string, upTo: Version): Promise<boolean> {
    const { root, hints } = this.#dbs.opened();
    validateUpTo(upTo);
    const k = this.#hintKey(validateTarget(target), validateKey(key));
    return this.#dbs.write(() =>
      root.transaction(() => {
        const old = hints.getBinary(k);
        if (old === undefined) return false;
        if (!isCoveredOrDamaged(key, old, upTo)) return false;
        hints.removeSync(k);
        addToCounter(root, META_HINTS, -1);
        return true;
      }),
    );
  }

  async count(): Promise<number> {
    const { root } = this.#dbs.opened();
    return this.#dbs.read(() => readCounter(root, META_HINTS));
  }

  #hintKey(target: string, key: string): Buffer {
    const out = Buffer.concat([targetPrefix(target), utf8(key)]);
    const max = this.#dbs.maxKeyBytes();
    if (out.length > max) {
      throw new KvError(
        'KVMESH_ERR_STORAGE_KEY_INVALID',
        `a hint for ${JSON.stringify(target)} needs a ${out.length}-byte lmdb key (2 + target + key); lmdb accepts at most ${max}`,
        { details: { hintKeyBytes: out.length, maxKeyBytes: max } },
      );
    }
    return out;
  }
}

/**
 * True when the stored hint is older than `record` (`compareRecords`). A
 * hint that cannot be decoded counts as older: it could never be replayed,
 * so it may be replaced.
 */
function isOlderOrDamaged(key: string, stored: Uint8Array, record: StoredRecord): boolean {
  try {
    return compareRecords(decodeRecord(key, stored), record) < 0;
  } catch {
    return true;
  }
}

/** True when the stored hint may go once `upTo` was replayed (`coveredBy`), or cannot be decoded. */
function isCoveredOrDamaged(key: string, stored: Uint8Array, upTo: Version): boolean {
  try {
    return coveredBy(decodeHead(key, stored).version, upTo);
  } catch {
    return true;
  }
}

function utf8(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

function targetPrefix(target: string): Buffer {
  const bytes = utf8(target);
  if (bytes.length > 0xffff) {
    throw new KvError('KVMESH_ERR_STORAGE_RECORD_INVALID', `a hint target must be at most 65535 bytes of UTF-8`);
  }
  const out = Buffer.allocUnsafe(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  bytes.copy(out, 2);
  return out;
}

function targetPrefixOf(key: Buffer): Buffer {
  return Buffer.from(key.subarray(0, 2 + key.readUInt16BE(0)));
}

/**
 * The first key after every key that starts with `prefix`. A target is
 * non-empty UTF-8, which never holds the byte 0xff, so adding one to the
 * last byte cannot carry.
 */
function prefixEnd(prefix: Buffer): Buffer {
  const out = Buffer.from(prefix);
  out[out.length - 1]! += 1;
  return out;
}
