import test from 'ava';
import {
  CoordinatorKvService,
  KvError,
  SeededRandom,
  VirtualClock,
  compareVersions,
  createMessageRegistry,
  formatVersion,
  silentLogger,
} from '../../src/index.js';
import type { KvError as KvErrorType, StoredRecord } from '../../src/index.js';
import { FixedPlacement, LoneRpc, MapStorage, UTF8, member, singleNode, text, until } from './helpers.js';

test('a put is read back with its bytes, content type and version', async (t) => {
  const { kv } = singleNode(t);
  const put = await kv.put('greeting', UTF8.encode('hello'), 'text/plain');
  const got = (await kv.get('greeting')).record;
  t.is(text(got?.value), 'hello');
  t.is(got?.contentType, 'text/plain');
  t.deepEqual(got?.version, put.version);
  t.false(got?.tombstone);
  t.is(put.version.node, 'n1');
});

test('a key never written reads as absent', async (t) => {
  const { kv } = singleNode(t);
  t.is((await kv.get('nothing')).record, undefined);
});

test('the first put creates, the next ones replace, with increasing versions', async (t) => {
  const { kv, clock } = singleNode(t);
  const first = await kv.put('k', UTF8.encode('1'), 'text/plain');
  const second = await kv.put('k', UTF8.encode('2'), 'text/plain');
  clock.advance(5);
  const third = await kv.put('k', UTF8.encode('3'), 'text/plain');
  t.true(first.created);
  t.false(second.created);
  t.false(third.created);
  t.true(compareVersions(second.version, first.version) > 0, 'same millisecond: the logical counter moves');
  t.true(compareVersions(third.version, second.version) > 0);
  t.is(third.version.wallMs, clock.now());
  t.is(text((await kv.get('k')).record?.value), '3');
});

test('delete writes a newer tombstone, and the key reads as absent', async (t) => {
  const { kv, storage } = singleNode(t);
  const put = await kv.put('k', UTF8.encode('v'), 'text/plain');
  const deleted = await kv.delete('k');
  t.true(deleted.existed);
  t.true(compareVersions(deleted.version!, put.version) > 0);
  t.is((await kv.get('k')).record, undefined);
  const stored = storage.records.get('k');
  t.true(stored?.tombstone);
  t.is(stored?.value.length, 0);
});

test('deleting a missing or already deleted key reports existed=false and writes nothing', async (t) => {
  const { kv, storage } = singleNode(t);
  t.like(await kv.delete('never'), { existed: false, servedBy: { id: 'n1' } });
  t.false(storage.records.has('never'));
  await kv.put('k', UTF8.encode('v'), 'text/plain');
  const { version } = await kv.delete('k');
  const puts = storage.calls.put;
  t.like(await kv.delete('k'), { existed: false });
  t.is(storage.calls.put, puts);
  t.deepEqual(storage.records.get('k')?.version, version);
});

test('a put after a delete creates the key again', async (t) => {
  const { kv } = singleNode(t);
  await kv.put('k', UTF8.encode('old'), 'text/plain');
  await kv.delete('k');
  const again = await kv.put('k', UTF8.encode('new'), 'text/plain');
  t.true(again.created);
  t.is(text((await kv.get('k')).record?.value), 'new');
});

test('a write beats a stored version from before a restart, even if the clock is behind it', async (t) => {
  const { kv, clock, storage } = singleNode(t);
  const ahead: StoredRecord = {
    key: 'k',
    value: UTF8.encode('before restart'),
    contentType: 'text/plain',
    version: { wallMs: clock.now() + 30_000, logical: 7, node: 'n1' },
    tombstone: false,
  };
  storage.records.set('k', ahead);
  const put = await kv.put('k', UTF8.encode('after'), 'text/plain');
  t.false(put.created);
  t.true(compareVersions(put.version, ahead.version) > 0);
  t.is(text((await kv.get('k')).record?.value), 'after');
});

// Conditional writes

