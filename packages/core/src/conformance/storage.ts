import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext, TestFn } from 'ava';
import type { Hint, StoredRecord, Storage, Version } from '../contracts/storage.js';
import { compareVersions } from '../kv/hlc.js';
import type { AnyPluginManifest } from '../plugin.js';

/** Where a storage under test keeps its files: a fresh directory per test, removed afterwards. */
export interface StorageConformanceContext {
  readonly dir: string;
}

export interface StorageConformanceOptions {
  /** Builds a new, not yet started storage that keeps its files (if any) in `ctx.dir`. */
  readonly create: (ctx: StorageConformanceContext) => Promise<Storage>;
  /** True when records must survive stop and re-creation on the same directory. */
  readonly durable: boolean;
  /** Builds the storage again on a directory used before; defaults to `create`. */
  readonly reopen?: (ctx: StorageConformanceContext) => Promise<Storage>;
  /** Prefix of every test title, so several suites can share a file. Default `storage`. */
  readonly title?: string;
  /**
   * The plugin's manifest and the options `create` builds with: its
   * `checkConfig` is held to what the storage holds (every key length it
   * accepts as `limits.maxKeyBytes` is stored and read back, the default
   * 1024 included). Omitted: that case is not run.
   */
  readonly plugin?: { readonly manifest: AnyPluginManifest; readonly options: Readonly<Record<string, unknown>> };
}

/** `limits.maxKeyBytes` values whose acceptance by a storage's `checkConfig` is checked against the storage. */
const KEY_LIMITS_CHECKED = [1024, 1977, 1978, 4096, 65_536];

const UTF8 = new TextEncoder();

/** A record with sensible defaults, for tests of Storage implementations. */
export function storageRecord(
  key: string,
  value: string | Uint8Array,
  version: Partial<Version> & Pick<Version, 'wallMs'>,
  extra: { tombstone?: boolean; contentType?: string } = {},
): StoredRecord {
  const tombstone = extra.tombstone ?? false;
  return {
    key,
    value: tombstone ? new Uint8Array(0) : typeof value === 'string' ? UTF8.encode(value) : value,
    contentType: extra.contentType ?? (tombstone ? '' : 'application/octet-stream'),
    version: { wallMs: version.wallMs, logical: version.logical ?? 0, node: version.node ?? 'n1' },
    tombstone,
  };
}

/** A version with the defaults of `storageRecord` (logical 0, node `n1`). */
export function storageVersion(wallMs: number, logical = 0, node = 'n1'): Version {
  return { wallMs, logical, node };
}

/**
 * The contract tests every Storage runs unchanged: version rule (put-if-newer,
 * ties by node id, tombstones), counts, ordered and paged scans, tombstone
 * collection, batch puts, purge up to a version, hints kept apart from the
 * records, concurrency on one key, awkward keys and values, lifecycle, and
 * (when `durable`) survival of records and hints across stop and re-creation.
 *
 * Call it from an ava test file: `runStorageConformance(test, { create, durable })`.
 */
