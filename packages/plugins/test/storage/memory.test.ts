import test from 'ava';
import { isKvError, runStorageConformance, storageRecord } from '@kvmesh/core';
import { MEMORY_SCAN_BUDGET, MemoryStorage, memoryStorage } from '../../src/index.js';

runStorageConformance(test, {
  create: async () => new MemoryStorage(),
  durable: false,
  title: 'memory',
  plugin: { manifest: memoryStorage, options: {} },
});

runStorageConformance(test, {
  create: async () => new MemoryStorage({ maxKeys: 100_000 }),
  durable: false,
  title: 'memory bounded',
});

test('a bounded store evicts the least recently used record and counts evictions', async (t) => {
  const s = new MemoryStorage({ maxKeys: 3 });
  for (const key of ['a', 'b', 'c']) await s.put(storageRecord(key, key, { wallMs: 1 }));
  t.is(s.metrics().evictions_total, 0);
  await s.get('a');
  await s.put(storageRecord('d', 'd', { wallMs: 1 }));
  t.is(s.metrics().evictions_total, 1);
  t.is(await s.get('b'), undefined, 'b was the least recently used');
  t.deepEqual(
    (await s.scan({ limit: 10 })).records.map((r) => r.key),
    ['a', 'c', 'd'],
  );
  await s.put(storageRecord('c', 'c2', { wallMs: 2 }));
  await s.put(storageRecord('e', 'e', { wallMs: 1 }));
  t.is(s.metrics().evictions_total, 2);
  t.is(await s.get('a'), undefined, 'overwriting c made it recent, so a went');
  t.deepEqual(
    (await s.scan({ limit: 10 })).records.map((r) => r.key),
    ['c', 'd', 'e'],
  );
  t.is(await s.count(), 3);
});

test('eviction keeps count and sizeBytes in step with what is stored', async (t) => {
  const s = new MemoryStorage({ maxKeys: 2 });
  await s.put(storageRecord('a', new Uint8Array(1000), { wallMs: 1 }));
  await s.put(storageRecord('b', '', { wallMs: 1 }, { tombstone: true }));
  await s.put(storageRecord('c', new Uint8Array(10), { wallMs: 1 }));
  t.is(s.metrics().evictions_total, 0, 'the tombstone does not count toward the bound');
  const before = await s.sizeBytes();
  await s.put(storageRecord('d', new Uint8Array(10), { wallMs: 1 }));
  t.is(s.metrics().evictions_total, 1);
  t.is(await s.get('a'), undefined);
  t.is(await s.count(), 2, 'a left, d came: still two live records beside the tombstone');
  t.true((await s.sizeBytes()) < before);
  t.deepEqual(
    (await s.scan({ limit: 10 })).records.map((r) => r.key),
    ['b', 'c', 'd'],
  );
});

test('a tombstone is never lost to eviction: it leaves only through collectTombstones', async (t) => {
  const s = new MemoryStorage({ maxKeys: 2 });
  await s.put(storageRecord('gone', 'v', { wallMs: 1 }));
  const tomb = storageRecord('gone', '', { wallMs: 2 }, { tombstone: true });
  t.true(await s.put(tomb));
  for (let i = 0; i < 10; i++) await s.put(storageRecord(`other-${i}`, 'x', { wallMs: 3 }));
  t.is(s.metrics().evictions_total, 8, 'ten live records through a bound of two');
  t.is(s.metrics().tombstones, 1);
  t.deepEqual((await s.get('gone'))?.version, tomb.version);
  t.true((await s.get('gone'))?.tombstone);
  t.false(await s.put(storageRecord('gone', 'stale-read-repair', { wallMs: 1 })), 'an older copy cannot resurrect it');
  t.is(await s.count(), 2);
  t.is(await s.collectTombstones(3), 1);
  t.is(await s.get('gone'), undefined);
  t.is(s.metrics().tombstones, 0);
});

test('a delete of a live record frees its place in the bound, and a write over a tombstone takes one', async (t) => {
  const s = new MemoryStorage({ maxKeys: 2 });
  await s.put(storageRecord('a', 'a', { wallMs: 1 }));
  await s.put(storageRecord('b', 'b', { wallMs: 1 }));
  await s.put(storageRecord('a', '', { wallMs: 2 }, { tombstone: true }));
  await s.put(storageRecord('c', 'c', { wallMs: 1 }));
  t.is(s.metrics().evictions_total, 0, 'a became a tombstone, so b and c fit');
  await s.put(storageRecord('a', 'back', { wallMs: 3 }));
  t.is(s.metrics().evictions_total, 1);
  t.is(await s.get('b'), undefined, 'b was the least recently used live record');
  t.is(s.metrics().tombstones, 0);
  t.is(await s.count(), 2);
});