test('If-Match with the current version applies the write', async (t) => {
  const { kv } = singleNode(t);
  const v1 = await kv.put('k', UTF8.encode('1'), 'text/plain');
  const v2 = await kv.put('k', UTF8.encode('2'), 'text/plain', { ifMatch: formatVersion(v1.version) });
  t.false(v2.created);
  t.is(text((await kv.get('k')).record?.value), '2');
});

test('If-Match with another version fails and leaves the value as it was', async (t) => {
  const { kv } = singleNode(t);
  const v1 = await kv.put('k', UTF8.encode('1'), 'text/plain');
  await kv.put('k', UTF8.encode('2'), 'text/plain');
  const err = await t.throwsAsync<KvErrorType>(
    kv.put('k', UTF8.encode('3'), 'text/plain', { ifMatch: formatVersion(v1.version) }),
  );
  t.is(err?.code, 'KVMESH_ERR_KV_PRECONDITION_FAILED');
  t.is(text((await kv.get('k')).record?.value), '2');
  t.is(err?.details?.['currentVersion'], formatVersion((await kv.get('k')).record!.version));
});

test('If-Match on an absent or deleted key fails and writes nothing', async (t) => {
  const { kv, storage } = singleNode(t);
  await t.throwsAsync(kv.put('absent', UTF8.encode('x'), 'text/plain', { ifMatch: '*' }), {
    code: 'KVMESH_ERR_KV_PRECONDITION_FAILED',
  });
  t.false(storage.records.has('absent'));
  const v1 = await kv.put('gone', UTF8.encode('x'), 'text/plain');
  await kv.delete('gone');
  await t.throwsAsync(kv.put('gone', UTF8.encode('y'), 'text/plain', { ifMatch: formatVersion(v1.version) }), {
    code: 'KVMESH_ERR_KV_PRECONDITION_FAILED',
  });
  t.is((await kv.get('gone')).record, undefined);
});

test('If-Match * applies to any existing key', async (t) => {
  const { kv } = singleNode(t);
  await kv.put('k', UTF8.encode('1'), 'text/plain');
  await kv.put('k', UTF8.encode('2'), 'text/plain', { ifMatch: '*' });
  t.is(text((await kv.get('k')).record?.value), '2');
});

test('If-None-Match * creates an absent key and refuses an existing one', async (t) => {
  const { kv } = singleNode(t);
  const created = await kv.put('k', UTF8.encode('first'), 'text/plain', { ifNoneMatch: '*' });
  t.true(created.created);
  await t.throwsAsync(kv.put('k', UTF8.encode('second'), 'text/plain', { ifNoneMatch: '*' }), {
    code: 'KVMESH_ERR_KV_PRECONDITION_FAILED',
  });
  t.is(text((await kv.get('k')).record?.value), 'first');
});

test('If-None-Match * creates a deleted key again', async (t) => {
  const { kv } = singleNode(t);
  await kv.put('k', UTF8.encode('old'), 'text/plain');
  await kv.delete('k');
  const again = await kv.put('k', UTF8.encode('new'), 'text/plain', { ifNoneMatch: '*' });
  t.true(again.created);
  t.is(text((await kv.get('k')).record?.value), 'new');
});

test('a conditional delete applies only when its condition holds', async (t) => {
  const { kv } = singleNode(t);
  const v1 = await kv.put('k', UTF8.encode('1'), 'text/plain');
  const v2 = await kv.put('k', UTF8.encode('2'), 'text/plain');
  await t.throwsAsync(kv.delete('k', { ifMatch: formatVersion(v1.version) }), {
    code: 'KVMESH_ERR_KV_PRECONDITION_FAILED',
  });
  t.is(text((await kv.get('k')).record?.value), '2');
  await t.throwsAsync(kv.delete('k', { ifNoneMatch: '*' }), { code: 'KVMESH_ERR_KV_PRECONDITION_FAILED' });
  t.true((await kv.delete('k', { ifMatch: formatVersion(v2.version) })).existed);
  await t.throwsAsync(kv.delete('k', { ifMatch: formatVersion(v2.version) }), {
    code: 'KVMESH_ERR_KV_PRECONDITION_FAILED',
  });
});

