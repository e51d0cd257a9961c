import test from 'ava';
import type { ExecutionContext } from 'ava';
import { compareVersions, viewFingerprint } from '../../src/index.js';
import type { Member, StoredRecord } from '../../src/index.js';
import {
  bucketOfKey,
  consoleLogger,
  member,
  movementCluster,
  record,
  savedViews,
  settle,
  text,
  until,
} from './helpers.js';
import type { MovementNode } from './helpers.js';

type Cluster = Awaited<ReturnType<typeof movementCluster>>;

/** Writes `count` keys to the disks of their owners under the current view (as seen by `any`). */
function seed(cluster: Cluster, count: number, wallMs = 1000): StoredRecord[] {
  const any = [...cluster.nodes.values()][0]!;
  const out: StoredRecord[] = [];
  for (let i = 0; i < count; i++) {
    const r = record(`key-${String(i).padStart(5, '0')}`, `value-${i}`, wallMs);
    for (const owner of any.placement.ownersOf(r.key)) cluster.byId(owner.id).disk.records.set(r.key, r);
    out.push(r);
  }
  return out;
}

/** Drives the clock until every running node planned `view` and nothing moves. */
async function quiet(cluster: Cluster, view: readonly Member[], limitMs?: number): Promise<void> {
  const fingerprint = viewFingerprint(view);
  const running = (): MovementNode[] => [...cluster.nodes.values()].filter((n) => n.running);
  await until(
    cluster.clock,
    () =>
      running().every((n) => {
        const s = n.movement.status();
        const inView = view.some((m) => m.id === n.id && m.state === 'alive');
        return (s.view === fingerprint || !inView) && s.state === 'idle';
      }),
    limitMs,
  );
}

/** Every record of `records` is on exactly its owners under `view`, at its version. */
function assertPlaced(t: ExecutionContext, cluster: Cluster, records: readonly StoredRecord[]): void {
  const any = [...cluster.nodes.values()].find((n) => n.running)!;
  for (const r of records) {
    const owners = any.placement.ownersOf(r.key).map((m) => m.id);
    for (const n of cluster.nodes.values()) {
      const held = n.disk.records.get(r.key);
      if (owners.includes(n.id)) {
        t.truthy(held, `${r.key} missing on its owner ${n.id}`);
        if (held) t.is(compareVersions(held.version, r.version), 0);
      } else {
        t.is(held, undefined, `${r.key} still on ${n.id}, which no longer owns it`);
      }
    }
  }
}

test('a joining node receives its ranges; old owners purge them only after the copy', async (t) => {
  const ids = ['a', 'b', 'c', 'd'];
  const before = ['a', 'b', 'c'].map((id) => member(id));
  const cluster = await movementCluster(t, { ids, members: before, replicas: 1, logger: consoleLogger() });
  const records = seed(cluster, 2000);
  await quiet(cluster, before);
  t.is(cluster.byId('d').disk.records.size, 0);

  // Copy before delete: when an old owner purges a key, the new owner must already hold it.
  let checked = 0;
  for (const id of ['a', 'b', 'c']) {
    cluster.byId(id).storage.onPurge = (key, upTo) => {
      const there = cluster.byId('d').disk.records.get(key);
      t.truthy(there, `${key} purged on ${id} before d held it`);
      if (there && upTo) t.true(compareVersions(there.version, upTo) >= 0);
      checked++;
    };
  }
  const after = [...before, member('d')];
  cluster.setView(after);
  const d = cluster.byId('d');
  await settle(cluster.clock, d.movement.settled());
  await quiet(cluster, after);

  assertPlaced(t, cluster, records);
  t.true(d.disk.records.size > 0);
  t.is(checked, d.disk.records.size);
  const status = d.movement.status();
  t.is(status.keys.received, d.disk.records.size);
  t.is(status.moves.incoming, 0);
  let copied = 0;
  for (const id of ['a', 'b', 'c']) copied += cluster.byId(id).movement.status().keys.copied;
  t.is(copied, d.disk.records.size);
  // Once nothing is pending, each plan file holds just the latest view (written in the background).
  await until(cluster.clock, () => [...cluster.nodes.values()].every((n) => savedViews(n) === 1));
  t.pass();
});

