import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { DataDirLock, SeededRandom, isKvError, runStorageConformance, silentLogger, storageRecord } from '@kvmesh/core';
import type { StoredRecord } from '@kvmesh/core';
import { open } from 'lmdb';
import {
  LMDB_LOCK_FILE,
  LmdbStorage,
  lmdbStorage,
  resolveLmdbDataDir,
  type LmdbStorageOptions,
} from '../../src/index.js';
import { durabilityDraft, durabilityRecord } from '../fixtures/durability-record.js';
import { TRACED_CALLS, parseLmdbTrace, straceUnavailable } from '../fixtures/lmdb-trace.js';

const WRITER = fileURLToPath(new URL('../fixtures/lmdb-writer.js', import.meta.url));

const options = (dataDir: string, extra: Partial<LmdbStorageOptions> = {}): LmdbStorageOptions => ({
  dataDir,
  mapSizeBytes: 0,
  syncWrites: true,
  compression: false,
  ...extra,
});

runStorageConformance(test, {
  create: async ({ dir }) => new LmdbStorage(options(dir)),
  durable: true,
  title: 'lmdb',
  plugin: { manifest: lmdbStorage, options: { dataDir: '', mapSizeBytes: 0, syncWrites: true, compression: false } },
});

runStorageConformance(test, {
  create: async ({ dir }) => new LmdbStorage(options(dir, { syncWrites: false, compression: true })),
  durable: true,
  title: 'lmdb compressed without sync',
});

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kvmesh-lmdb-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function started(t: ExecutionContext, dataDir: string): Promise<LmdbStorage> {
  const storage = new LmdbStorage(options(dataDir));
  t.teardown(() => storage.stop());
  await storage.start();
  return storage;
}

