import { createHash } from 'node:crypto';
import test from 'ava';
import { PlacementWorld, placementKeys, placementMemberIds, runPlacementConformance } from '@kvmesh/core';
import type { Placement } from '@kvmesh/core';
import { builtinPlugins, hashModPlacement, partitionOf } from '../../src/index.js';
import { placementFactory, placementOptions } from './options.js';

runPlacementConformance(test, {
  name: 'hash-mod',
  create: placementFactory('hash-mod'),
  bounds: { replicationFactor: 3, balance: { 10: 1.15, 100: 1.25 }, joinMoved: 1.1, leaveMoved: 1.3 },
});

async function started(world: PlacementWorld, id: string, options: Record<string, unknown> = {}): Promise<Placement> {
  const placement = await placementFactory(
    'hash-mod',
    options,
  )({
    node: world.node(id),
    membership: world.membership(id),
    rpc: world.rpc(id),
    clock: undefined as never,
    random: undefined as never,
    logger: undefined as never,
  });
  await placement.start?.();
  return placement;
}

test('the manifest is registered; defaults follow Velour Fog: 16^3 partitions, K = 3, set to all, get from one', (t) => {
  t.true(builtinPlugins.includes(hashModPlacement));
  t.deepEqual([...hashModPlacement.needs], ['membership', 'logger']);
  const properties = hashModPlacement.optionsSchema['properties'] as Record<string, Record<string, unknown>>;
  for (const [name, schema] of Object.entries(properties)) {
    t.true(typeof schema['description'] === 'string' && schema['default'] !== undefined, name);
  }
  t.deepEqual(placementOptions('hash-mod'), {
    digits: 3,
    replicas: 3,
    fallbacks: 0,
    writeQuorum: 'all',
    readQuorum: 1,
    dataRoles: ['storage'],
  });
});

test("a key's partition is the leading hex digits of its SHA-1", (t) => {
  for (const key of ['', 'a', 'sampleKey', 'ключ', '🔑']) {
    const hex = createHash('sha1').update(key, 'utf8').digest('hex');
    for (const digits of [1, 2, 3, 4]) t.is(partitionOf(key, digits), parseInt(hex.slice(0, digits), 16), key);
  }
});

test('frontends and a controller hold no partition; a key lives on K storage members with W = K, R = 1', async (t) => {
  const world = PlacementWorld.of(['s1', 's2', 's3', 's4']);
  world.add('fe1', { role: 'frontend' });
  world.add('ctl', { role: 'controller' });
  const frontend = await started(world, 'fe1');
  t.teardown(() => frontend.stop?.());
  for (const key of placementKeys(500)) {
    const set = await frontend.locate(key, { intent: 'write' });
    t.is(set.replicas.length, 3);
    t.true(set.replicas.every((m) => m.id.startsWith('s')));
    t.is(set.writeQuorum, 3);
    t.is(set.readQuorum, 1);
    t.deepEqual(set.fallbacks, []);
    t.like(frontend.admit(key, 'read', set.epoch), { kind: 'not-owner' });
  }
  const d = frontend.describe();
  t.like(d, { strategy: 'hash-mod', partitions: 4096, digits: 3, replicas: 3 });
  const load = d['partitionsPerMember'] as { id: string; replica: number }[];
  t.deepEqual(
    load.map((l) => l.id),
    ['s1', 's2', 's3', 's4'],
  );
  t.is(
    load.reduce((n, l) => n + l.replica, 0),
    4096 * 3,
  );
});

test('a join moves only the partitions the newcomer takes, and a plan names them', async (t) => {
  const world = PlacementWorld.of(placementMemberIds(6));
  const placement = await started(world, 'm001', { digits: 2, replicas: 2 });
  t.teardown(() => placement.stop?.());
  const before = world.members();
  world.add('m007');
  const moves = placement.plan(before, world.members());
  t.true(moves.length > 0);
  for (const move of moves) {
    t.true(move.to.includes('m007'), `${move.range} goes to the newcomer`);
    t.is(move.from.filter((id) => !move.to.includes(id)).length, 1, 'one old holder gives way');
    t.regex(move.range, /^partitions? [0-9a-f]{2}/);
  }
});

test('fallbacks are the next-ranked members when asked for', async (t) => {
  const world = PlacementWorld.of(placementMemberIds(6));
  const placement = await started(world, 'm001', { replicas: 2, fallbacks: 2, writeQuorum: 'majority' });
  t.teardown(() => placement.stop?.());
  const set = await placement.locate('k', { intent: 'write' });
  t.is(set.replicas.length, 2);
  t.is(set.fallbacks.length, 2);
  t.is(set.writeQuorum, 2);
});
