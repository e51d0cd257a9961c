import test from 'ava';
import {
  CoordinatorKvService,
  KvError,
  SeededRandom,
  VirtualClock,
  compareVersions,
  createMessageRegistry,
  isKvError,
  silentLogger,
  viewEpoch,
} from '../../src/index.js';
import type { Membership, Transport } from '../../src/index.js';
import { FixedPlacement, LoneRpc, MapStorage, kvCluster, member, settle, text, until } from './helpers.js';

const UTF8 = new TextEncoder();

test('a write through a node that holds no replica is run by the primary and read back everywhere', async (t) => {
  const { clock, byId, nodes } = await kvCluster(t, { ids: ['a', 'b', 'c', 'd'], replicaIds: ['a', 'b', 'c'] });
  const put = await settle(clock, byId('d').kv.put('k', UTF8.encode('v'), 'text/plain'));
  t.true(put.created);
  t.is(put.servedBy.id, 'a', 'the first replica is the primary');
  t.is(put.version.node, 'a', 'the primary stamps the version');
  t.false(byId('d').storage.records.has('k'), 'the coordinator keeps no copy');
  for (const n of nodes) {
    const got = await settle(clock, n.kv.get('k'));
    t.is(text(got.record?.value), 'v', `read through ${n.id}`);
    t.true(['a', 'b', 'c'].includes(got.servedBy.id), `served by a replica, not ${got.servedBy.id}`);
  }
  t.is(byId('d').kv.stats.forwardedWrites, 1);
});

test('a coordinator whose clock lags a minute behind cannot lose a write', async (t) => {
  const { clock, byId, nodes } = await kvCluster(t, {
    ids: ['a', 'b', 'c', 'd'],
    replicaIds: ['a', 'b', 'c'],
    clockOffsetMs: { d: -59_000 },
  });
  await settle(clock, byId('b').kv.put('k', UTF8.encode('first'), 'text/plain'));
  const second = await settle(clock, byId('d').kv.put('k', UTF8.encode('second'), 'text/plain'));
  t.false(second.created);
  for (const n of nodes) t.is(text((await settle(clock, n.kv.get('k'))).record?.value), 'second', `via ${n.id}`);
});

test('a primary whose clock lags behind the replicas stamps again above what they hold', async (t) => {
  const { clock, byId, nodes } = await kvCluster(t, { clockOffsetMs: { b: 30_000, c: 30_000 } });
  // a is down: b runs the write, with a clock 30 s ahead.
  for (const n of nodes)
    n.placement.set = { ...n.placement.set, replicas: [member('a', 'dead'), member('b'), member('c')] };
  const ahead = await settle(clock, byId('c').kv.put('k', UTF8.encode('while a was away'), 'text/plain'));
  t.is(ahead.servedBy.id, 'b');
  t.false(byId('a').storage.records.has('k'), 'a missed the write');
  // a is back and is the primary again; its clock is 30 s behind the version the others hold.
  for (const n of nodes) n.placement.set = { ...n.placement.set, replicas: [member('a'), member('b'), member('c')] };
  const after = await settle(clock, byId('c').kv.put('k', UTF8.encode('after a returned'), 'text/plain'));
  t.is(after.servedBy.id, 'a');
  t.true(
    compareVersions(after.version, ahead.version) > 0,
    'the acknowledged version beats the one from the fast clock',
  );
  for (const n of nodes) {
    t.is(text((await settle(clock, n.kv.get('k'))).record?.value), 'after a returned', `via ${n.id}`);
  }
});

test('two coordinators racing If-None-Match: * on one key: exactly one wins', async (t) => {
  const { clock, byId, nodes } = await kvCluster(t, { ids: ['a', 'b', 'c', 'd'], replicaIds: ['a', 'b', 'c'] });
  for (let round = 0; round < 5; round++) {
    const key = `race-${round}`;
    const attempts = ['b', 'c', 'd'].map((id) =>
      byId(id)
        .kv.put(key, UTF8.encode(id), 'text/plain', { ifNoneMatch: '*' })
        .then(
          () => id,
          (err: unknown) => {
            if (!isKvError(err, 'KVMESH_ERR_KV_PRECONDITION_FAILED')) throw err;
            return undefined;
          },
        ),
    );
    const outcomes = await settle(clock, Promise.all(attempts));
    const winners = outcomes.filter((o) => o !== undefined);
    t.is(winners.length, 1, `round ${round}: ${JSON.stringify(outcomes)}`);
    for (const n of nodes) t.is(text((await settle(clock, n.kv.get(key))).record?.value), winners[0]);
  }
});