for (const syncWrites of [true, false]) {
  test(`every acknowledged put, new key or overwrite, survives SIGKILL of the writing process (syncWrites: ${syncWrites})`, async (t) => {
    const dir = await tempDir(t);
    const child = spawn(process.execPath, [WRITER, dir, '1000000', String(syncWrites)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => {
      child.once('exit', (code, signal) => resolve(signal ?? code));
    });
    t.teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));

    const acked: number[] = [];
    const drafted = new Set<number>();
    const KILL_AFTER = 300;
    const lines = createInterface({ input: child.stdout });
    const drained = new Promise<void>((resolve) => lines.once('close', resolve));
    const killedMidStream = new Promise<void>((resolve, reject) => {
      lines.on('line', (line) => {
        if (line.startsWith('ack ')) acked.push(Number(line.slice(4)));
        if (line.startsWith('draft ')) drafted.add(Number(line.slice(6)));
        if (acked.length === KILL_AFTER) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      void exited.then(() => reject(new Error(`writer exited before ${KILL_AFTER} acks: ${stderr}`)));
    });
    await killedMidStream;
    t.is(await exited, 'SIGKILL');
    // Lines already in the pipe when the kill landed were acknowledged too.
    await drained;
    t.true(acked.length >= KILL_AFTER);
    t.log(`acked ${acked.length}`);

    const storage = await started(t, dir);
    for (const i of acked) {
      const expected = durabilityRecord(i);
      const got = await storage.get(expected.key);
      if (got === undefined) {
        t.fail(`acknowledged ${expected.key} is missing after the kill`);
        continue;
      }
      t.true(Buffer.from(got.value).equals(Buffer.from(expected.value)), `value of ${expected.key}`);
      t.deepEqual(got.version, expected.version);
      drafted.delete(i);
    }
    // A draft whose overwrite was not acknowledged holds the draft, or the overwrite if it landed.
    for (const i of drafted) {
      const got = await storage.get(durabilityRecord(i).key);
      const either = [durabilityDraft(i), durabilityRecord(i)];
      t.true(
        got !== undefined && either.some((r) => Buffer.from(got.value).equals(Buffer.from(r.value))),
        `acknowledged draft ${i} is on disk`,
      );
    }
    const count = await storage.count();
    t.true(count >= acked.length, `count ${count} covers the ${acked.length} acknowledged puts`);
    const scanned = (await storage.scan({ limit: 1_000_000 })).records.length;
    t.is(count, scanned, 'the live counter matches the records on disk');
  });
}

// A SIGKILL loses nothing the kernel already holds, so the test above passes with either setting. What
// the setting changes is how LMDB commits, seen in the system calls of the writing process: with
// syncWrites the data pages are flushed (fdatasync) before the commit's meta page is written, and that
// write goes through a descriptor opened with O_DSYNC, so a commit is on disk once its meta page is;
// without it (lmdb-js overlappingSync) the meta page is written to the page cache first and flushed with
// the data afterwards, outside the write lock. (In lmdb-js 3.5 a put resolves after that flush either
// way: the setting decides the order of the writes, hence what a power cut may leave, and how much the
// flush holds up the next commit, not when a put is acknowledged.)
const STRACE_UNAVAILABLE = straceUnavailable();
const TRACED_PUTS = 40;
for (const syncWrites of [true, false]) {
  const title = syncWrites
    ? 'syncWrites: true flushes the data pages before each commit writes its meta page, synchronously (O_DSYNC)'
    : 'syncWrites: false writes each meta page to the page cache and flushes it with the data afterwards';
  const run = STRACE_UNAVAILABLE === undefined ? test : test.skip;
  run(STRACE_UNAVAILABLE === undefined ? title : `${title} (skipped: ${STRACE_UNAVAILABLE})`, async (t) => {
    const dir = await tempDir(t);
    const log = join(dir, 'strace.log');
    const child = spawn(
      'strace',
      [
        '-f',
        '-qq',
        '-e',
        `trace=${TRACED_CALLS}`,
        '-e',
        'signal=none',
        '-o',
        log,
        process.execPath,
        WRITER,
        join(dir, 'db'),
        String(TRACED_PUTS),
        String(syncWrites),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => {
      child.once('exit', (code, signal) => resolve(signal ?? code));
    });
    t.teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    t.is(await exited, 0, output);
    t.regex(output, /\ndone\n$/);

    const trace = parseLmdbTrace(await readFile(log, 'utf8'));
    const synchronous = trace.metaWrites.filter((m) => m.synchronous).length;
    const afterFlush = trace.metaWrites.filter((m) => m.afterFlush).length;
    const flushedNext = trace.metaWrites.filter((m) => m.flushedNext).length;
    t.log(
      `${trace.acks} acks, ${trace.flushes} flushes of the data file, ${trace.metaWrites.length} meta-page writes ` +
        `(${synchronous} through O_DSYNC, ${afterFlush} right after a flush, ${flushedNext} right before one)`,
    );
    t.is(trace.acks, TRACED_PUTS);
    t.true(trace.metaWrites.length > 0, 'the commits after start are seen');
    t.true(trace.flushes >= trace.metaWrites.length, 'every commit flushes the data file');
    if (syncWrites) {
      t.is(synchronous, trace.metaWrites.length, 'every meta page goes through the O_DSYNC descriptor');
      t.is(afterFlush, trace.metaWrites.length, 'every meta page is written after its data pages were flushed');
    } else {
      t.is(synchronous, 0, 'no meta page goes through the O_DSYNC descriptor');
      t.is(flushedNext, trace.metaWrites.length, 'every meta page written to the page cache is flushed next');
    }
  });
}

test('get before start and after stop reports that the storage is closed', async (t) => {
  const dir = await tempDir(t);
  const storage = new LmdbStorage(options(dir));
  t.true(isKvError(await t.throwsAsync(storage.get('k')), 'KVMESH_ERR_STORAGE_CLOSED'));
  await storage.start();
  await storage.stop();
  t.true(
    isKvError(await t.throwsAsync(storage.put(storageRecord('k', 'v', { wallMs: 1 }))), 'KVMESH_ERR_STORAGE_CLOSED'),
  );
});

test('a key longer than lmdb accepts is refused with a clear error', async (t) => {
  const storage = await started(t, await tempDir(t));
  const err = await t.throwsAsync(storage.put(storageRecord('k'.repeat(5000), 'v', { wallMs: 1 })));
  t.true(isKvError(err, 'KVMESH_ERR_STORAGE_KEY_INVALID'));
  t.regex(err!.message, /5000 bytes/);
  t.true(await storage.put(storageRecord('k'.repeat(1977), 'v', { wallMs: 1 })), 'the longest accepted key');
  t.is((await storage.get('k'.repeat(1977)))?.key.length, 1977);
});

test('a record in an unknown format is reported as corrupt, not misread', async (t) => {
  const dir = await tempDir(t);
  const raw = open<Buffer, Buffer>(dir, { keyEncoding: 'binary', encoding: 'binary' });
  await raw.put(Buffer.from([0x01, 0x6b]), Buffer.from([9, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0x6e, 0, 0]));
  await raw.close();
  const storage = await started(t, dir);
  t.true(isKvError(await t.throwsAsync(storage.get('k')), 'KVMESH_ERR_STORAGE_CORRUPT'));
  t.true(await storage.purge('k', { wallMs: 1, logical: 0, node: 'n1' }));
  t.is(await storage.get('k'), undefined, 'a damaged record can still be purged');
});

test('hints are kept in a sub-database of their own, apart from the records', async (t) => {
  const dir = await tempDir(t);
  const storage = await started(t, dir);
  await storage.hints.add({ target: 'n2', record: storageRecord('k', 'hinted', { wallMs: 1 }) });
  await storage.put(storageRecord('r', 'record', { wallMs: 1 }));
  await storage.stop();
  const raw = open<Buffer, Buffer>(dir, { keyEncoding: 'binary', encoding: 'binary' });
  t.teardown(() => raw.close());
  const hints = raw.openDB<Buffer, Buffer>('hints', { keyEncoding: 'binary', encoding: 'binary' });
  const hintKeys = [...hints.getKeys()].map((key) => Buffer.from(key).toString('hex'));
  t.deepEqual(hintKeys, [Buffer.concat([Buffer.from([0, 2]), Buffer.from('n2k')]).toString('hex')]);
  const rootRecords = [...raw.getKeys({ start: Buffer.from([1]), end: Buffer.from([2]) })];
  t.deepEqual(
    rootRecords.map((key) => Buffer.from(key).toString('utf8', 1)),
    ['r'],
  );
});

test('a hint whose target and key do not fit in an lmdb key is refused with a clear error', async (t) => {
  const storage = await started(t, await tempDir(t));
  const record = storageRecord('k'.repeat(1977), 'v', { wallMs: 1 });
  t.true(await storage.put(record), 'the key itself fits as a record');
  const err = await t.throwsAsync(storage.hints.add({ target: 'node-2', record }));
  t.true(isKvError(err, 'KVMESH_ERR_STORAGE_KEY_INVALID'));
  t.regex(err!.message, /node-2/);
  t.is(await storage.hints.count(), 0);
});

test('a batch with a malformed record writes nothing', async (t) => {
  const storage = await started(t, await tempDir(t));
  const good = storageRecord('k', 'x', { wallMs: 1 });
  const err = await t.throwsAsync(storage.putBatch([good, { ...good, key: 'j', value: 'text' } as never]));
  t.true(isKvError(err, 'KVMESH_ERR_STORAGE_RECORD_INVALID'));
  t.is(await storage.get('k'), undefined);
  t.is(await storage.count(), 0);
});

test('an environment stamped with a newer layout is refused at start', async (t) => {
  const dir = await tempDir(t);
  const raw = open<Buffer, Buffer>(dir, { keyEncoding: 'binary', encoding: 'binary' });
  await raw.put(Buffer.from('\u0000format', 'utf8'), Buffer.from([2]));
  await raw.close();
  const storage = new LmdbStorage(options(dir));
  t.teardown(() => storage.stop());
  t.true(isKvError(await t.throwsAsync(storage.start()), 'KVMESH_ERR_STORAGE_CORRUPT'));
});

test('a data directory that cannot be created fails start with KVMESH_ERR_STORAGE_IO', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'not-a-directory');
  await writeFile(file, 'x');
  const storage = new LmdbStorage(options(join(file, 'lmdb')));
  t.teardown(() => storage.stop());
  const err = await t.throwsAsync(storage.start());
  t.true(isKvError(err, 'KVMESH_ERR_STORAGE_IO'), String(err));
});