test('a leaving node hands its ranges to the remaining owners', async (t) => {
  const ids = ['a', 'b', 'c'];
  const all = ids.map((id) => member(id));
  const cluster = await movementCluster(t, { ids, replicas: 2 });
  const records = seed(cluster, 1000);
  await quiet(cluster, all);
  const after = [member('a'), member('b'), member('c', 'left')];
  cluster.setView(after);
  await quiet(cluster, after);
  assertPlaced(t, cluster, records);
  t.is(cluster.byId('c').disk.records.size, 0);
});

test('a write that lands on the old owner during the move is kept, then copied in a catch-up pass', async (t) => {
  const ids = ['a', 'b'];
  const cluster = await movementCluster(t, { ids, members: [member('a')], replicas: 1 });
  const records = seed(cluster, 300);
  const a = cluster.byId('a');
  const b = cluster.byId('b');
  await quiet(cluster, [member('a')]);
  const after = [member('a'), member('b')];
  const moving = records.filter((r) => ownerIn(cluster, r.key, after) === 'b');
  t.true(moving.length > 0);
  const target = moving[0]!;
  const newer = record(target.key, 'written during the move', 5000, 'a');
  let injected = false;
  b.storage.beforePutBatch = async (batch) => {
    if (injected || !batch.some((r) => r.key === target.key)) return;
    injected = true;
    // The old owner takes a newer write while its first copy travels.
    t.true(await a.storage.put(newer));
  };
  cluster.setView(after);
  await quiet(cluster, after);
  t.true(injected);
  t.true(a.storage.calls.purgeKept >= 1, 'the newer write was not purged');
  t.is(text(b.disk.records.get(target.key)?.value), 'written during the move');
  t.is(a.disk.records.get(target.key), undefined);
  assertPlaced(
    t,
    cluster,
    records.map((r) => (r.key === target.key ? newer : r)),
  );
});

function ownerIn(cluster: Cluster, key: string, view: readonly Member[]): string {
  return cluster.byId('a').placement.owners(bucketOfKey(key), view)[0]!.id;
}

test('records the new owner refuses (it has not seen the change yet) are kept and sent again', async (t) => {
  const ids = ['a', 'b'];
  const cluster = await movementCluster(t, { ids, members: [member('a')], replicas: 1 });
  const records = seed(cluster, 500);
  const a = cluster.byId('a');
  const b = cluster.byId('b');
  await quiet(cluster, [member('a')]);
  const after = [member('a'), member('b')];
  // Only the old owner learns of the change: the new one refuses every record.
  b.placement.refuse = () => true;
  cluster.setView(after);
  await until(cluster.clock, () => b.storage.calls.putBatch === 0 && a.movement.status().moves.outgoing > 0);
  await cluster.clock.advanceAsync(3000);
  t.is(b.disk.records.size, 0);
  t.is(a.disk.records.size, records.length, 'nothing purged while refused');
  t.is(a.movement.status().state, 'moving');
  t.true(b.movement.status().moves.incoming > 0, 'b waits for its ranges');
  b.placement.refuse = undefined;
  await quiet(cluster, after);
  assertPlaced(t, cluster, records);
});

