import test from 'ava';
import { compareVersions, formatVersion } from '../../src/index.js';
import type { KvError, Rpc } from '../../src/index.js';
import { UTF8, kvCluster, member, settle, text, until } from './helpers.js';

// Three simulated nodes, each a replica of every key, W = 2, R = 2.

test('a write reaches every replica and any node reads it back', async (t) => {
  const { clock, byId, nodes } = await kvCluster(t);
  const put = await settle(clock, byId('a').kv.put('k', UTF8.encode('v1'), 'text/plain'));
  t.true(put.created);
  await until(clock, () => nodes.every((n) => n.storage.records.has('k')));
  for (const n of nodes) t.deepEqual(n.storage.records.get('k')?.version, put.version);
  const got = (await settle(clock, byId('c').kv.get('k'))).record;
  t.is(text(got?.value), 'v1');
  t.is(got?.contentType, 'text/plain');
});

test('a write succeeds with one replica down', async (t) => {
  const { clock, byId } = await kvCluster(t);
  await byId('c').node.stop();
  const put = await settle(clock, byId('a').kv.put('k', UTF8.encode('v'), 'text/plain'));
  t.true(put.created);
  t.deepEqual(byId('a').storage.records.get('k')?.version, put.version);
  t.deepEqual(byId('b').storage.records.get('k')?.version, put.version);
  t.false(byId('c').storage.records.has('k'));
  t.is(text((await settle(clock, byId('b').kv.get('k'))).record?.value), 'v');
});

test('a write fails with KVMESH_ERR_KV_QUORUM when two replicas are down', async (t) => {
  const { clock, byId } = await kvCluster(t);
  await Promise.all([byId('b').node.stop(), byId('c').node.stop()]);
  const err = await t.throwsAsync<KvError>(settle(clock, byId('a').kv.put('k', UTF8.encode('v'), 'text/plain')));
  t.is(err?.code, 'KVMESH_ERR_KV_QUORUM');
  t.is(err?.details?.['needed'], 2);
  t.is(err?.details?.['answered'], 1);
  t.is(byId('a').kv.stats.operations.put.unavailable, 1);
});

test('a write to replicas cut off by a partition fails with KVMESH_ERR_KV_QUORUM at the rpc deadline', async (t) => {
  const { clock, network, byId } = await kvCluster(t, { timeoutMs: 500 });
  network.partition(['a'], ['b', 'c']);
  const started = clock.now();
  await t.throwsAsync(settle(clock, byId('a').kv.put('k', UTF8.encode('v'), 'text/plain')), {
    code: 'KVMESH_ERR_KV_QUORUM',
  });
  t.true(clock.now() - started >= 500);
});

test('a write is refused before anything is stored when placement knows too few replicas are up', async (t) => {
  const { clock, byId } = await kvCluster(t);
  const a = byId('a');
  await settle(clock, a.kv.put('k', UTF8.encode('old'), 'text/plain'));
  const before = a.storage.records.get('k');
  a.placement.set = {
    replicas: [member('a'), member('b', 'dead'), member('c', 'left')],
    writeQuorum: 2,
    readQuorum: 2,
  };
  const puts = a.storage.calls.put;
  await t.throwsAsync(settle(clock, a.kv.put('k', UTF8.encode('new'), 'text/plain')), {
    code: 'KVMESH_ERR_KV_QUORUM',
  });
  t.is(a.storage.calls.put, puts, 'not even the local replica was written');
  t.is(a.storage.records.get('k'), before);
});

test('a read returns the newest version when one replica is stale, and repairs it', async (t) => {
  const { clock, network, byId } = await kvCluster(t);
  const v1 = await settle(clock, byId('a').kv.put('k', UTF8.encode('v1'), 'text/plain'));
  await until(clock, () => byId('c').storage.records.has('k'));
  network.partition(['c'], ['a', 'b']);
  const v2 = await settle(clock, byId('a').kv.put('k', UTF8.encode('v2'), 'text/plain'));
  t.false(v2.created);
  network.heal();
  t.deepEqual(byId('c').storage.records.get('k')?.version, v1.version, 'c missed the second write');
  // c asks itself first (stale), then one more replica (current).
  const got = (await settle(clock, byId('c').kv.get('k'))).record;
  t.is(text(got?.value), 'v2');
  t.deepEqual(got?.version, v2.version);
  await until(clock, () => compareVersions(byId('c').storage.records.get('k')!.version, v2.version) === 0);
  t.is(byId('c').kv.stats.readRepairs, 1);
});