test('a precondition failure at the primary reaches the forwarding node with the current version', async (t) => {
  const { clock, byId } = await kvCluster(t, { ids: ['a', 'b', 'c', 'd'], replicaIds: ['a', 'b', 'c'] });
  const put = await settle(clock, byId('a').kv.put('k', UTF8.encode('v'), 'text/plain'));
  const err = await settle(
    clock,
    byId('d')
      .kv.put('k', UTF8.encode('w'), 'text/plain', { ifMatch: '"1-0-x"' })
      .then(
        () => undefined,
        (e: unknown) => e as { code: string; details?: Record<string, unknown> },
      ),
  );
  t.is(err?.code, 'KVMESH_ERR_KV_PRECONDITION_FAILED');
  t.truthy(err?.details?.['currentVersion']);
  t.is(text((await settle(clock, byId('d').kv.get('k'))).record?.value), 'v');
  t.truthy(put.version);
});

test('a replica that does not own the key at its epoch makes the coordinator locate again, then fail clearly', async (t) => {
  const { clock, byId } = await kvCluster(t, { ids: ['a', 'b', 'c', 'd'], replicaIds: ['a', 'b', 'c'] });
  // d believes a, b, c hold the key; they believe it lives elsewhere.
  for (const id of ['a', 'b', 'c']) byId(id).placement.set = { ...byId(id).placement.set, replicas: [member('x')] };
  const err = await settle(
    clock,
    byId('d')
      .kv.get('k')
      .then(
        () => undefined,
        (e: unknown) => e as Error & { code: string },
      ),
  );
  t.is(err?.code, 'KVMESH_ERR_KV_NOT_OWNER');
  t.true(byId('d').kv.stats.relocations >= 2, `relocated ${byId('d').kv.stats.relocations} times`);
});

test('a coordinator whose view catches up during the retries succeeds', async (t) => {
  const { clock, byId } = await kvCluster(t, { ids: ['a', 'b', 'c', 'd'], replicaIds: ['a', 'b'] });
  // The replicas moved the key to c; d still locates it at a and b.
  for (const id of ['a', 'b', 'c'])
    byId(id).placement.set = { ...byId(id).placement.set, replicas: [member('c')], writeQuorum: 1, readQuorum: 1 };
  const writing = byId('d').kv.put('k', UTF8.encode('v'), 'text/plain');
  clock.setTimeout(() => {
    byId('d').placement.set = { ...byId('d').placement.set, replicas: [member('c')], writeQuorum: 1, readQuorum: 1 };
  }, 30);
  const put = await settle(clock, writing);
  t.is(put.servedBy.id, 'c');
  t.true(byId('c').storage.records.has('k'));
  t.false(byId('a').storage.records.has('k'));
});

test('a write whose replica refused the key at its newer epoch is located again and lands on the new replicas', async (t) => {
  const { clock, byId } = await kvCluster(t, { ids: ['a', 'b', 'c'], replicaIds: ['a', 'b'] });
  for (const id of ['a', 'b', 'c']) byId(id).placement.set = { ...byId(id).placement.set, writeQuorum: 2 };
  // A view change reached b and c first: the key lives at a and c now. a, its primary, still writes to a and b.
  for (const id of ['b', 'c']) {
    byId(id).placement.set = { ...byId(id).placement.set, replicas: [member('a'), member('c')], writeQuorum: 2 };
  }
  const writing = byId('a').kv.put('k', UTF8.encode('v'), 'text/plain');
  clock.setTimeout(() => {
    byId('a').placement.set = { ...byId('a').placement.set, replicas: [member('a'), member('c')], writeQuorum: 2 };
  }, 30);
  const put = await settle(clock, writing);
  t.is(put.servedBy.id, 'a');
  t.true(byId('c').storage.records.has('k'), 'the new replica has the acknowledged write');
  t.false(byId('b').storage.records.has('k'), 'the replica that refused stored nothing');
  t.true(byId('a').kv.stats.relocations >= 1);
});

