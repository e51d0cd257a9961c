import { performance } from 'node:perf_hooks';
import test from 'ava';
import { BYTES_IN_FLIGHT, PAGES_IN_FLIGHT, Throttle, VirtualClock, isKvError } from '../../src/index.js';
import { fill, member, movementCluster, record, settle } from './helpers.js';

// The mover alone: every key of the test placement is owned by whoever the
// fake placement says; these tests make the targets own everything (replicas = 3 of 3).
const ids = ['a', 'b', 'c'];

test('copies every record, tombstones included, to every target, and purges only what all stored', async (t) => {
  const cluster = await movementCluster(t, { ids, replicas: 3, kv: { batchSize: 64 } });
  const [a, b, c] = ids.map((id) => cluster.byId(id));
  const records = fill(a!.disk, 1000, 1000);
  a!.disk.records.set('gone', record('gone', '', 1500, 'w', true));
  // c refuses a few keys: those must stay on a, the rest go.
  const refusedKeys = new Set(['k000010', 'k000500', 'k000999']);
  c!.placement.refuse = (key) => refusedKeys.has(key);
  const result = await settle(
    cluster.clock,
    a!.movement.mover.copy({
      filter: () => true,
      targets: [member('b'), member('c')],
      purge: true,
      purpose: 'PURPOSE_REBALANCE',
    }),
  );
  t.is(result.scanned, 1001);
  t.is(result.sent, 1001);
  t.deepEqual([...result.refused].sort(), [...refusedKeys].sort());
  t.is(result.purged, 1001 - refusedKeys.size);
  t.is(b!.disk.records.size, 1001);
  t.is(c!.disk.records.size, 1001 - refusedKeys.size);
  t.true(b!.disk.records.get('gone')!.tombstone);
  t.deepEqual([...a!.disk.records.keys()].sort(), [...refusedKeys].sort());
  t.is(records.length, 1000);
});

test('a page of large values travels in batches of at most limits.maxValueBytes, each a frame the transport carries', async (t) => {
  const maxValueBytes = 16_384;
  const cluster = await movementCluster(t, { ids, replicas: 3, kv: { batchSize: 64 }, limits: { maxValueBytes } });
  const [a, b] = ids.map((id) => cluster.byId(id));
  fill(a!.disk, 40, 1000, 5_000);
  const batches: number[] = [];
  b!.storage.beforePutBatch = (records) => void batches.push(records.reduce((n, r) => n + r.value.byteLength, 0));
  const result = await settle(
    cluster.clock,
    a!.movement.mover.copy({ filter: () => true, targets: [member('b')], purge: false, purpose: 'PURPOSE_REBALANCE' }),
  );
  t.log(`batches of ${batches.join(', ')} value bytes`);
  t.is(result.written + result.alreadyNewer, 40, 'every record reached b (some by its own rebalancing first)');
  t.is(b!.disk.records.size, 40);
  t.true(batches.length > 1, `one page of 40 records went as ${batches.length} batches`);
  t.true(
    batches.every((bytes) => bytes <= maxValueBytes),
    `every batch within ${maxValueBytes} bytes of values: ${batches.join(', ')}`,
  );
});

test('a copy keeps up to PAGES_IN_FLIGHT pages on their way at once, and one at a time once BYTES_IN_FLIGHT are', async (t) => {
  const cluster = await movementCluster(t, { ids, replicas: 3, kv: { batchSize: 50 } });
  const [a, b] = ids.map((id) => cluster.byId(id));
  // The nodes' own rebalancing of the first view is over before the records are there.
  await cluster.clock.advanceAsync(2000);
  fill(a!.disk, 1000, 1000);
  let held = 0;
  let most = 0;
  b!.storage.beforePutBatch = async () => {
    most = Math.max(most, ++held);
    await cluster.clock.sleep(20);
    held--;
  };
  const started = cluster.clock.now();
  const result = await settle(
    cluster.clock,
    a!.movement.mover.copy({ filter: () => true, targets: [member('b')], purge: true, purpose: 'PURPOSE_REBALANCE' }),
  );
  const tookMs = cluster.clock.now() - started;
  t.log(`20 pages of 50 records, each stored after 20 ms: ${most} at once at most, ${tookMs} ms in all (virtual)`);
  t.is(most, PAGES_IN_FLIGHT);
  t.true(tookMs < 20 * 20, 'pages overlap');
  t.is(result.purged, 1000);
  t.is(a!.disk.records.size, 0);
  t.is(b!.disk.records.size, 1000);

  // Pages of big values (20 of 1 MiB each): past BYTES_IN_FLIGHT, one page at a time.
  const maxValueBytes = 1024 * 1024;
  const large = await movementCluster(t, { ids, replicas: 3, kv: { batchSize: 20 }, limits: { maxValueBytes } });
  await large.clock.advanceAsync(2000);
  const [la, lb] = ids.map((id) => large.byId(id));
  fill(la!.disk, 60, 2000, maxValueBytes);
  held = 0;
  most = 0;
  lb!.storage.beforePutBatch = async () => {
    most = Math.max(most, ++held);
    await large.clock.sleep(20);
    held--;
  };
  const big = await settle(
    large.clock,
    la!.movement.mover.copy({ filter: () => true, targets: [member('b')], purge: true, purpose: 'PURPOSE_REBALANCE' }),
  );
  t.true(20 * maxValueBytes > BYTES_IN_FLIGHT);
  t.is(big.purged, 60);
  t.is(most, 1, 'pages of 20 MiB go one at a time');
});