test('the manifest defaults dataDir to <node dataDir>/lmdb and resolves relative paths against the config', async (t) => {
  const node = { dataDir: '/var/lib/kvmesh/n1', configDir: '/etc/kvmesh' };
  t.is(resolveLmdbDataDir('', node), '/var/lib/kvmesh/n1/lmdb');
  t.is(resolveLmdbDataDir('data/x', node), '/etc/kvmesh/data/x');
  t.is(resolveLmdbDataDir('/abs', node), '/abs');

  const dataDir = await tempDir(t);
  const built = await lmdbStorage.create({ dataDir: '', mapSizeBytes: 0, syncWrites: true, compression: false })({
    node: { id: 'n1', address: '127.0.0.1:1', role: 'storage', dataDir, configDir: dataDir },
    logger: silentLogger,
  });
  t.true(built instanceof LmdbStorage);
  t.is((built as LmdbStorage).options.dataDir, join(dataDir, 'lmdb'));
  t.deepEqual(lmdbStorage.needs, ['node', 'logger']);
});

test('a second storage on the same directory is refused while the first runs, naming its holder', async (t) => {
  const dir = await tempDir(t);
  const first = new LmdbStorage({ ...options(dir), owner: { id: 'n1', address: '127.0.0.2:7000' } });
  t.teardown(() => first.stop());
  await first.start();
  await first.put(storageRecord('k', 'v', { wallMs: 1 }));
  const second = new LmdbStorage(options(dir));
  t.teardown(() => second.stop());
  const err = await t.throwsAsync(second.start());
  t.true(isKvError(err, 'KVMESH_ERR_DATA_DIR_LOCKED'), String(err));
  t.true(err!.message.includes(dir), err!.message);
  t.regex(err!.message, /node 'n1' at 127\.0\.0\.2:7000, pid \d+/);
  t.regex(err!.message, /storage\.options\.dataDir/);
  t.true(err!.message.includes(join(dir, LMDB_LOCK_FILE)), 'the storage lock file is named');
  await first.stop();
  await second.start();
  t.is((await second.get('k'))?.version.wallMs, 1, 'once the first stopped, the second opens the same data');
});

