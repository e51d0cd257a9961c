import test from 'ava';
import { PlacementWorld, placementKeys } from '@kvmesh/core';
import type { Placement, RoutingTable } from '@kvmesh/core';
import { loadHash, mix32 } from '../../src/placement/support/hash.js';
import { placementFactory } from './options.js';

/** A key's replica ids as a client computes them from the table alone. */
async function replicasFrom(table: RoutingTable, key: string): Promise<readonly string[]> {
  const position = (await loadHash(table.hash))(key);
  let lo = 0;
  let hi = table.ends.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (table.ends[mid]! < position) lo = mid + 1;
    else hi = mid;
  }
  const set = table.replicaSets[table.sets[lo === table.ends.length ? 0 : lo]!]!;
  if (table.order === 'listed') return set;
  const rotation = mix32(position) % set.length;
  return [...set.slice(rotation), ...set.slice(0, rotation)];
}

async function started(world: PlacementWorld, name: string, options: Record<string, unknown>): Promise<Placement> {
  const placement = await placementFactory(
    name,
    options,
  )({
    node: world.node('m1'),
    membership: world.membership('m1'),
    rpc: world.rpc('m1'),
    clock: undefined as never,
    random: undefined as never,
    logger: undefined as never,
  });
  await placement.start?.();
  return placement;
}

const LAYOUTS: readonly [string, string, Record<string, unknown>][] = [
  ['consistent-hash ring', 'consistent-hash', { mode: 'ring', replicationFactor: 3 }],
  ['consistent-hash ring, sha1', 'consistent-hash', { mode: 'ring', replicationFactor: 2, hash: 'sha1' }],
  ['consistent-hash shards', 'consistent-hash', { mode: 'shards', replicationFactor: 2 }],
  ['hash-mod', 'hash-mod', { digits: 2, replicas: 2 }],
];

for (const [title, name, options] of LAYOUTS) {
  test(`${title}: the routing table gives every key the replicas locate gives, in order, and follows a view change`, async (t) => {
    const world = PlacementWorld.of(['m1', 'm2', 'm3', 'm4', 'm5']);
    const placement = await started(world, name, options);
    t.teardown(() => placement.stop?.());
    const keys = placementKeys(2_000);
    const check = async (): Promise<RoutingTable> => {
      const table = placement.routes!()!;
      t.is(table.epoch, placement.epoch);
      t.is(table.ends.length, table.sets.length);
      for (let i = 1; i < table.ends.length; i++) t.true(table.ends[i]! >= table.ends[i - 1]!);
      for (const key of keys) {
        const { replicas } = await placement.locate(key, { intent: 'write' });
        t.deepEqual(
          await replicasFrom(table, key),
          replicas.map((m) => m.id),
          key,
        );
      }
      return table;
    };
    const before = await check();
    t.is(placement.routes!(), before, 'the table is built once per view');
    world.forget('m4');
    world.add('m6');
    const after = await check();
    t.not(after.epoch, before.epoch);
    t.log(`${title}: ${before.ends.length} ranges, ${before.replicaSets.length} replica lists`);
  });
}

test('a placement without a table to state answers none', async (t) => {
  const world = PlacementWorld.of(['m1']);
  const placement = await started(world, 'single', {});
  t.teardown(() => placement.stop?.());
  t.is(placement.routes?.(), undefined);
});