test('a page that fails fails the copy once the pages on their way settled; only stored pages are purged', async (t) => {
  const cluster = await movementCluster(t, { ids, replicas: 3, kv: { batchSize: 50 } });
  const [a, b] = ids.map((id) => cluster.byId(id));
  // The nodes' own rebalancing of the first view is over before the records are there.
  await cluster.clock.advanceAsync(2000);
  fill(a!.disk, 1000, 1000);
  let batches = 0;
  b!.storage.beforePutBatch = async () => {
    const mine = ++batches;
    await cluster.clock.sleep(mine === 3 ? 5 : 20);
    if (mine === 3) throw new Error('disk full');
  };
  const err = await t.throwsAsync(
    settle(
      cluster.clock,
      a!.movement.mover.copy({ filter: () => true, targets: [member('b')], purge: true, purpose: 'PURPOSE_REBALANCE' }),
    ),
  );
  t.regex(err!.message, /disk full/);
  t.is(batches, PAGES_IN_FLIGHT, 'no page is sent after one failed');
  // The pages stored on b were purged from a; the failed one and the unsent ones stay on a: none is lost.
  t.is(b!.disk.records.size, (PAGES_IN_FLIGHT - 1) * 50);
  t.is(a!.disk.records.size, 1000 - (PAGES_IN_FLIGHT - 1) * 50);
  t.false([...a!.disk.records.keys()].some((key) => b!.disk.records.has(key)));
});

test('a page a target cannot take fails the copy and purges nothing of it', async (t) => {
  const cluster = await movementCluster(t, { ids, replicas: 3, kv: { batchSize: 100, batchTimeoutMs: 500 } });
  const [a, b] = ids.map((id) => cluster.byId(id));
  fill(a!.disk, 300, 1000);
  await cluster.crash('c');
  const err = await t.throwsAsync(
    settle(
      cluster.clock,
      a!.movement.mover.copy({
        filter: () => true,
        targets: [member('b'), member('c')],
        purge: true,
        purpose: 'PURPOSE_REBALANCE',
      }),
    ),
  );
  t.true(isKvError(err), String(err));
  t.is(a!.disk.records.size, 300, 'nothing purged');
  t.true(b!.disk.records.size <= 300);
});

test('a receiver without putBatch refuses batches with MOVEMENT_UNSUPPORTED', async (t) => {
  const cluster = await movementCluster(t, { ids, replicas: 3 });
  const [a, b] = ids.map((id) => cluster.byId(id));
  Object.defineProperty(b!.storage, 'putBatch', { value: undefined });
  const err = await t.throwsAsync(
    settle(cluster.clock, a!.movement.mover.send(member('b'), [record('k', 'v', 1)], 'PURPOSE_REBALANCE')),
  );
  t.true(isKvError(err, 'KVMESH_ERR_MOVEMENT_UNSUPPORTED'), String(err));
});

test('the throttle spaces pages out on the injected clock', async (t) => {
  const clock = new VirtualClock();
  const throttle = new Throttle(clock, 1000);
  const start = clock.now();
  const times: number[] = [];
  const run = (async () => {
    for (let i = 0; i < 5; i++) {
      await throttle.take(500);
      times.push(clock.now() - start);
    }
  })();
  await settle(clock, run);
  t.deepEqual(times, [0, 500, 1000, 1500, 2000]);
  t.is(await new Throttle(clock, 0).take(1_000_000), undefined);
});

test('a rebalancing copy respects rebalanceMaxKeysPerSecond', async (t) => {
  const cluster = await movementCluster(t, {
    ids: ['a', 'b'],
    members: [member('a')],
    replicas: 1,
    kv: { batchSize: 100, rebalanceMaxKeysPerSecond: 1000 },
  });
  const [a, b] = ['a', 'b'].map((id) => cluster.byId(id));
  fill(a!.disk, 4000, 1000);
  await cluster.clock.advanceAsync(100);
  const start = cluster.clock.now();
  cluster.setView([member('a'), member('b')]);
  await settle(cluster.clock, b!.movement.settled());
  const elapsed = cluster.clock.now() - start;
  const moved = b!.disk.records.size;
  t.true(moved > 500);
  // At most 1000 keys/s, with one page of slack.
  t.true(elapsed >= ((moved - 100) / 1000) * 1000, `${moved} keys in ${elapsed} ms`);
  t.log(`${moved} keys in ${elapsed} virtual ms at a 1000 keys/s limit`);
});

test('copies 100,000 records of 100 bytes (throughput logged)', async (t) => {
  const cluster = await movementCluster(t, { ids: ['a', 'b'], replicas: 2 });
  const [a, b] = ['a', 'b'].map((id) => cluster.byId(id));
  fill(a!.disk, 100_000, 1000, 100);
  const started = performance.now();
  const result = await settle(
    cluster.clock,
    a!.movement.mover.copy({ filter: () => true, targets: [member('b')], purge: true, purpose: 'PURPOSE_REBALANCE' }),
    3_600_000,
  );
  const seconds = (performance.now() - started) / 1000;
  t.is(result.written, 100_000);
  t.is(result.purged, 100_000);
  t.is(b!.disk.records.size, 100_000);
  t.is(a!.disk.records.size, 0);
  t.log(
    `copied and purged 100,000 records of 100 bytes in ${seconds.toFixed(2)} s: ${Math.round(100_000 / seconds)} keys/s`,
  );
});