test('of concurrent writes with the same If-Match exactly one wins', async (t) => {
  const { kv } = singleNode(t);
  const v0 = await kv.put('k', UTF8.encode('v0'), 'text/plain');
  const ifMatch = formatVersion(v0.version);
  const results = await Promise.allSettled(
    Array.from({ length: 10 }, (_, i) => kv.put('k', UTF8.encode(`w${i}`), 'text/plain', { ifMatch })),
  );
  const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
  t.is(won.length, 1);
  for (const r of results) {
    if (r.status === 'rejected') t.is((r.reason as KvError).code, 'KVMESH_ERR_KV_PRECONDITION_FAILED');
  }
  t.is(text((await kv.get('k')).record?.value), `w${won[0]}`);
});

test('of concurrent create-only writes exactly one wins', async (t) => {
  const { kv } = singleNode(t);
  const results = await Promise.allSettled(
    Array.from({ length: 10 }, (_, i) => kv.put('k', UTF8.encode(`w${i}`), 'text/plain', { ifNoneMatch: '*' })),
  );
  const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
  t.is(won.length, 1);
  t.is(text((await kv.get('k')).record?.value), `w${won[0]}`);
});

// Limits, checked before any work

test('a key of exactly maxKeyBytes is accepted and one byte more is refused', async (t) => {
  const { kv } = singleNode(t, { maxKeyBytes: 16 });
  await kv.put('k'.repeat(16), UTF8.encode('v'), 'text/plain');
  const err = await t.throwsAsync<KvErrorType>(kv.put('k'.repeat(17), UTF8.encode('v'), 'text/plain'));
  t.is(err?.code, 'KVMESH_ERR_KV_KEY_TOO_LONG');
  t.is(err?.details?.['keyBytes'], 17);
  await t.throwsAsync(kv.get('k'.repeat(17)), { code: 'KVMESH_ERR_KV_KEY_TOO_LONG' });
  await t.throwsAsync(kv.delete('k'.repeat(17)), { code: 'KVMESH_ERR_KV_KEY_TOO_LONG' });
});

test('key length counts UTF-8 bytes, not characters', async (t) => {
  const { kv } = singleNode(t, { maxKeyBytes: 16 });
  await kv.put('é'.repeat(8), UTF8.encode('v'), 'text/plain');
  await kv.put('😀'.repeat(4), UTF8.encode('v'), 'text/plain');
  await t.throwsAsync(kv.put(`${'é'.repeat(8)}a`, UTF8.encode('v'), 'text/plain'), {
    code: 'KVMESH_ERR_KV_KEY_TOO_LONG',
  });
  await t.throwsAsync(kv.put(`${'😀'.repeat(4)}a`, UTF8.encode('v'), 'text/plain'), {
    code: 'KVMESH_ERR_KV_KEY_TOO_LONG',
  });
  await t.throwsAsync(kv.put('€'.repeat(6), UTF8.encode('v'), 'text/plain'), { code: 'KVMESH_ERR_KV_KEY_TOO_LONG' });
});

test('a value of exactly maxValueBytes is accepted and one byte more is refused', async (t) => {
  const { kv } = singleNode(t, { maxValueBytes: 32 });
  await kv.put('empty', new Uint8Array(0), 'application/octet-stream');
  await kv.put('k', new Uint8Array(32).fill(1), 'application/octet-stream');
  const err = await t.throwsAsync<KvErrorType>(kv.put('k', new Uint8Array(33), 'application/octet-stream'));
  t.is(err?.code, 'KVMESH_ERR_KV_VALUE_TOO_LARGE');
  t.is((await kv.get('k')).record?.value.length, 32, 'the refused write left the old value');
  t.is((await kv.get('empty')).record?.value.length, 0);
});