export function runStorageConformance(test: TestFn, options: StorageConformanceOptions): void {
  const prefix = options.title ?? 'storage';
  const reopen = options.reopen ?? options.create;

  const dirFor = async (t: ExecutionContext): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'kvmesh-storage-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    return dir;
  };

  const started = async (
    t: ExecutionContext,
    dir: string,
    build: StorageConformanceOptions['create'] = options.create,
  ): Promise<Storage> => {
    const storage = await build({ dir });
    // Teardowns run last-in first-out, so the storage stops before its directory goes.
    t.teardown(async () => {
      await storage.stop?.();
    });
    await storage.start?.();
    return storage;
  };

  const open = async (t: ExecutionContext): Promise<Storage> => started(t, await dirFor(t));

  if (options.plugin !== undefined) {
    const { manifest, options: pluginOptions } = options.plugin;
    test(`${prefix}: every limits.maxKeyBytes the config check accepts is a key length the storage holds`, async (t) => {
      const s = await open(t);
      const accepted: number[] = [];
      for (const maxKeyBytes of KEY_LIMITS_CHECKED) {
        const config = { limits: { maxKeyBytes, maxValueBytes: 1_048_576 } };
        const problems = manifest.checkConfig?.(pluginOptions, config) ?? [];
        if (problems.length > 0) {
          t.true(
            problems.every((p) => p.path === '/limits/maxKeyBytes' && p.message.length > 0),
            `a refused key limit names /limits/maxKeyBytes: ${JSON.stringify(problems)}`,
          );
          continue;
        }
        accepted.push(maxKeyBytes);
        // Multi-byte characters, so that bytes and not characters are what counts.
        const key = 'é'.repeat(Math.floor(maxKeyBytes / 2)) + 'k'.repeat(maxKeyBytes % 2);
        t.is(UTF8.encode(key).length, maxKeyBytes);
        const record = storageRecord(key, 'v', { wallMs: 1_700_000_000_000 });
        t.true(await s.put(record), `a key of ${maxKeyBytes} bytes is stored`);
        assertRecord(t, await s.get(key), record);
      }
      t.true(accepted.includes(1024), 'the default limits.maxKeyBytes (1024) is accepted');
    });
  }

  test(`${prefix}: get of an absent key resolves to undefined`, async (t) => {
    const s = await open(t);
    t.is(await s.get('absent'), undefined);
    t.is(await s.count(), 0);
  });

  test(`${prefix}: put then get returns the same bytes, content type, version and tombstone flag`, async (t) => {
    const s = await open(t);
    const record = storageRecord(
      'k',
      'hello',
      { wallMs: 1_700_000_000_123, logical: 7, node: 'node-a' },
      {
        contentType: 'text/plain; charset=utf-8',
      },
    );
    t.true(await s.put(record));
    assertRecord(t, await s.get('k'), record);
  });

  test(`${prefix}: put refuses an equal or older version and keeps the stored record`, async (t) => {
    const s = await open(t);
    const stored = storageRecord('k', 'v2', { wallMs: 2000, logical: 5, node: 'b' });
    t.true(await s.put(stored));
    t.false(await s.put(storageRecord('k', 'same', { wallMs: 2000, logical: 5, node: 'b' })));
    t.false(await s.put(storageRecord('k', 'older-logical', { wallMs: 2000, logical: 4, node: 'z' })));
    t.false(await s.put(storageRecord('k', 'older-wall', { wallMs: 1999, logical: 60000, node: 'z' })));
    t.false(await s.put(storageRecord('k', 'older-node', { wallMs: 2000, logical: 5, node: 'a' })));
    assertRecord(t, await s.get('k'), stored);
  });

  test(`${prefix}: a newer version replaces the stored record (wallMs first, then logical)`, async (t) => {
    const s = await open(t);
    t.true(await s.put(storageRecord('k', 'v1', { wallMs: 1000, logical: 9, node: 'z' })));
    const byLogical = storageRecord('k', 'v2', { wallMs: 1000, logical: 10, node: 'a' });
    t.true(await s.put(byLogical));
    assertRecord(t, await s.get('k'), byLogical);
    const byWall = storageRecord('k', 'v3', { wallMs: 1001, logical: 0, node: 'a' }, { contentType: 'text/x' });
    t.true(await s.put(byWall));
    assertRecord(t, await s.get('k'), byWall);
    t.is(await s.count(), 1);
  });

  test(`${prefix}: equal timestamps from two nodes are ordered by value, then node id, whatever the arrival order`, async (t) => {
    const s = await open(t);
    // Node order and value order disagree: the value decides (compareRecords).
    const low = storageRecord('x', 'apple', { wallMs: 5000, logical: 1, node: 'node-z' });
    const high = storageRecord('x', 'pear', { wallMs: 5000, logical: 1, node: 'node-a' });
    t.true(await s.put(low));
    t.true(await s.put(high));
    assertRecord(t, await s.get('x'), high);
    t.true(await s.put({ ...high, key: 'y' }));
    t.false(await s.put({ ...low, key: 'y' }));
    assertRecord(t, await s.get('y'), { ...high, key: 'y' });
    // A value that is a prefix of the other is the lower; a tombstone's empty value is lowest.
    const prefix = storageRecord('z', 'pea', { wallMs: 5000, logical: 1, node: 'node-z' });
    const gone = storageRecord('z', '', { wallMs: 5000, logical: 1, node: 'node-y' }, { tombstone: true });
    t.true(await s.put({ ...high, key: 'z' }));
    t.false(await s.put(prefix));
    t.false(await s.put(gone));
    assertRecord(t, await s.get('z'), { ...high, key: 'z' });
    // Equal values: the node id decides.
    const same = storageRecord('w', 'pear', { wallMs: 5000, logical: 1, node: 'node-b' });
    t.true(await s.put({ ...high, key: 'w' }));
    t.true(await s.put(same));
    assertRecord(t, await s.get('w'), same);
    // putBatch keeps the same order, a repeated key included.
    t.deepEqual(
      await s.putBatch([
        { ...high, key: 'v' },
        { ...low, key: 'v' },
      ]),
      [true, false],
    );
    assertRecord(t, await s.get('v'), { ...high, key: 'v' });
  });

  test(`${prefix}: a tombstone beats an older put and is refused when older`, async (t) => {
    const s = await open(t);
    t.true(await s.put(storageRecord('k', 'live', { wallMs: 1000 })));
    const tomb = storageRecord('k', '', { wallMs: 2000 }, { tombstone: true });
    t.true(await s.put(tomb));
    assertRecord(t, await s.get('k'), tomb);
    t.false(await s.put(storageRecord('k', 'late-old-write', { wallMs: 1500 })));
    t.false(await s.put(storageRecord('k', '', { wallMs: 1999 }, { tombstone: true })));
    assertRecord(t, await s.get('k'), tomb);
    t.is(await s.count(), 0);

    t.true(await s.put(storageRecord('j', 'newer', { wallMs: 3000 })));
    t.false(await s.put(storageRecord('j', '', { wallMs: 2500 }, { tombstone: true })));
    t.is((await s.get('j'))?.tombstone, false);

    const revived = storageRecord('k', 'revived', { wallMs: 2001 });
    t.true(await s.put(revived));
    assertRecord(t, await s.get('k'), revived);
    t.is(await s.count(), 2);
  });

  test(`${prefix}: a tombstone for a key never written is stored`, async (t) => {
    const s = await open(t);
    const tomb = storageRecord('ghost', '', { wallMs: 10 }, { tombstone: true });
    t.true(await s.put(tomb));
    assertRecord(t, await s.get('ghost'), tomb);
    t.false(await s.put(storageRecord('ghost', 'old', { wallMs: 9 })));
    t.is(await s.count(), 0);
  });

  test(`${prefix}: count counts live records only`, async (t) => {
    const s = await open(t);
    t.is(await s.count(), 0);
    for (const key of ['a', 'b', 'c', 'd']) await s.put(storageRecord(key, key, { wallMs: 100 }));
    t.is(await s.count(), 4);
    await s.put(storageRecord('b', '', { wallMs: 200 }, { tombstone: true }));
    await s.put(storageRecord('zz', '', { wallMs: 200 }, { tombstone: true }));
    t.is(await s.count(), 3);
    await s.put(storageRecord('a', 'a2', { wallMs: 200 }));
    t.is(await s.count(), 3, 'overwriting a live record does not change the count');
    await s.put(storageRecord('b', '', { wallMs: 300 }, { tombstone: true }));
    t.is(await s.count(), 3, 'a newer tombstone over a tombstone does not change the count');
    t.true(await s.purge('c', storageVersion(100)));
    t.true(await s.purge('zz', storageVersion(200)));
    t.false(await s.purge('never-there', storageVersion(200)));
    t.is(await s.count(), 2);
    await s.put(storageRecord('b', 'back', { wallMs: 400 }));
    t.is(await s.count(), 3);
  });

  test(`${prefix}: sizeBytes grows with stored keys and values and shrinks after purge`, async (t) => {
    const s = await open(t);
    const empty = await s.sizeBytes();
    t.true(empty >= 0);
    await s.put(storageRecord('first', new Uint8Array(10_000), { wallMs: 1 }));
    const one = await s.sizeBytes();
    t.true(one >= empty + 10_000, `expected at least ${empty + 10_000}, got ${one}`);
    await s.put(storageRecord('second', new Uint8Array(20_000), { wallMs: 1 }));
    const two = await s.sizeBytes();
    t.true(two >= one + 20_000, `expected at least ${one + 20_000}, got ${two}`);
    await s.purge('second', storageVersion(1));
    t.true((await s.sizeBytes()) < two);
  });

  test(`${prefix}: scan returns records in UTF-8 byte order`, async (t) => {
    const s = await open(t);
    const keys = ['b', 'a', 'ab', 'A', '', 'é', 'z', '\u{1F600}', '\uFFFD', '\uE000', 'a\u0000', '0', '~', '日本'];
    for (const key of keys) await s.put(storageRecord(key, key, { wallMs: 1 }));
    const page = await s.scan({ limit: 100 });
    t.deepEqual(
      page.records.map((r) => r.key),
      [...keys].sort(byteOrder),
    );
    t.is(page.next, undefined);
    for (const r of page.records) t.is(Buffer.from(r.value).toString('utf8'), r.key);
  });

  test(`${prefix}: paging with after/next visits every key exactly once`, async (t) => {
    const s = await open(t);
    const keys = Array.from({ length: 1000 }, (_, i) => `key-${(i * 7919) % 1000}`);
    await Promise.all(keys.map((key) => s.put(storageRecord(key, key, { wallMs: 1 }))));
    const seen = await scanAll(t, s, { limit: 37 });
    t.deepEqual(seen, [...keys].sort(byteOrder));
  });

  test(`${prefix}: scan honours start (inclusive) and end (exclusive), also across pages`, async (t) => {
    const s = await open(t);
    const keys = Array.from({ length: 50 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    for (const key of keys) await s.put(storageRecord(key, key, { wallMs: 1 }));
    const page = await s.scan({ start: 'k10', end: 'k20', limit: 100 });
    t.deepEqual(
      page.records.map((r) => r.key),
      keys.slice(10, 20),
    );
    t.is(page.next, undefined);
    t.deepEqual(await scanAll(t, s, { start: 'k05', end: 'k45', limit: 4 }), keys.slice(5, 45));
    t.deepEqual(await scanAll(t, s, { start: 'k4', limit: 3 }), keys.slice(40));
    t.deepEqual(await scanAll(t, s, { end: 'k03', limit: 2 }), keys.slice(0, 3));
    t.deepEqual(
      (await s.scan({ start: 'k30', after: 'k35', limit: 2 })).records.map((r) => r.key),
      ['k36', 'k37'],
    );
    t.deepEqual(
      (await s.scan({ start: 'k30', after: 'k10', limit: 1 })).records.map((r) => r.key),
      ['k30'],
    );
    t.deepEqual((await s.scan({ start: 'k20', end: 'k20', limit: 10 })).records, []);
  });

  test(`${prefix}: scan applies the filter and pages through every match`, async (t) => {
    const s = await open(t);
    const keys = Array.from({ length: 300 }, (_, i) => `f${i}`);
    for (const key of keys) await s.put(storageRecord(key, key, { wallMs: 1 }));
    const even = (key: string): boolean => Number(key.slice(1)) % 2 === 0;
    const seen = await scanAll(t, s, { limit: 16, filter: even });
    t.deepEqual(seen, keys.filter(even).sort(byteOrder));
    const none = await scanAll(t, s, { limit: 16, filter: () => false });
    t.deepEqual(none, []);
  });

  test(`${prefix}: scan includes tombstones by default and leaves them out with tombstones: false`, async (t) => {
    const s = await open(t);
    await s.put(storageRecord('a', 'a', { wallMs: 1 }));
    await s.put(storageRecord('b', '', { wallMs: 1 }, { tombstone: true }));
    await s.put(storageRecord('c', 'c', { wallMs: 1 }));
    await s.put(storageRecord('d', '', { wallMs: 1 }, { tombstone: true }));
    const all = await s.scan({ limit: 10 });
    t.deepEqual(
      all.records.map((r) => [r.key, r.tombstone]),
      [
        ['a', false],
        ['b', true],
        ['c', false],
        ['d', true],
      ],
    );
    t.deepEqual(await scanAll(t, s, { limit: 1, tombstones: false }), ['a', 'c']);
  });

  test(`${prefix}: collectTombstones removes only tombstones older than the threshold`, async (t) => {
    const s = await open(t);
    await s.put(storageRecord('live-old', 'x', { wallMs: 100 }));
    await s.put(storageRecord('tomb-old', '', { wallMs: 1000 }, { tombstone: true }));
    await s.put(storageRecord('tomb-old-2', '', { wallMs: 1499, logical: 3 }, { tombstone: true }));
    await s.put(storageRecord('tomb-at', '', { wallMs: 1500 }, { tombstone: true }));
    await s.put(storageRecord('tomb-new', '', { wallMs: 2000 }, { tombstone: true }));
    t.is(await s.collectTombstones(1500), 2);
    t.is(await s.get('tomb-old'), undefined);
    t.is(await s.get('tomb-old-2'), undefined);
    t.truthy(await s.get('tomb-at'));
    t.truthy(await s.get('tomb-new'));
    t.is((await s.get('live-old'))?.tombstone, false);
    t.is(await s.count(), 1);
    t.is(await s.collectTombstones(1500), 0);
    t.deepEqual(await scanAll(t, s, { limit: 10 }), ['live-old', 'tomb-at', 'tomb-new']);
  });

  test(`${prefix}: purge(key, upTo) removes that version or an older timestamp and keeps the rest`, async (t) => {
    const s = await open(t);
    const p = storageRecord('p', 'v', { wallMs: 9_000_000, logical: 2 });
    await s.put(p);
    await s.put(storageRecord('q', '', { wallMs: 9_000_000 }, { tombstone: true }));
    t.false(await s.purge('p', storageVersion(9_000_000, 1)), 'a write newer than the copied version stays');
    t.false(await s.purge('p', storageVersion(8_999_999, 60_000)));
    assertRecord(t, await s.get('p'), p);
    t.true(await s.purge('p', p.version), 'the copied version itself goes');
    t.true(await s.purge('q', storageVersion(9_000_001)), 'an older tombstone goes too');
    t.false(await s.purge('p', p.version), 'nothing left to remove');
    t.false(await s.purge('never-there', storageVersion(1)));
    t.is(await s.get('p'), undefined);
    t.is(await s.get('q'), undefined);
    t.deepEqual((await s.scan({ limit: 10 })).records, []);
    t.true(await s.put(storageRecord('p', 'older-after-purge', { wallMs: 1 })), 'purge forgets the old version');
    t.is(await s.count(), 1);

    // A record of the copied timestamp from another node stays, whichever node id sorts first: only
    // the values order the two, and the move's next pass copies the one that stayed.
    await s.put(storageRecord('tie', 'from-b', { wallMs: 5, node: 'b' }));
    t.false(await s.purge('tie', storageVersion(5, 0, 'a')));
    t.false(await s.purge('tie', storageVersion(5, 0, 'c')));
    t.true(await s.purge('tie', storageVersion(5, 0, 'b')));
  });

  test(`${prefix}: purgeBatch purges as purge does, per entry and in order; a bad entry removes nothing`, async (t) => {
    const s = await open(t);
    if (s.purgeBatch === undefined) {
      t.log('no purgeBatch: movement purges key by key');
      t.pass();
      return;
    }
    await s.put(storageRecord('a', 'v', { wallMs: 100 }));
    await s.put(storageRecord('b', 'v', { wallMs: 200 }));
    await s.put(storageRecord('c', '', { wallMs: 300 }, { tombstone: true }));
    await s.put(storageRecord('d', 'v', { wallMs: 400, node: 'x' }));
    const bytesBefore = await s.sizeBytes();
    t.deepEqual(
      await s.purgeBatch([
        { key: 'a', upTo: storageVersion(100) },
        { key: 'b', upTo: storageVersion(199) },
        { key: 'c', upTo: storageVersion(301) },
        { key: 'never-there', upTo: storageVersion(1) },
        { key: 'd', upTo: storageVersion(400, 0, 'y') },
      ]),
      [true, false, true, false, false],
      'the copied version goes, a newer one and one of the same timestamp from another node stay',
    );
    t.is(await s.get('a'), undefined);
    t.is(await s.get('c'), undefined);
    t.is(await s.count(), 2);
    t.true((await s.sizeBytes()) < bytesBefore);
    t.deepEqual(await s.purgeBatch([]), []);
    const bad = { key: 'a', upTo: { wallMs: -1, logical: 0, node: '' } };
    await t.throwsAsync(s.purgeBatch([{ key: 'b', upTo: storageVersion(200) }, bad]));
    t.truthy(await s.get('b'), 'a batch with a bad entry removes nothing');
  });

  test(`${prefix}: putBatch writes newer versions only and resolves per record, repeated keys included`, async (t) => {
    const s = await open(t);
    t.deepEqual(await s.putBatch([]), []);
    await s.put(storageRecord('a', 'a5', { wallMs: 5 }));
    const results = await s.putBatch([
      storageRecord('a', 'a4', { wallMs: 4 }),
      storageRecord('b', 'b1', { wallMs: 1 }),
      storageRecord('b', 'b3', { wallMs: 3 }),
      storageRecord('b', 'b2', { wallMs: 2 }),
      storageRecord('c', '', { wallMs: 1 }, { tombstone: true }),
      storageRecord('a', 'a6', { wallMs: 6 }, { contentType: 'text/plain' }),
      storageRecord('b', 'b3-again', { wallMs: 3 }),
      storageRecord('c', 'c0', { wallMs: 0 }),
    ]);
    t.deepEqual(results, [false, true, true, false, true, true, false, false]);
    assertRecord(t, await s.get('a'), storageRecord('a', 'a6', { wallMs: 6 }, { contentType: 'text/plain' }));
    assertRecord(t, await s.get('b'), storageRecord('b', 'b3', { wallMs: 3 }));
    assertRecord(t, await s.get('c'), storageRecord('c', '', { wallMs: 1 }, { tombstone: true }));
    t.is(await s.count(), 2, 'a and b live, c a tombstone');
    t.deepEqual(await scanAll(t, s, { limit: 2 }), ['a', 'b', 'c']);
    t.false(await s.put(storageRecord('b', 'b2', { wallMs: 2 })), 'the version rule holds after a batch');
  });

  test(`${prefix}: putBatch of many records is readable and counted like single puts`, async (t) => {
    const s = await open(t);
    const keys = Array.from({ length: 500 }, (_, i) => `batch-${(i * 7919) % 500}`);
    const written = await s.putBatch(keys.map((key, i) => storageRecord(key, `v${i}`, { wallMs: 10 })));
    t.is(written.length, keys.length);
    t.true(written.every(Boolean));
    t.is(await s.count(), keys.length);
    t.true((await s.sizeBytes()) > 0);
    t.deepEqual(await scanAll(t, s, { limit: 64 }), [...keys].sort(byteOrder));
    t.is(text((await s.get(keys[42]!))?.value), 'v42');
  });

  test(`${prefix}: hints are not seen by get, count, scan, sizeBytes, collectTombstones or purge`, async (t) => {
    const s = await open(t);
    const own = storageRecord('a', 'own', { wallMs: 1 });
    await s.put(own);
    const size = await s.sizeBytes();
    await s.hints.add({ target: 'n2', record: storageRecord('a', 'hinted-a', { wallMs: 50 }) });
    await s.hints.add({ target: 'n2', record: storageRecord('b', new Uint8Array(10_000), { wallMs: 50 }) });
    await s.hints.add({ target: 'n3', record: storageRecord('old-tomb', '', { wallMs: 1 }, { tombstone: true }) });
    t.is(await s.hints.count(), 3);
    assertRecord(t, await s.get('a'), own);
    t.is(await s.get('b'), undefined);
    t.is(await s.get('old-tomb'), undefined);
    t.is(await s.count(), 1);
    t.is(await s.sizeBytes(), size, 'hint bytes are not record bytes');
    t.deepEqual(await scanAll(t, s, { limit: 10 }), ['a']);
    t.deepEqual(await scanAll(t, s, { limit: 10, tombstones: false }), ['a']);
    t.is(await s.collectTombstones(Number.MAX_SAFE_INTEGER), 0);
    t.false(await s.purge('b', storageVersion(100)));
    t.is(await s.hints.count(), 3, 'record operations leave hints alone');

    t.true(await s.put(storageRecord('b', 'own-b', { wallMs: 1 })), 'a hint does not take part in the version rule');
    t.true(await s.purge('a', own.version));
    const n2 = await s.hints.list('n2', { limit: 10 });
    t.deepEqual(
      n2.hints.map((h) => [h.target, h.record.key, h.record.version.wallMs]),
      [
        ['n2', 'a', 50],
        ['n2', 'b', 50],
      ],
    );
    t.is(n2.hints[1]!.record.value.length, 10_000);
  });

  test(`${prefix}: hints: add keeps the newer of two hints for one target and key`, async (t) => {
    const s = await open(t);
    const v2 = storageRecord('k', 'v2', { wallMs: 2, node: 'b' });
    await s.hints.add({ target: 'n2', record: v2 });
    await s.hints.add({ target: 'n2', record: storageRecord('k', 'v1', { wallMs: 1 }) });
    await s.hints.add({ target: 'n2', record: storageRecord('k', 'v2-other-bytes', { wallMs: 2, node: 'b' }) });
    await s.hints.add({ target: 'n2', record: storageRecord('k', 'tie-lower-node', { wallMs: 2, node: 'a' }) });
    assertHint(t, await onlyHint(s, 'n2'), { target: 'n2', record: v2 });
    const tomb = storageRecord('k', '', { wallMs: 3 }, { tombstone: true });
    await s.hints.add({ target: 'n2', record: tomb });
    assertHint(t, await onlyHint(s, 'n2'), { target: 'n2', record: tomb });
    const other = storageRecord('k', 'for-n3', { wallMs: 1 }, { contentType: 'text/plain' });
    await s.hints.add({ target: 'n3', record: other });
    assertHint(t, await onlyHint(s, 'n3'), { target: 'n3', record: other });
    assertHint(t, await onlyHint(s, 'n2'), { target: 'n2', record: tomb });
    t.is(await s.hints.count(), 2, 'one hint per (target, key)');
  });

  test(`${prefix}: hints: concurrent adds for one target and key keep the newest`, async (t) => {
    const s = await open(t);
    const versions: Version[] = [];
    for (let wallMs = 1; wallMs <= 10; wallMs++) {
      for (const node of ['a', 'b', 'c']) versions.push({ wallMs, logical: wallMs % 3, node });
    }
    const shuffled = versions.map((v, i) => ({ v, k: (i * 7331) % versions.length })).sort((x, y) => x.k - y.k);
    await Promise.all(
      shuffled.map(({ v }) => s.hints.add({ target: 'n2', record: storageRecord('hot', `${v.wallMs}${v.node}`, v) })),
    );
    const newest = [...versions].sort(compareVersions).at(-1)!;
    const hint = await onlyHint(s, 'n2');
    t.deepEqual(hint?.record.version, newest);
    t.is(text(hint?.record.value), `${newest.wallMs}${newest.node}`);
    t.is(await s.hints.count(), 1);
  });

  test(`${prefix}: hints: list pages through one target's hints in key order`, async (t) => {
    const s = await open(t);
    const keys = [
      ...Array.from({ length: 200 }, (_, i) => `h-${(i * 7919) % 200}`),
      '',
      'é',
      '\u{1F600}',
      '\uFFFD',
      '\uE000',
      'a\u0000',
    ];
    for (const [i, key] of keys.entries()) {
      await s.hints.add({ target: 'n2', record: storageRecord(key, `n2-${key}`, { wallMs: 1 + i }) });
    }
    for (const key of ['h-1', 'zz', 'a']) {
      await s.hints.add({ target: 'n1', record: storageRecord(key, `n1-${key}`, { wallMs: 1 }) });
    }
    const seen: Hint[] = [];
    let after: string | undefined;
    for (let pages = 0; ; pages++) {
      if (pages > 1000) throw new Error('hint listing did not terminate');
      const page = await s.hints.list('n2', after === undefined ? { limit: 7 } : { after, limit: 7 });
      t.true(page.hints.length <= 7, 'a page holds at most limit hints');
      seen.push(...page.hints);
      if (page.next === undefined) break;
      if (after !== undefined) t.true(byteOrder(page.next, after) > 0, 'next moves forward');
      after = page.next;
    }
    t.deepEqual(
      seen.map((h) => h.record.key),
      [...keys].sort(byteOrder),
    );
    for (const hint of seen) {
      t.is(hint.target, 'n2');
      t.is(text(hint.record.value), `n2-${hint.record.key}`);
    }
    t.deepEqual(
      (await s.hints.list('n1', { limit: 10 })).hints.map((h) => h.record.key),
      ['a', 'h-1', 'zz'],
    );
    t.deepEqual(
      (await s.hints.list('n1', { after: 'b', limit: 10 })).hints.map((h) => h.record.key),
      ['h-1', 'zz'],
    );
    t.deepEqual(await s.hints.list('nobody', { limit: 10 }), { hints: [], next: undefined });
    t.deepEqual(await s.hints.list('n1', { after: 'zz', limit: 10 }), { hints: [], next: undefined });
  });

  test(`${prefix}: hints: of two hints of one timestamp from two nodes the greater value is kept, and stays until its own version is removed`, async (t) => {
    const s = await open(t);
    const low = storageRecord('k', 'apple', { wallMs: 5, node: 'node-z' });
    const high = storageRecord('k', 'pear', { wallMs: 5, node: 'node-a' });
    await s.hints.add({ target: 'n2', record: high });
    await s.hints.add({ target: 'n2', record: low });
    t.is(text((await onlyHint(s, 'n2'))?.record.value), 'pear');
    t.false(await s.hints.remove('n2', 'k', low.version), 'the other write of that timestamp stays');
    t.true(await s.hints.remove('n2', 'k', high.version));
    await s.hints.add({ target: 'n3', record: low });
    await s.hints.add({ target: 'n3', record: high });
    t.is(text((await onlyHint(s, 'n3'))?.record.value), 'pear');
  });

  test(`${prefix}: hints: remove takes a hint only up to the given version`, async (t) => {
    const s = await open(t);
    const hint = storageRecord('k', 'v', { wallMs: 5, logical: 1 });
    await s.hints.add({ target: 'n2', record: hint });
    await s.hints.add({ target: 'n3', record: hint });
    t.false(await s.hints.remove('n2', 'k', storageVersion(5, 0)), 'a newer hint arrived: keep it');
    t.false(await s.hints.remove('n2', 'k', storageVersion(4, 60_000)));
    t.is(await s.hints.count(), 2);
    t.true(await s.hints.remove('n2', 'k', hint.version));
    t.false(await s.hints.remove('n2', 'k', hint.version), 'already gone');
    t.false(await s.hints.remove('n2', 'absent', storageVersion(99)));
    t.false(await s.hints.remove('nobody', 'k', storageVersion(99)));
    t.deepEqual((await s.hints.list('n2', { limit: 10 })).hints, []);
    t.is(await s.hints.count(), 1);
    t.true(await s.hints.remove('n3', 'k', storageVersion(6)), 'an older hint goes too');
    t.is(await s.hints.count(), 0);
    await s.hints.add({ target: 'n2', record: storageRecord('k', 'older', { wallMs: 1 }) });
    t.is((await onlyHint(s, 'n2'))?.record.version.wallMs, 1, 'remove forgets the old version');
  });

  test(`${prefix}: hints: targets lists the members with hints, in id order`, async (t) => {
    const s = await open(t);
    t.deepEqual(await s.hints.targets(), []);
    for (const target of ['n3', 'n1', 'node-10', 'n10', 'n2', 'n1']) {
      await s.hints.add({ target, record: storageRecord(`k-${target}`, 'x', { wallMs: 1 }) });
    }
    await s.hints.add({ target: 'n10', record: storageRecord('second', 'x', { wallMs: 1 }) });
    t.deepEqual(await s.hints.targets(), ['n1', 'n10', 'n2', 'n3', 'node-10']);
    t.is(await s.hints.count(), 6);
    t.true(await s.hints.remove('n10', 'k-n10', storageVersion(1)));
    t.deepEqual(await s.hints.targets(), ['n1', 'n10', 'n2', 'n3', 'node-10']);
    t.true(await s.hints.remove('n10', 'second', storageVersion(1)));
    t.deepEqual(await s.hints.targets(), ['n1', 'n2', 'n3', 'node-10'], 'a target without hints is not listed');
    t.is(await s.hints.count(), 4);
  });

  test(`${prefix}: concurrent puts of many versions to one key leave the newest`, async (t) => {
    const s = await open(t);
    const versions: Version[] = [];
    for (let wallMs = 1; wallMs <= 20; wallMs++) {
      for (const logical of [0, 1, 2]) {
        for (const node of ['a', 'b', 'c']) versions.push({ wallMs, logical, node });
      }
    }
    // A fixed shuffle, so the newest does not arrive last.
    const shuffled = versions.map((v, i) => ({ v, k: (i * 7331) % versions.length })).sort((x, y) => x.k - y.k);
    const results = await Promise.all(
      shuffled.map(({ v }) => s.put(storageRecord('hot', `${v.wallMs}.${v.logical}.${v.node}`, v))),
    );
    t.true(results.some(Boolean));
    const newest = [...versions].sort(compareVersions).at(-1)!;
    const got = await s.get('hot');
    t.deepEqual(got?.version, newest);
    t.is(Buffer.from(got!.value).toString('utf8'), `${newest.wallMs}.${newest.logical}.${newest.node}`);
    t.is(await s.count(), 1);
  });

  test(`${prefix}: the empty key, unicode keys and values with every byte value round-trip`, async (t) => {
    const s = await open(t);
    const everyByte = new Uint8Array(512).map((_, i) => i % 256);
    const keys = ['', ' ', 'ключ', '鍵/子', '\u{1F511}\u{1F5DD}', 'a\u0000b', 'é'.normalize('NFD'), '%2F..\\'];
    for (const [i, key] of keys.entries()) {
      t.true(await s.put(storageRecord(key, everyByte, { wallMs: 10 + i })), `put ${JSON.stringify(key)}`);
    }
    for (const [i, key] of keys.entries()) {
      const got = await s.get(key);
      t.truthy(got, `get ${JSON.stringify(key)}`);
      t.is(got!.key, key);
      t.true(sameBytes(got!.value, everyByte), `value of ${JSON.stringify(key)}`);
      t.is(got!.version.wallMs, 10 + i);
    }
    t.is(await s.get('é'.normalize('NFC')), undefined, 'keys are compared as given, not normalized');
    t.is(await s.count(), keys.length);
    t.true((await scanAll(t, s, { limit: 3 })).includes(''));
  });

  test(`${prefix}: an empty value and a large value round-trip`, async (t) => {
    const s = await open(t);
    const large = new Uint8Array(1024 * 1024).map((_, i) => (i * 31) & 0xff);
    await s.put(storageRecord('empty', new Uint8Array(0), { wallMs: 1 }, { contentType: '' }));
    await s.put(storageRecord('large', large, { wallMs: 1 }));
    const empty = await s.get('empty');
    t.is(empty?.value.length, 0);
    t.is(empty?.contentType, '');
    t.is(empty?.tombstone, false);
    t.true(sameBytes((await s.get('large'))!.value, large));
  });

  test(`${prefix}: stored values do not alias the caller's buffer`, async (t) => {
    const s = await open(t);
    const value = Uint8Array.from([1, 2, 3]);
    await s.put(storageRecord('k', value, { wallMs: 1 }));
    value[0] = 99;
    t.true(sameBytes((await s.get('k'))!.value, [1, 2, 3]));
  });

  test(`${prefix}: start and stop are idempotent`, async (t) => {
    const dir = await dirFor(t);
    const s = await options.create({ dir });
    t.teardown(async () => {
      await s.stop?.();
    });
    await s.start?.();
    await s.start?.();
    t.true(await s.put(storageRecord('k', 'v', { wallMs: 1 })));
    await s.stop?.();
    await s.stop?.();
    t.pass();
  });

  if (options.durable) {
    test(`${prefix}: records, tombstones and counts survive stop and re-creation on the same directory`, async (t) => {
      const dir = await dirFor(t);
      const first = await options.create({ dir });
      await first.start?.();
      const keys = Array.from({ length: 200 }, (_, i) => `d${i}`);
      try {
        await Promise.all(keys.map((key, i) => first.put(storageRecord(key, `value-${i}`, { wallMs: 100 + i }))));
        await first.put(storageRecord('d7', '', { wallMs: 10_000 }, { tombstone: true }));
      } finally {
        await first.stop?.();
      }
      const second = await started(t, dir, reopen);
      t.is(await second.count(), keys.length - 1);
      for (const [i, key] of keys.entries()) {
        const got = await second.get(key);
        if (key === 'd7') {
          t.is(got?.tombstone, true);
          continue;
        }
        t.is(got ? Buffer.from(got.value).toString('utf8') : undefined, `value-${i}`);
        t.deepEqual(got?.version, { wallMs: 100 + i, logical: 0, node: 'n1' });
      }
      t.false(await second.put(storageRecord('d7', 'stale', { wallMs: 9_999 })), 'the version rule survives too');
      t.deepEqual(await scanAll(t, second, { limit: 64 }), [...keys].sort(byteOrder));
    });

    test(`${prefix}: hints and batch writes survive stop and re-creation on the same directory`, async (t) => {
      const dir = await dirFor(t);
      const first = await options.create({ dir });
      await first.start?.();
      const hinted = Array.from({ length: 50 }, (_, i) => ({
        target: i % 2 === 0 ? 'n2' : 'n3',
        record: storageRecord(`hint-${i}`, `hinted-${i}`, { wallMs: 100 + i }, { tombstone: i === 7 }),
      }));
      try {
        for (const hint of hinted) await first.hints.add(hint);
        await first.hints.remove('n3', 'hint-9', storageVersion(109));
        await first.putBatch([
          storageRecord('batch-a', 'a', { wallMs: 1 }),
          storageRecord('batch-b', 'b', { wallMs: 1 }),
        ]);
      } finally {
        await first.stop?.();
      }
      const second = await started(t, dir, reopen);
      t.deepEqual(await second.hints.targets(), ['n2', 'n3']);
      t.is(await second.hints.count(), hinted.length - 1);
      const expected = hinted.filter((h) => h.record.key !== 'hint-9');
      for (const target of ['n2', 'n3']) {
        const listed = (await second.hints.list(target, { limit: 100 })).hints;
        const want = expected.filter((h) => h.target === target).sort((a, b) => byteOrder(a.record.key, b.record.key));
        t.is(listed.length, want.length);
        for (const [i, hint] of listed.entries()) assertHint(t, hint, want[i]!);
      }
      t.is(await second.count(), 2, 'hints are still not records');
      t.deepEqual(await scanAll(t, second, { limit: 10 }), ['batch-a', 'batch-b']);
    });
  }
}

function text(bytes: Uint8Array | undefined): string | undefined {
  return bytes === undefined ? undefined : Buffer.from(bytes).toString('utf8');
}

/** The one hint held for `target`, or undefined (failing the test) when there are none or several. */
async function onlyHint(storage: Storage, target: string): Promise<Hint | undefined> {
  const page = await storage.hints.list(target, { limit: 10 });
  if (page.hints.length !== 1 || page.next !== undefined) {
    throw new Error(`expected one hint for ${target}, found ${page.hints.length}`);
  }
  return page.hints[0];
}

function assertHint(t: ExecutionContext, actual: Hint | undefined, expected: Hint): void {
  t.is(actual?.target, expected.target);
  assertRecord(t, actual?.record, expected.record);
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function sameBytes(actual: Uint8Array, expected: ArrayLike<number>): boolean {
  if (actual.length !== expected.length) return false;
  for (let i = 0; i < actual.length; i++) if (actual[i] !== expected[i]) return false;
  return true;
}

function assertRecord(t: ExecutionContext, actual: StoredRecord | undefined, expected: StoredRecord): void {
  if (actual === undefined) {
    t.fail(`no record for ${JSON.stringify(expected.key)}`);
    return;
  }
  t.is(actual.key, expected.key);
  t.true(sameBytes(actual.value, expected.value), 'value bytes');
  t.is(actual.contentType, expected.contentType);
  t.deepEqual(
    { wallMs: actual.version.wallMs, logical: actual.version.logical, node: actual.version.node },
    expected.version,
  );
  t.is(actual.tombstone, expected.tombstone);
}

/** Keys of every page from `options` on, checking the page contract on the way. */
async function scanAll(
  t: ExecutionContext,
  storage: Storage,
  options: Omit<Parameters<Storage['scan']>[0], 'after'>,
): Promise<string[]> {
  const keys: string[] = [];
  let after: string | undefined;
  for (let pages = 0; ; pages++) {
    if (pages > 100_000) throw new Error('scan did not terminate');
    const page = await storage.scan(after === undefined ? options : { ...options, after });
    t.true(page.records.length <= options.limit, 'a page holds at most limit records');
    keys.push(...page.records.map((r) => r.key));
    if (page.next === undefined) break;
    if (after !== undefined) t.true(byteOrder(page.next, after) > 0, 'next moves forward');
    after = page.next;
  }
  t.is(new Set(keys).size, keys.length, 'no key is returned twice');
  return keys;
}
