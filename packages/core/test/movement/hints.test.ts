import test from 'ava';
import { isKvError } from '../../src/index.js';
import { member, movementCluster, record, settle, text, until } from './helpers.js';

// Three nodes, every key on all of them: any node may hold hints for any other.
const ids = ['a', 'b', 'c'];
const all = ids.map((id) => member(id));
const cDown = [member('a'), member('b'), member('c', 'dead')];

test('a hint is stored on a remote fallback, replayed when the target is back, then removed', async (t) => {
  const cluster = await movementCluster(t, { ids, replicas: 3 });
  const [a, b, c] = ids.map((id) => cluster.byId(id));
  cluster.setView(cDown, ['a', 'b']);
  await cluster.crash('c');
  const r = record('hinted', 'for c', 2000, 'a');
  await settle(cluster.clock, a!.movement.hint(member('b'), member('c', 'dead'), r));
  t.deepEqual(b!.disk.hints.get('c')?.get('hinted'), r);
  t.is(b!.disk.records.get('hinted'), undefined, "a hint is not the fallback's own record");
  await cluster.clock.advanceAsync(3000);
  t.is(b!.disk.hints.get('c')?.size, 1, 'kept while the target is down');

  await cluster.restart('c');
  cluster.setView(all);
  await until(cluster.clock, () => b!.disk.hints.get('c')?.size === 0);
  t.is(text(c!.disk.records.get('hinted')?.value), 'for c');
  const status = b!.movement.status();
  t.is(status.hints.stored, 1);
  t.is(status.hints.replayed, 1);
  await until(cluster.clock, () => b!.movement.status().hints.held === 0);
});

test('a hint on this node itself goes to local storage.hints', async (t) => {
  const cluster = await movementCluster(t, { ids, replicas: 3 });
  const a = cluster.byId('a');
  cluster.setView(cDown, ['a', 'b']);
  await cluster.crash('c');
  await settle(cluster.clock, a.movement.hint(member('a'), member('c', 'dead'), record('k', 'v', 1000)));
  t.is(a.disk.hints.get('c')?.size, 1);
  t.is(a.movement.status().hints.stored, 1);
});

test('hints are replayed in pages and each is removed once stored; an older hint does not overwrite', async (t) => {
  const cluster = await movementCluster(t, { ids, replicas: 3, kv: { batchSize: 7 } });
  const [a, , c] = ids.map((id) => cluster.byId(id));
  cluster.setView(cDown, ['a', 'b']);
  await cluster.crash('c');
  for (let i = 0; i < 40; i++) {
    await settle(cluster.clock, a!.movement.hint(member('a'), member('c'), record(`h${i}`, `v${i}`, 1000 + i)));
  }
  // c already holds a newer version of h0: replay must not overwrite it, and the hint still goes.
  c!.disk.records.set('h0', record('h0', 'newer on c', 9000, 'c'));
  await cluster.restart('c');
  cluster.setView(all);
  await until(cluster.clock, () => (a!.disk.hints.get('c')?.size ?? 0) === 0);
  t.is(text(c!.disk.records.get('h0')?.value), 'newer on c');
  for (let i = 1; i < 40; i++) t.is(text(c!.disk.records.get(`h${i}`)?.value), `v${i}`);
  t.is(a!.movement.status().hints.replayed, 40);
});

test('a hint refused by a target that no longer owns the key goes to its current owners', async (t) => {
  const cluster = await movementCluster(t, { ids, replicas: 3 });
  const [a, b, c] = ids.map((id) => cluster.byId(id));
  await settle(cluster.clock, a!.movement.hint(member('a'), member('c'), record('moved', 'v', 1000)));
  // c refuses: placement on c says it does not own the key; a's placement still lists c, so a keeps the hint.
  c!.placement.refuse = () => true;
  a!.movement.replayHints();
  await cluster.clock.advanceAsync(3000);
  t.is(a!.disk.hints.get('c')?.size, 1);
  t.is(c!.disk.records.get('moved'), undefined);
  // Now a's placement drops c from the replicas too (c left): the hint goes to a and b instead.
  cluster.setView([member('a'), member('b'), member('c', 'left')], ['a', 'b']);
  await until(cluster.clock, () => (a!.disk.hints.get('c')?.size ?? 0) === 0, 120_000);
  t.is(text(b!.disk.records.get('moved')?.value), 'v');
  t.is(text(a!.disk.records.get('moved')?.value), 'v');
});

test('hint() fails with MOVEMENT_UNSUPPORTED when the fallback keeps no hints', async (t) => {
  const cluster = await movementCluster(t, { ids, replicas: 3 });
  const b = cluster.byId('b');
  Object.defineProperty(b.storage, 'hints', { value: undefined });
  const err = await t.throwsAsync(
    settle(cluster.clock, cluster.byId('a').movement.hint(member('b'), member('c'), record('k', 'v', 1))),
  );
  t.true(isKvError(err, 'KVMESH_ERR_MOVEMENT_UNSUPPORTED'), String(err));
});
