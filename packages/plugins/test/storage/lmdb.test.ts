import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { isKvError, runStorageConformance, silentLogger, storageRecord } from '@kvmesh/core';
import { open } from 'lmdb';
import { LmdbStorage, lmdbStorage, resolveLmdbDataDir, type LmdbStorageOptions } from '../../src/index.js';
import { durabilityRecord } from '../fixtures/durability-record.js';

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
  test(`every acknowledged put survives SIGKILL of the writing process (syncWrites: ${syncWrites})`, async (t) => {
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
    const KILL_AFTER = 300;
    const lines = createInterface({ input: child.stdout });
    const drained = new Promise<void>((resolve) => lines.once('close', resolve));
    const killedMidStream = new Promise<void>((resolve, reject) => {
      lines.on('line', (line) => {
        if (line.startsWith('ack ')) acked.push(Number(line.slice(4)));
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
    }
    const count = await storage.count();
    t.true(count >= acked.length, `count ${count} covers the ${acked.length} acknowledged puts`);
    const scanned = (await storage.scan({ limit: 1_000_000 })).records.length;
    t.is(count, scanned, 'the live counter matches the records on disk');
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