test('a read hedges to the next replica instead of waiting for a slow one', async (t) => {
  const { clock, byId, network } = await kvCluster(t, {
    ids: ['a', 'b', 'c', 'd'],
    replicaIds: ['a', 'b', 'c'],
    readQuorum: 1,
    timeoutMs: 2000,
  });
  await settle(clock, byId('a').kv.put('k', UTF8.encode('v'), 'text/plain'));
  network.setLink('d', 'a', { latencyMs: { min: 1500, max: 1500 } });
  const started = clock.now();
  const got = await settle(clock, byId('d').kv.get('k'));
  const took = clock.now() - started;
  t.is(text(got.record?.value), 'v');
  t.not(got.servedBy.id, 'a');
  t.true(took < 500, `answered after ${took} ms of virtual time`);
});

test('a write for a replica that is down waits as a hint on a fallback and reaches it once it is back', async (t) => {
  const { clock, byId, network, nodes } = await kvCluster(t, {
    ids: ['a', 'b', 'c', 'd'],
    replicaIds: ['a', 'b', 'c'],
  });
  const down = [member('a'), member('b'), member('c', 'dead')];
  for (const n of nodes) n.placement.set = { ...n.placement.set, replicas: down, fallbacks: [member('d')] };
  network.partition(['c'], ['a', 'b', 'd']);
  const put = await settle(clock, byId('b').kv.put('k', UTF8.encode('while c was down'), 'text/plain'));
  t.is(put.servedBy.id, 'a');
  await settle(
    clock,
    (async () => {
      while ((await byId('d').storage.hints.count()) === 0) await clock.sleep(10);
    })(),
  );
  t.false(byId('c').storage.records.has('k'));
  t.is(await byId('d').storage.count(), 0, 'a hint is not data: the fallback counts no key');
  network.heal();
  await settle(
    clock,
    (async () => {
      while (!byId('c').storage.records.has('k')) await clock.sleep(50);
    })(),
  );
  t.is(text(byId('c').storage.records.get('k')?.value), 'while c was down');
  await settle(
    clock,
    (async () => {
      while ((await byId('d').storage.hints.count()) > 0) await clock.sleep(50);
    })(),
  );
  t.true(byId('a').kv.stats.hintsWritten >= 1);
});

test('a replica that cannot be reached is reported to membership, which decides', async (t) => {
  const reported: string[] = [];
  const membership = {
    members: () => [],
    on: () => () => undefined,
    reportUnreachable: (id: string) => void reported.push(id),
  } as unknown as Membership;
  const rpc = new LoneRpc();
  rpc.request = () => Promise.reject(new KvError('KVMESH_ERR_TRANSPORT_UNREACHABLE', 'connection refused'));
  const clock = new VirtualClock();
  const kv = new CoordinatorKvService({
    node: { id: 'n1', address: '127.0.0.1:4000', role: 'frontend', dataDir: '/tmp', configDir: '/tmp' },
    config: {},
    clock,
    random: new SeededRandom(1),
    storage: new MapStorage(),
    placement: new FixedPlacement({ replicas: [member('n1'), member('n2')], writeQuorum: 1, readQuorum: 1 }, 'n1'),
    rpc,
    messages: createMessageRegistry(),
    logger: silentLogger,
    membership,
  });
  kv.start();
  t.teardown(() => kv.stop());
  await kv.put('k', UTF8.encode('v'), 'text/plain');
  await until(clock, () => reported.includes('n2'));
  t.deepEqual([...new Set(reported)], ['n2']);
});

test('a replica in another view than the coordinator does not answer its reads until the views agree', async (t) => {
  const { clock, byId, nodes } = await kvCluster(t, { ids: ['a', 'b', 'c'], replicaIds: ['b', 'c'], readQuorum: 1 });
  await settle(clock, byId('a').kv.put('k', UTF8.encode('v'), 'text/plain'));
  // a has learned of a view change that b and c have not: its epoch differs, its set says b and c.
  byId('a').placement.epoch = 2;
  const refused = await settle(
    clock,
    byId('a')
      .kv.get('k')
      .then(
        () => undefined,
        (e: unknown) => e as { code: string },
      ),
  );
  t.is(refused?.code, 'KVMESH_ERR_KV_NOT_OWNER', 'no answer from a view the coordinator does not share');
  for (const n of nodes) n.placement.epoch = 2;
  t.is(text((await settle(clock, byId('a').kv.get('k'))).record?.value), 'v');
});