test('two writes of one timestamp from two nodes: every node reads the greater value, and read repair spreads it', async (t) => {
  const { clock, byId } = await kvCluster(t);
  // What two primaries stamping in the same millisecond leave behind (a failover, a partition):
  // one timestamp, two nodes, and node order against value order.
  const stamp = { wallMs: clock.now(), logical: 0 };
  const apple = { key: 'k', value: UTF8.encode('apple'), contentType: 'text/plain', tombstone: false };
  // Each write reached some replicas; a quorum (2 of 3) holds 'pear', the greater value, whose node id sorts first.
  const pear = { ...apple, value: UTF8.encode('pear'), version: { ...stamp, node: 'a' } };
  byId('a').storage.records.set('k', pear);
  byId('b').storage.records.set('k', pear);
  byId('c').storage.records.set('k', { ...apple, version: { ...stamp, node: 'z' } });
  for (const id of ['a', 'b', 'c']) {
    const got = (await settle(clock, byId(id).kv.get('k'))).record;
    t.is(text(got?.value), 'pear', `read at ${id}`);
  }
  await until(clock, () => ['a', 'b', 'c'].every((id) => text(byId(id).storage.records.get('k')?.value) === 'pear'));
  t.true(['a', 'b', 'c'].some((id) => byId(id).kv.stats.readRepairs > 0));
});

test('a read with one replica down still reaches its quorum; with two down it fails', async (t) => {
  const { clock, byId } = await kvCluster(t);
  await settle(clock, byId('a').kv.put('k', UTF8.encode('v'), 'text/plain'));
  await until(clock, () => byId('c').storage.records.has('k'));
  await byId('b').node.stop();
  t.is(text((await settle(clock, byId('a').kv.get('k'))).record?.value), 'v', 'b failed, so c was asked instead');
  await byId('c').node.stop();
  await t.throwsAsync(settle(clock, byId('a').kv.get('k')), { code: 'KVMESH_ERR_KV_QUORUM' });
});

test('a later write through another node wins, even within the same millisecond', async (t) => {
  const { clock, byId } = await kvCluster(t);
  const first = await settle(clock, byId('c').kv.put('k', UTF8.encode('from c'), 'text/plain'));
  const second = await settle(clock, byId('a').kv.put('k', UTF8.encode('from a'), 'text/plain'));
  t.true(compareVersions(second.version, first.version) > 0, "a's clock followed the version it stored for c");
  t.false(second.created);
  t.is(text((await settle(clock, byId('b').kv.get('k'))).record?.value), 'from a');
});

test('refused writes leave the old value intact on every replica', async (t) => {
  const { clock, byId, nodes } = await kvCluster(t);
  const v1 = await settle(clock, byId('a').kv.put('k', UTF8.encode('old'), 'text/plain'));
  await until(clock, () => nodes.every((n) => n.storage.records.has('k')));
  const stale = formatVersion({ ...v1.version, logical: v1.version.logical + 100 });
  await t.throwsAsync(settle(clock, byId('b').kv.put('k', UTF8.encode('new'), 'text/plain', { ifMatch: stale })), {
    code: 'KVMESH_ERR_KV_PRECONDITION_FAILED',
  });
  await t.throwsAsync(settle(clock, byId('c').kv.put('k', new Uint8Array(65), 'text/plain')), {
    code: 'KVMESH_ERR_KV_VALUE_TOO_LARGE',
  });
  await t.throwsAsync(settle(clock, byId('a').kv.delete('k', { ifNoneMatch: '*' })), {
    code: 'KVMESH_ERR_KV_PRECONDITION_FAILED',
  });
  await clock.advanceAsync(100);
  for (const n of nodes) {
    t.deepEqual(n.storage.records.get('k')?.version, v1.version, `replica ${n.id}`);
    t.is(text(n.storage.records.get('k')?.value), 'old');
  }
});