test('a move resumes after the old owner crashes mid-way', async (t) => {
  const ids = ['a', 'b'];
  const cluster = await movementCluster(t, {
    ids,
    members: [member('a')],
    replicas: 1,
    kv: { batchSize: 50, rebalanceMaxKeysPerSecond: 500 },
  });
  const records = seed(cluster, 2000);
  const a = cluster.byId('a');
  const b = cluster.byId('b');
  await quiet(cluster, [member('a')]);
  const after = [member('a'), member('b')];
  cluster.setView(after);
  await until(cluster.clock, () => b.disk.records.size >= 200);
  t.true(savedViews(a) > 1, 'the old owner persisted its plan');
  t.true(savedViews(b) > 1, 'the new owner persisted its plan');
  await cluster.crash('a');
  const copiedBefore = b.disk.records.size;
  t.true(b.movement.status().moves.incoming > 0);
  const restarted = await cluster.restart('a');
  // Resumed from the persisted plan at start, before any membership event.
  t.true(restarted.movement.status().moves.outgoing > 0);
  await quiet(cluster, after);
  t.true(b.disk.records.size > copiedBefore);
  assertPlaced(t, cluster, records);
  await until(cluster.clock, () => savedViews(a) === 1);
});

test('a new owner that crashes mid-move reads through the old owner again after restart', async (t) => {
  const ids = ['a', 'b'];
  const cluster = await movementCluster(t, {
    ids,
    members: [member('a')],
    replicas: 1,
    kv: { batchSize: 50, rebalanceMaxKeysPerSecond: 500 },
  });
  const records = seed(cluster, 2000);
  const b = cluster.byId('b');
  await quiet(cluster, [member('a')]);
  const after = [member('a'), member('b')];
  cluster.setView(after);
  await until(cluster.clock, () => b.disk.records.size >= 100);
  const movingKey = records.find((r) => ownerIn(cluster, r.key, after) === 'b' && !b.disk.records.has(r.key))!;
  t.truthy(movingKey);
  t.deepEqual(
    b.movement.readThrough(movingKey.key)?.map((m) => m.id),
    ['a'],
  );
  await cluster.crash('b');
  const restarted = await cluster.restart('b');
  // Re-marked from the persisted plan at once, before any membership event.
  t.deepEqual(
    restarted.movement.readThrough(movingKey.key)?.map((m) => m.id),
    ['a'],
  );
  await settle(cluster.clock, restarted.movement.settled());
  await quiet(cluster, after);
  t.is(restarted.movement.readThrough(movingKey.key), undefined);
  assertPlaced(t, cluster, records);
});

test('a view change right after start is pending at once, not after the debounce window', async (t) => {
  const cluster = await movementCluster(t, { ids: ['a', 'b'], members: [member('a')], replicas: 1 });
  const records = seed(cluster, 200);
  const after = [member('a'), member('b')];
  const mine = records.find((r) => ownerIn(cluster, r.key, after) === 'b')!;
  cluster.setView(after);
  t.deepEqual(
    cluster
      .byId('b')
      .movement.readThrough(mine.key)
      ?.map((m) => m.id),
    ['a'],
  );
});

test('readThrough names the old owners only for keys of a pending range', async (t) => {
  const ids = ['a', 'b'];
  const cluster = await movementCluster(t, {
    ids,
    members: [member('a')],
    replicas: 1,
    kv: { batchSize: 10, rebalanceMaxKeysPerSecond: 100 },
  });
  const records = seed(cluster, 500);
  const b = cluster.byId('b');
  await quiet(cluster, [member('a')]);
  const after = [member('a'), member('b')];
  const mine = records.find((r) => ownerIn(cluster, r.key, after) === 'b')!;
  const theirs = records.find((r) => ownerIn(cluster, r.key, after) === 'a')!;
  t.is(b.movement.readThrough(mine.key), undefined);
  cluster.setView(after);
  // In the same tick as the view change: no read can reach b's storage before the range is pending.
  t.true(b.movement.status().moves.incoming > 0);
  let settled = false;
  void b.movement.settled().then(() => (settled = true));
  t.deepEqual(
    b.movement.readThrough(mine.key)?.map((m) => m.id),
    ['a'],
  );
  t.is(b.movement.readThrough(theirs.key), undefined);
  t.false(settled);
  await settle(cluster.clock, b.movement.settled());
  t.is(b.movement.readThrough(mine.key), undefined);
});