test('a key with a lone surrogate, or an empty key, is refused', async (t) => {
  const { kv } = singleNode(t);
  for (const key of ['\uD800', 'a\uDC00b', '\uDC00\uD83D', 'x\uD83D']) {
    await t.throwsAsync(kv.put(key, UTF8.encode('v'), 'text/plain'), { code: 'KVMESH_ERR_KV_KEY_INVALID' });
    await t.throwsAsync(kv.get(key), { code: 'KVMESH_ERR_KV_KEY_INVALID' });
    await t.throwsAsync(kv.delete(key), { code: 'KVMESH_ERR_KV_KEY_INVALID' });
  }
  await t.throwsAsync(kv.put('', UTF8.encode('v'), 'text/plain'), { code: 'KVMESH_ERR_KV_KEY_INVALID' });
  await kv.put('\uD83D\uDE00 paired', UTF8.encode('v'), 'text/plain');
  t.truthy((await kv.get('\uD83D\uDE00 paired')).record);
});

test('malformed arguments are refused', async (t) => {
  const { kv } = singleNode(t);
  const bad = kv as unknown as { put(...args: unknown[]): Promise<unknown> };
  await t.throwsAsync(bad.put('k', 'not bytes', 'text/plain'), { code: 'KVMESH_ERR_KV_REQUEST_INVALID' });
  await t.throwsAsync(bad.put('k', UTF8.encode('v'), 42), { code: 'KVMESH_ERR_KV_REQUEST_INVALID' });
  await t.throwsAsync(bad.put('k', UTF8.encode('v'), 'x'.repeat(2000)), { code: 'KVMESH_ERR_KV_REQUEST_INVALID' });
  await t.throwsAsync(bad.put('k', UTF8.encode('v'), 'text/plain', { ifNoneMatch: 'etag' }), {
    code: 'KVMESH_ERR_KV_REQUEST_INVALID',
  });
  await t.throwsAsync(bad.put('k', UTF8.encode('v'), 'text/plain', { ifMatch: 7 }), {
    code: 'KVMESH_ERR_KV_REQUEST_INVALID',
  });
});

test('a refused operation does no work: no placement lookup, no storage access', async (t) => {
  const { kv, storage, placement } = singleNode(t, { maxKeyBytes: 8, maxValueBytes: 8 });
  await t.throwsAsync(kv.put('k'.repeat(9), UTF8.encode('v'), 'text/plain'));
  await t.throwsAsync(kv.put('k', new Uint8Array(9), 'text/plain'));
  await t.throwsAsync(kv.put('\uD800', UTF8.encode('v'), 'text/plain'));
  await t.throwsAsync(kv.get('k'.repeat(9)));
  await t.throwsAsync(kv.delete('\uDFFF'));
  t.is(placement.calls, 0);
  t.deepEqual(storage.calls, { get: 0, put: 0 });
});

// Lifecycle, failures, metrics, tombstones

test('operations before start or after stop are refused', async (t) => {
  const storage = new MapStorage();
  const kv = new CoordinatorKvService({
    node: { id: 'n1', address: '127.0.0.1:4000', role: 'storage', dataDir: '/tmp', configDir: '/tmp' },
    config: {},
    clock: new VirtualClock(),
    random: new SeededRandom(1),
    storage,
    placement: new FixedPlacement({ replicas: [member('n1')], writeQuorum: 1, readQuorum: 1 }),
    rpc: new LoneRpc(),
    messages: createMessageRegistry(),
    logger: silentLogger,
  });
  await t.throwsAsync(kv.get('k'), { code: 'KVMESH_ERR_KERNEL_STATE' });
  kv.start();
  await kv.put('k', UTF8.encode('v'), 'text/plain');
  await kv.stop();
  await t.throwsAsync(kv.put('k', UTF8.encode('v'), 'text/plain'), { code: 'KVMESH_ERR_KERNEL_STATE' });
  t.is(storage.calls.put, 1);
});

