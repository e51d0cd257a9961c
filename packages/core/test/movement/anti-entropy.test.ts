import test from 'ava';
import { bucketOf, compareVersions } from '../../src/index.js';
import { member, movementCluster, record, settle, text, until } from './helpers.js';
import type { Disk } from './helpers.js';

const ids = ['a', 'b', 'c'];

function sameRecords(x: Disk, y: Disk): boolean {
  if (x.records.size !== y.records.size) return false;
  for (const [key, r] of x.records) {
    const other = y.records.get(key);
    if (other === undefined || compareVersions(other.version, r.version) !== 0) return false;
  }
  return true;
}

test('anti-entropy repairs a replica that missed writes, both ways, sending only differing buckets', async (t) => {
  const cluster = await movementCluster(t, { ids, replicas: 3, kv: { antiEntropyBuckets: 64 } });
  const [a, b, c] = ids.map((id) => cluster.byId(id));
  for (let i = 0; i < 2000; i++) {
    const r = record(`key-${i}`, `v${i}`, 1000);
    for (const n of [a, b, c]) n!.disk.records.set(r.key, r);
  }
  // c missed a put, an update and a delete; a missed one that only c took.
  c!.disk.records.delete('key-1');
  a!.disk.records.set('key-2', record('key-2', 'updated', 2000));
  a!.disk.records.set('key-3', record('key-3', '', 2000, 'w', true));
  c!.disk.records.set('only-on-c', record('only-on-c', 'c wrote it', 3000));

  const pass = await settle(cluster.clock, c!.movement.antiEntropyNow(member('a')));
  t.truthy(pass);
  t.is(pass!.peer, 'a');
  const buckets = new Set(['key-1', 'key-2', 'key-3', 'only-on-c'].map((k) => bucketOf(k, 64)));
  t.is(pass!.differing, buckets.size);
  // Only the differing buckets travel: about 2000 * buckets / 64 records, far from all of them.
  t.true(pass!.sent + pass!.received < 2000 * 0.5, `sent ${pass!.sent}, received ${pass!.received}`);
  t.is(pass!.written, 1, 'a stored the record only c had');
  t.is(pass!.receivedWritten, 3, 'c stored the put, update and delete it missed');
  t.true(sameRecords(a!.disk, c!.disk));
  t.true(c!.disk.records.get('key-3')!.tombstone);
  t.is(text(c!.disk.records.get('key-2')!.value), 'updated');
  t.is(c!.movement.status().antiEntropy.passes, 1);
  t.is(c!.movement.status().antiEntropy.repaired, 4);

  // A second pass finds nothing to do.
  const again = await settle(cluster.clock, c!.movement.antiEntropyNow(member('a')));
  t.is(again!.differing, 0);
});

test('only keys both nodes should hold are compared', async (t) => {
  // One replica per key: a and b share nothing, so nothing is sent.
  const cluster = await movementCluster(t, { ids: ['a', 'b'], replicas: 1 });
  const [a, b] = ['a', 'b'].map((id) => cluster.byId(id));
  for (let i = 0; i < 300; i++) {
    const r = record(`key-${i}`, `v${i}`, 1000);
    a!.disk.records.set(r.key, r);
  }
  const pass = await settle(cluster.clock, a!.movement.antiEntropyNow(member('b')));
  t.is(pass!.differing, 0);
  t.is(b!.disk.records.size, 0);
});

test('the periodic pass picks a random alive peer and converges every replica', async (t) => {
  const cluster = await movementCluster(t, { ids, replicas: 3, kv: { antiEntropyIntervalMs: 1000 } });
  const [a, b, c] = ids.map((id) => cluster.byId(id));
  for (let i = 0; i < 200; i++) {
    const r = record(`key-${i}`, `v${i}`, 1000);
    // Each node misses a third of the writes.
    for (const n of [a, b, c].filter((_, j) => j !== i % 3)) n!.disk.records.set(r.key, r);
  }
  const start = cluster.clock.now();
  await until(cluster.clock, () => sameRecords(a!.disk, b!.disk) && sameRecords(b!.disk, c!.disk), 60_000);
  t.is(a!.disk.records.size, 200);
  // Every record was missing on one node: 200 writes in all, each counted once by the pass (or the start-up hand-over) that made it.
  const total = (field: 'passes' | 'repaired'): number =>
    [a, b, c].reduce((n, x) => n + x!.movement.status().antiEntropy[field], 0);
  // A node that starts with records of its own hands them to its co-owners once; anti-entropy repairs the rest.
  const copied = (): number => [a, b, c].reduce((n, x) => n + x!.movement.status().keys.copied, 0);
  await until(cluster.clock, () => total('repaired') + copied() === 200);
  t.true(total('passes') >= 1);
  t.log(`converged after ${cluster.clock.now() - start} virtual ms, ${total('passes')} passes`);
});