test("a node's data directory can be its lmdb directory: the node's lock and the storage's are two files", async (t) => {
  const dir = await tempDir(t);
  const nodeLock = await DataDirLock.acquire(dir, { id: 'n1', address: '127.0.0.1:7000' }, silentLogger);
  t.teardown(() => nodeLock.release());
  const storage = await started(t, dir);
  t.true(await storage.put(storageRecord('k', 'v', { wallMs: 1 })));
  t.not(nodeLock.file, join(dir, LMDB_LOCK_FILE));
});

test('a writing process holds its environment: another process is refused until it is gone', async (t) => {
  const dir = await tempDir(t);
  const child = spawn(process.execPath, [WRITER, dir, '1000000', 'true'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ?? code));
  });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const lines = createInterface({ input: child.stdout });
  await new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => line === 'ready' && resolve());
    void exited.then(() => reject(new Error('the writer exited before it was ready')));
  });
  const storage = new LmdbStorage(options(dir));
  t.teardown(() => storage.stop());
  const err = await t.throwsAsync(storage.start());
  t.true(isKvError(err, 'KVMESH_ERR_DATA_DIR_LOCKED'), String(err));
  t.true(err!.message.includes(`pid ${child.pid}`), err!.message);
  child.kill('SIGKILL');
  t.is(await exited, 'SIGKILL');
  // The holder is gone: its lock is stale and taken over.
  await storage.start();
  t.true((await storage.count()) >= 0);
});