test('metrics() reports evictions and tombstones also without a bound', async (t) => {
  const s = new MemoryStorage();
  await s.put(storageRecord('t', '', { wallMs: 1 }, { tombstone: true }));
  t.deepEqual(s.metrics(), { evictions_total: 0, tombstones: 1 });
});

test('hints do not count toward the bound and are never evicted', async (t) => {
  const s = new MemoryStorage({ maxKeys: 1 });
  for (let i = 0; i < 5; i++) {
    await s.hints.add({ target: 'n2', record: storageRecord(`h${i}`, 'x', { wallMs: 1 }) });
  }
  await s.put(storageRecord('a', 'a', { wallMs: 1 }));
  await s.put(storageRecord('b', 'b', { wallMs: 1 }));
  t.is(await s.hints.count(), 5);
  t.is(s.metrics().evictions_total, 1);
});

test('a batch with a malformed record writes nothing', async (t) => {
  const s = new MemoryStorage();
  const good = storageRecord('k', 'x', { wallMs: 1 });
  const err = await t.throwsAsync(s.putBatch([good, { ...good, key: 'j', value: 'text' } as never]));
  t.true(isKvError(err, 'KVMESH_ERR_STORAGE_RECORD_INVALID'));
  t.is(await s.get('k'), undefined);
});

test('scans do not refresh recency', async (t) => {
  const s = new MemoryStorage({ maxKeys: 2 });
  await s.put(storageRecord('a', 'a', { wallMs: 1 }));
  await s.put(storageRecord('b', 'b', { wallMs: 1 }));
  await s.scan({ limit: 1 });
  await s.put(storageRecord('c', 'c', { wallMs: 1 }));
  t.is(await s.get('a'), undefined);
});

test('a scan with a filter that matches little ends the page early with a cursor', async (t) => {
  const s = new MemoryStorage();
  const n = MEMORY_SCAN_BUDGET * 2 + 5;
  for (let i = 0; i < n; i++) await s.put(storageRecord(`k${String(i).padStart(6, '0')}`, '', { wallMs: 1 }));
  const first = await s.scan({ limit: 10, filter: (key) => key === 'k000003' });
  t.deepEqual(
    first.records.map((r) => r.key),
    ['k000003'],
  );
  t.not(first.next, undefined);
  let pages = 1;
  let next = first.next;
  while (next !== undefined) {
    const page = await s.scan({ limit: 10, after: next, filter: () => false });
    t.is(page.records.length, 0);
    next = page.next;
    pages++;
  }
  t.is(pages, 3);
});

test('a key with an unpaired surrogate is refused', async (t) => {
  const s = new MemoryStorage();
  const err = await t.throwsAsync(s.put(storageRecord('bad\uD800', 'x', { wallMs: 1 })));
  t.true(isKvError(err, 'KVMESH_ERR_STORAGE_KEY_INVALID'));
  t.true(isKvError(await t.throwsAsync(s.get('\uDC00')), 'KVMESH_ERR_STORAGE_KEY_INVALID'));
});

test('a malformed record is refused', async (t) => {
  const s = new MemoryStorage();
  const good = storageRecord('k', 'x', { wallMs: 1 });
  for (const bad of [
    { ...good, value: 'text' },
    { ...good, version: { wallMs: -1, logical: 0, node: 'n' } },
    { ...good, version: { wallMs: 1, logical: 0, node: '' } },
    { ...good, tombstone: 'yes' },
    { ...good, contentType: 5 },
  ]) {
    const err = await t.throwsAsync(s.put(bad as never));
    t.true(isKvError(err, 'KVMESH_ERR_STORAGE_RECORD_INVALID'), JSON.stringify(bad));
  }
  t.is(await s.count(), 0);
});

test('after stop every method reports that the storage is closed', async (t) => {
  const s = new MemoryStorage();
  await s.put(storageRecord('k', 'x', { wallMs: 1 }));
  s.stop();
  t.true(isKvError(await t.throwsAsync(s.get('k')), 'KVMESH_ERR_STORAGE_CLOSED'));
  t.true(isKvError(await t.throwsAsync(s.count()), 'KVMESH_ERR_STORAGE_CLOSED'));
  t.true(isKvError(await t.throwsAsync(s.hints.count()), 'KVMESH_ERR_STORAGE_CLOSED'));
});

test('the manifest builds a bounded store from validated options', async (t) => {
  t.is(memoryStorage.family, 'storage');
  t.is(memoryStorage.name, 'memory');
  const s = await memoryStorage.create({ maxKeys: 5 })({});
  t.true(s instanceof MemoryStorage);
  t.is((s as MemoryStorage).maxKeys, 5);
  t.throws(() => new MemoryStorage({ maxKeys: -1 }));
});