test('viewEpoch names a set of ids: order does not matter, content does, and it is never 0', (t) => {
  t.is(viewEpoch(['b', 'a']), viewEpoch(['a', 'b']));
  t.not(viewEpoch(['a', 'b']), viewEpoch(['ab']));
  t.not(viewEpoch(['a', 'b']), viewEpoch(['a', 'b', 'c']));
  t.true(viewEpoch([]) > 0);
});

test('many replica requests in flight at once raise no listener-leak warning', async (t) => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.name);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
  const { clock, byId } = await kvCluster(t, { ids: ['a', 'b', 'c', 'd'], replicaIds: ['a', 'b', 'c'] });
  await settle(
    clock,
    Promise.all(Array.from({ length: 40 }, (_, i) => byId('d').kv.put(`k${i}`, UTF8.encode('v'), 'text/plain'))),
  );
  await settle(clock, Promise.all(Array.from({ length: 40 }, (_, i) => byId('d').kv.get(`k${i}`))));
  await new Promise((resolve) => setImmediate(resolve));
  t.false(warnings.includes('MaxListenersExceededWarning'), warnings.join(', '));
});

test('a forwarded write whose primary does not answer in time is not run elsewhere: the client hears it may apply', async (t) => {
  const { clock, byId, network } = await kvCluster(t, {
    ids: ['a', 'b', 'c', 'd'],
    replicaIds: ['a', 'b', 'c'],
    timeoutMs: 200,
  });
  network.setLink('d', 'a', { latencyMs: { min: 5000, max: 5000 } });
  const err = await settle(
    clock,
    byId('d')
      .kv.put('k', UTF8.encode('late'), 'text/plain')
      .then(
        () => undefined,
        (e: unknown) => e as Error & { code: string },
      ),
  );
  t.is(err?.code, 'KVMESH_ERR_KV_QUORUM');
  t.regex(err!.message, /may or may not apply it/);
  t.is(byId('b').kv.stats.forwardedWrites + byId('d').kv.stats.forwardedWrites, 1, 'sent to a alone');
});

test('a conditional write that reaches a replica other than the primary is sent on to the primary', async (t) => {
  const { clock, byId } = await kvCluster(t, { ids: ['a', 'b', 'c', 'd'], replicaIds: ['a', 'b', 'c'] });
  // d believes b comes first; the replicas know a does.
  byId('d').placement.set = { ...byId('d').placement.set, replicas: [member('b'), member('a'), member('c')] };
  const put = await settle(clock, byId('d').kv.put('k', UTF8.encode('v'), 'text/plain', { ifNoneMatch: '*' }));
  t.is(put.servedBy.id, 'a');
  t.is(put.version.node, 'a', 'the primary decided and stamped it');
});

test('a conditional write whose primary fails after storing it is not run again at the next replica', async (t) => {
  const { clock, byId } = await kvCluster(t, { ids: ['a', 'b', 'c', 'd'], replicaIds: ['a', 'b', 'c'] });
  // The primary stores the record, then its transport goes down before it answers: the
  // forwarding node hears the same KVMESH_ERR_TRANSPORT_UNREACHABLE as from a node nothing listens at.
  const primary = byId('a');
  const put = primary.storage.put.bind(primary.storage);
  primary.storage.put = async (record) => {
    const written = await put(record);
    if (record.key === 'k') await primary.node.get<Transport>('transport').stop();
    return written;
  };
  const err = await settle(
    clock,
    byId('d')
      .kv.put('k', UTF8.encode('once'), 'text/plain', { ifNoneMatch: '*' })
      .then(
        () => undefined,
        (e: unknown) => e as Error & { code: string },
      ),
  );
  t.is(primary.storage.records.get('k')?.version.node, 'a', 'the primary stored it');
  t.is(err?.code, 'KVMESH_ERR_KV_QUORUM', err?.message);
  t.regex(err!.message, /may or may not apply it/);
  t.is(byId('d').kv.stats.forwardedWrites, 1, 'sent to a alone');
  for (const id of ['b', 'c']) t.not(byId(id).storage.records.get('k')?.version.node, id, `${id} did not run it again`);
});