test('start registers the replica and data movement request handlers', (t) => {
  const { rpc } = singleNode(t);
  const handlers = [...rpc.handlers.keys()].sort();
  t.deepEqual(
    handlers.filter((h) => h.startsWith('kvmesh.kv.')),
    ['kvmesh.kv.Get', 'kvmesh.kv.Put', 'kvmesh.kv.Retract', 'kvmesh.kv.Write'],
  );
  t.true(handlers.includes('kvmesh.movement.PutBatch'));
  t.true(handlers.includes('kvmesh.movement.Hint'));
});

test('on a single node a storage failure reaches the caller with its own code', async (t) => {
  const { kv, storage } = singleNode(t);
  storage.failure = new KvError('KVMESH_ERR_STORAGE_IO', 'disk full');
  await t.throwsAsync(kv.put('k', UTF8.encode('v'), 'text/plain'), { code: 'KVMESH_ERR_STORAGE_IO' });
  await t.throwsAsync(kv.get('k'), { code: 'KVMESH_ERR_STORAGE_IO' });
});

test('a read whose signal is already aborted is cancelled', async (t) => {
  const { kv } = singleNode(t);
  const controller = new AbortController();
  controller.abort();
  await t.throwsAsync(kv.get('k', { signal: controller.signal }), { code: 'KVMESH_ERR_RPC_ABORTED' });
});

test('operations are counted by kind and outcome', async (t) => {
  const { kv } = singleNode(t, { maxKeyBytes: 8 });
  await kv.put('k', UTF8.encode('v'), 'text/plain');
  await kv.put('k', UTF8.encode('v'), 'text/plain');
  await kv.get('k');
  await kv.get('missing');
  await t.throwsAsync(kv.put('k', UTF8.encode('v'), 'text/plain', { ifNoneMatch: '*' }));
  await t.throwsAsync(kv.get('k'.repeat(9)));
  await kv.delete('k');
  await kv.delete('k');
  const { operations } = kv.stats;
  t.is(operations.put.created, 1);
  t.is(operations.put.replaced, 1);
  t.is(operations.put.precondition_failed, 1);
  t.is(operations.get.found, 1);
  t.is(operations.get.not_found, 1);
  t.is(operations.get.invalid, 1);
  t.is(operations.delete.deleted, 1);
  t.is(operations.delete.not_found, 1);
  t.is(operations.get.error, 0);
});

test('tombstones are collected on the clock once their grace period has passed', async (t) => {
  const { kv, clock, storage } = singleNode(t, { kv: { tombstoneGraceMs: 10_000 } });
  await kv.put('k', UTF8.encode('v'), 'text/plain');
  await kv.delete('k');
  const deletedAt = clock.now();
  await kv.put('kept', UTF8.encode('v'), 'text/plain');
  await clock.advanceAsync(5_000);
  t.true(storage.records.has('k'), 'still within the grace period');
  await until(clock, () => !storage.records.has('k'), 20_000);
  t.true(clock.now() - deletedAt > 10_000);
  t.is(kv.stats.tombstonesCollected, 1);
  t.true(storage.records.has('kept'), 'live records are not collected');
});

test('a malformed kv config section is refused when the service is built', (t) => {
  const err = t.throws<KvErrorType>(
    () =>
      new CoordinatorKvService({
        node: { id: 'n1', address: '127.0.0.1:4000', role: 'storage', dataDir: '/tmp', configDir: '/tmp' },
        config: { kv: { tombstoneGraceMs: -1 } },
        clock: new VirtualClock(),
        random: new SeededRandom(1),
        storage: new MapStorage(),
        placement: new FixedPlacement({ replicas: [member('n1')], writeQuorum: 1, readQuorum: 1 }),
        rpc: new LoneRpc(),
        messages: createMessageRegistry(),
        logger: silentLogger,
      }),
  );
  t.is(err?.code, 'KVMESH_ERR_CONFIG_INVALID');
  t.regex(err?.message ?? '', /\/kv\/tombstoneGraceMs/);
});