test('every event that changes the view is planned at once; the plans cover the final view', async (t) => {
  const ids = ['a', 'b', 'c'];
  const cluster = await movementCluster(t, { ids, members: [member('a')], replicas: 1, kv: { moveDebounceMs: 100 } });
  const records = seed(cluster, 200);
  await quiet(cluster, [member('a')]);
  const a = cluster.byId('a');
  const planned: string[][] = [];
  const plan = a.placement.plan.bind(a.placement);
  a.placement.plan = (before, after) => {
    planned.push(after.map((m) => m.id));
    return plan(before, after);
  };
  const all = [member('a'), member('b'), member('c')];
  cluster.setView([member('a'), member('b')]);
  await cluster.clock.advanceAsync(20);
  cluster.setView(all);
  await quiet(cluster, all);
  t.true(planned.length > 0);
  t.deepEqual(new Set(planned.map((ids) => ids.join())), new Set(['a,b', 'a,b,c']));
  assertPlaced(t, cluster, records);
});

test('a dead old owner is no longer waited for', async (t) => {
  const ids = ['a', 'b'];
  const cluster = await movementCluster(t, {
    ids,
    members: [member('a')],
    replicas: 1,
    kv: { batchSize: 10, rebalanceMaxKeysPerSecond: 50 },
  });
  seed(cluster, 500);
  await quiet(cluster, [member('a')]);
  const b = cluster.byId('b');
  cluster.setView([member('a'), member('b')]);
  await until(cluster.clock, () => b.movement.status().moves.incoming > 0);
  await cluster.crash('a');
  b.membership.set([member('a', 'dead'), member('b')]);
  await settle(cluster.clock, b.movement.settled(), 1000);
  t.is(b.movement.status().moves.incoming, 0);
});

test('moves a routed placement announces are run the same way', async (t) => {
  const ids = ['a', 'b'];
  const all = ids.map((id) => member(id));
  const cluster = await movementCluster(t, { ids, replicas: 1 });
  const records = seed(cluster, 800);
  await quiet(cluster, all);
  const [a, b] = ids.map((id) => cluster.byId(id));
  const bucket = bucketOfKey(records.find((r) => a!.placement.ownersOf(r.key)[0]!.id === 'a')!.key);
  const moving = records.filter((r) => bucketOfKey(r.key) === bucket);
  const doneBefore = a!.movement.status().moves.done;
  for (const n of [a, b]) n!.placement.announce(bucket, ['a'], ['b']);
  t.true(b!.movement.readThrough(moving[0]!.key)?.some((m) => m.id === 'a'));
  await settle(cluster.clock, b!.movement.settled());
  await quiet(cluster, all);
  for (const r of moving) {
    t.truthy(b!.disk.records.get(r.key));
    t.is(a!.disk.records.get(r.key), undefined);
  }
  t.is(a!.movement.status().moves.done, doneBefore + 1);
});

for (const runSeed of [1, 2, 3, 4]) {
  test(`changes that arrive while data moves are planned from every unsettled view; nothing is lost (seed ${runSeed})`, async (t) => {
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const first = ['a', 'b', 'c'].map((id) => member(id));
    const cluster = await movementCluster(t, {
      ids,
      members: first,
      seed: runSeed,
      replicas: 2,
      kv: { batchSize: 50, rebalanceMaxKeysPerSecond: 2000 },
    });
    const records = seed(cluster, 3000);
    await quiet(cluster, first);
    const withD = [...first, member('d')];
    cluster.setView(withD, ['a', 'b', 'c', 'd']);
    await until(cluster.clock, () => cluster.byId('d').disk.records.size > 100);
    const withE = [...withD, member('e')];
    cluster.setView(withE);
    await until(cluster.clock, () => cluster.byId('e').disk.records.size > 100);
    const final = [member('a'), member('b'), member('c', 'left'), member('d'), member('e')];
    cluster.setView(final);
    await quiet(cluster, final);
    assertPlaced(t, cluster, records);
    t.is(cluster.byId('c').disk.records.size, 0);
  });
}