// The two ways a put runs (see LmdbStorage): a plain lmdb put for an overwrite that changes no
// count, a transaction callback otherwise or while the key has a write on its way.
test('puts of one key issued together keep the newest, whichever way each of them runs', async (t) => {
  const storage = await started(t, await tempDir(t));
  const at = (wallMs: number, value = 'same-size'): StoredRecord => storageRecord('k', value, { wallMs });
  t.true(await storage.put(at(10)));
  // Newest first: the first is a plain put, the two behind it find it in their transactions.
  t.deepEqual(await Promise.all([storage.put(at(30)), storage.put(at(20)), storage.put(at(25))]), [true, false, false]);
  t.is((await storage.get('k'))?.version.wallMs, 30);
  // Oldest first: each one behind is newer than the one before it.
  t.deepEqual(await Promise.all([storage.put(at(40)), storage.put(at(50)), storage.put(at(60))]), [true, true, true]);
  t.is((await storage.get('k'))?.version.wallMs, 60);
  // Not newer than what is committed: refused without a write.
  t.false(await storage.put(at(60)));
  t.false(await storage.put(at(5)));
  // A plain overwrite next to a delete and a put of another size of the same key.
  const tombstone = storageRecord('k', '', { wallMs: 80 }, { tombstone: true });
  t.deepEqual(await Promise.all([storage.put(at(70)), storage.put(tombstone), storage.put(at(75, 'longer value'))]), [
    true,
    true,
    false,
  ]);
  t.true((await storage.get('k'))?.tombstone);
  t.is(await storage.count(), 0);
});

test('counts and records match a one-at-a-time run after thousands of concurrent puts, deletes and purges', async (t) => {
  const together = await started(t, await tempDir(t));
  const alone = await started(t, await tempDir(t));
  const random = new SeededRandom(7);
  const keys = Array.from({ length: 24 }, (_, i) => `key-${i}`);
  const values = ['aaaa', 'bbbb', 'cccccccc', ''];
  let wallMs = 1_000;
  for (let wave = 0; wave < 60; wave++) {
    const ops: ((s: LmdbStorage) => Promise<unknown>)[] = [];
    for (let i = 0; i < 40; i++) {
      const key = keys[random.int(keys.length)]!;
      // Versions out of order within a wave, some of them older than what is stored.
      const version = { wallMs: wallMs + random.int(200) - 50, logical: random.int(3), node: `n${random.int(2)}` };
      const kind = random.int(10);
      if (kind === 0) ops.push((s) => s.purgeBatch([{ key, upTo: version }]));
      else {
        const value = values[random.int(values.length)]!;
        const record = storageRecord(key, value, version, { tombstone: value === '' });
        ops.push((s) => (kind === 1 ? s.putBatch([record]) : s.put(record)));
      }
    }
    wallMs += 100;
    const concurrent = await Promise.all(ops.map((op) => op(together)));
    const sequential: unknown[] = [];
    for (const op of ops) sequential.push(await op(alone));
    t.deepEqual(concurrent, sequential, `wave ${wave}: the same outcomes`);
  }
  const all = async (s: LmdbStorage): Promise<readonly StoredRecord[]> => (await s.scan({ limit: 1_000 })).records;
  const records = await all(together);
  t.deepEqual(records, await all(alone));
  t.is(await together.count(), records.filter((r) => !r.tombstone).length, 'the live count');
  t.is(await together.count(), await alone.count());
  t.is(await together.sizeBytes(), await alone.sizeBytes(), 'the byte total');
});
