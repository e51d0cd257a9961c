import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { compareVersions, silentLogger, viewFingerprint } from '../../src/index.js';
import { PlanStore } from '../../src/movement/plan-store.js';
import type { Member, StoredRecord, ViewParameters } from '../../src/index.js';
import { member, movementCluster, record, savedViews, settle, until } from './helpers.js';
import type { MovementNode } from './helpers.js';

// A view change of its parameters alone (Membership.viewParameters, such as a replication factor): the members stay,
// the owners of keys change, and data movement moves them as it does for a change of members.

type Cluster = Awaited<ReturnType<typeof movementCluster>>;

function seed(cluster: Cluster, count: number): StoredRecord[] {
  const any = [...cluster.nodes.values()][0]!;
  const out: StoredRecord[] = [];
  for (let i = 0; i < count; i++) {
    const r = record(`key-${String(i).padStart(5, '0')}`, `value-${i}`, 1000);
    for (const owner of any.placement.ownersOf(r.key)) cluster.byId(owner.id).disk.records.set(r.key, r);
    out.push(r);
  }
  return out;
}

function setParameters(cluster: Cluster, parameters: ViewParameters): void {
  for (const n of cluster.nodes.values()) n.membership.setParameters(parameters);
}

async function quiet(cluster: Cluster, view: readonly Member[], parameters: ViewParameters): Promise<void> {
  const fingerprint = viewFingerprint(view, parameters);
  const nodes = (): MovementNode[] => [...cluster.nodes.values()];
  await until(cluster.clock, () =>
    nodes().every((n) => {
      const s = n.movement.status();
      return s.view === fingerprint && s.state === 'idle';
    }),
  );
}

function misplaced(cluster: Cluster, records: readonly StoredRecord[]): string[] {
  const any = [...cluster.nodes.values()][0]!;
  const problems: string[] = [];
  for (const r of records) {
    const owners = any.placement.ownersOf(r.key).map((m) => m.id);
    for (const n of cluster.nodes.values()) {
      const held = n.disk.records.get(r.key);
      if (owners.includes(n.id) && (held === undefined || compareVersions(held.version, r.version) !== 0))
        problems.push(`${r.key} missing on its owner ${n.id}`);
      if (!owners.includes(n.id) && held !== undefined) problems.push(`${r.key} still on ${n.id}`);
    }
  }
  return problems.slice(0, 10);
}

test('a change of the view parameters alone copies keys to their new owners, and back purges the copies', async (t: ExecutionContext) => {
  const ids = ['a', 'b', 'c', 'd'];
  const view = ids.map((id) => member(id));
  const cluster = await movementCluster(t, { ids, replicas: 1 });
  const records = seed(cluster, 1000);
  await quiet(cluster, view, {});
  t.is(
    ids.reduce((sum, id) => sum + cluster.byId(id).disk.records.size, 0),
    1000,
    'one copy of each key at 1 replica',
  );

  setParameters(cluster, { replicas: 3 });
  await settle(cluster.clock, Promise.all(ids.map((id) => cluster.byId(id).movement.settled())));
  await quiet(cluster, view, { replicas: 3 });
  t.deepEqual(misplaced(cluster, records), [], 'every key on its 3 owners');
  t.is(
    ids.reduce((sum, id) => sum + cluster.byId(id).disk.records.size, 0),
    3000,
  );

  setParameters(cluster, { replicas: 1 });
  await quiet(cluster, view, { replicas: 1 });
  t.deepEqual(misplaced(cluster, records), [], 'every key on its one owner again, the other copies purged');
  await until(cluster.clock, () => [...cluster.nodes.values()].every((n) => savedViews(n) === 1));
});

test('a node restarted while a change of parameters moves data resumes the move from its plan file', async (t) => {
  const ids = ['a', 'b', 'c'];
  const view = ids.map((id) => member(id));
  const cluster = await movementCluster(t, {
    ids,
    replicas: 1,
    kv: { batchSize: 50, rebalanceMaxKeysPerSecond: 500 },
  });
  const records = seed(cluster, 2000);
  await quiet(cluster, view, {});
  setParameters(cluster, { replicas: 2 });
  // Crash an old owner once it copied part of its keys, before its moves finish.
  const copied = (id: string): number => cluster.byId(id).movement.status().keys.copied;
  await until(cluster.clock, () => ids.some((id) => copied(id) >= 100));
  const crashed = ids.find((id) => copied(id) >= 100)!;
  await cluster.crash(crashed);
  t.true(savedViews(cluster.byId(crashed)) > 1, 'the plan file holds the views while data moves');
  const restarted = await cluster.restart(crashed);
  t.true(restarted.movement.status().moves.outgoing > 0, 'resumed from the plan file, parameters included, at start');
  await quiet(cluster, view, { replicas: 2 });
  t.deepEqual(misplaced(cluster, records), [], 'every key on its 2 owners after the restart');
});

test('the view fingerprint is unchanged for a view without parameters and tells parameters apart', (t) => {
  const view = ['a', 'b'].map((id) => member(id));
  t.is(viewFingerprint(view, {}), viewFingerprint(view));
  t.not(viewFingerprint(view, { replicationFactor: 1 }), viewFingerprint(view));
  t.not(viewFingerprint(view, { replicationFactor: 1 }), viewFingerprint(view, { replicationFactor: 2 }));
  t.is(viewFingerprint(view, { a: 1, b: 2 }), viewFingerprint(view, { b: 2, a: 1 }), 'names in any order');
});

test('the plan file keeps each view with its parameters, and a file without them still loads', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvmesh-plan-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = new PlanStore(join(dir, 'plan.json'), silentLogger);
  const views = [[member('a')], [member('a'), member('b')]];
  await store.save({ views, parameters: [{}, { replicationFactor: 2 }], cleared: [] });
  t.deepEqual(store.load()?.parameters, [{}, { replicationFactor: 2 }]);
  await store.save({ views, cleared: [] });
  const plain = store.load();
  t.is(plain?.views.length, 2);
  t.is(plain?.parameters, undefined);
});