test('of concurrent conditional writes through one node exactly one wins on the replicas', async (t) => {
  const { clock, byId, nodes } = await kvCluster(t);
  const v0 = await settle(clock, byId('b').kv.put('k', UTF8.encode('v0'), 'text/plain'));
  const ifMatch = formatVersion(v0.version);
  const all = Promise.allSettled(
    Array.from({ length: 5 }, (_, i) => byId('b').kv.put('k', UTF8.encode(`w${i}`), 'text/plain', { ifMatch })),
  );
  const results = await settle(clock, all);
  const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
  t.is(won.length, 1);
  await until(clock, () => nodes.every((n) => text(n.storage.records.get('k')?.value) === `w${won[0]}`));
  t.pass();
});

test('a delete reaches the replicas as a tombstone and the key reads as absent everywhere', async (t) => {
  const { clock, byId, nodes } = await kvCluster(t);
  await settle(clock, byId('a').kv.put('k', UTF8.encode('v'), 'text/plain'));
  const deleted = await settle(clock, byId('b').kv.delete('k'));
  t.true(deleted.existed);
  await until(clock, () => nodes.every((n) => n.storage.records.get('k')?.tombstone === true));
  for (const n of nodes) t.is((await settle(clock, n.kv.get('k'))).record, undefined, `read through ${n.id}`);
  const again = await settle(clock, byId('c').kv.delete('k'));
  t.false(again.existed);
  t.is(again.version, undefined);
});

test('a replica checks records it is sent against its own limits and clock', async (t) => {
  const { clock, byId } = await kvCluster(t);
  const rpc = byId('a').node.get<Rpc>('rpc');
  const record = (value: Uint8Array, wallMs: number) => ({
    key: 'k',
    value,
    contentType: 'application/octet-stream',
    version: { wallMs, logical: 0, node: 'a' },
    tombstone: false,
  });
  await t.throwsAsync(
    settle(clock, rpc.request('sim://b', 'kvmesh.kv.Put', { record: record(new Uint8Array(65), clock.now()) })),
    {
      code: 'KVMESH_ERR_KV_VALUE_TOO_LARGE',
    },
  );
  await t.throwsAsync(
    settle(
      clock,
      rpc.request('sim://b', 'kvmesh.kv.Put', { record: record(new Uint8Array(1), clock.now() + 3_600_000) }),
    ),
    { code: 'KVMESH_ERR_VERSION_DRIFT' },
  );
  // A content type that is no HTTP field value would make every later read of the key fail.
  await t.throwsAsync(
    settle(
      clock,
      rpc.request('sim://b', 'kvmesh.kv.Put', {
        record: { ...record(new Uint8Array(1), clock.now()), contentType: 'text/plain\r\nX: 1' },
      }),
    ),
    { code: 'KVMESH_ERR_KV_REQUEST_INVALID' },
  );
  t.false(byId('b').storage.records.has('k'));
  const accepted = record(new Uint8Array([7]), clock.now());
  const reply = await settle(clock, rpc.request('sim://b', 'kvmesh.kv.Put', { record: accepted }));
  t.deepEqual(reply.payload, { written: true, previous: null, previousTombstone: false, conflict: false });
  const read = await settle(clock, rpc.request('sim://b', 'kvmesh.kv.Get', { key: 'k' }));
  t.deepEqual(read.payload, { record: accepted });
});

test('with kv.readFrom "any" the reads of one key spread over its replicas; by default the primary answers them', async (t) => {
  const served = async (kv: Record<string, unknown> | undefined): Promise<Record<string, number>> => {
    const { clock, byId } = await kvCluster(t, {
      ids: ['a', 'b', 'c', 'front'],
      replicaIds: ['a', 'b', 'c'],
      writeQuorum: 3,
      readQuorum: 1,
      ...(kv ? { kv } : {}),
    });
    await settle(clock, byId('front').kv.put('k', UTF8.encode('v'), 'text/plain'));
    const counts: Record<string, number> = {};
    for (let i = 0; i < 60; i++) {
      const got = await settle(clock, byId('front').kv.get('k'));
      t.is(text(got.record?.value), 'v');
      counts[got.servedBy.id] = (counts[got.servedBy.id] ?? 0) + 1;
    }
    return counts;
  };
  t.deepEqual(await served(undefined), { a: 60 }, '"order": the primary answers every read');
  const spread = await served({ readFrom: 'any' });
  t.log(`60 reads with readFrom "any": ${JSON.stringify(spread)}`);
  t.deepEqual(Object.keys(spread).sort(), ['a', 'b', 'c']);
  for (const id of ['a', 'b', 'c']) t.true(spread[id]! >= 10, `${id} answered ${spread[id]} of 60`);
});
