import test from 'ava';
import { PlacementWorld, PluginRegistry, placementKeys, placementMemberIds, viewEpoch } from '@kvmesh/core';
import type { KvError, Placement } from '@kvmesh/core';
import { builtinPlugins, consistentHashPlacement, cutShards } from '../../src/index.js';
import { placementFactory, placementOptions } from './options.js';

async function started(world: PlacementWorld, id: string, options: Record<string, unknown>): Promise<Placement> {
  const placement = await placementFactory(
    'consistent-hash',
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

test('the manifest is a registered placement needing membership and logger, every option described with a default', (t) => {
  t.is(consistentHashPlacement.family, 'placement');
  t.true(builtinPlugins.includes(consistentHashPlacement));
  t.true(new PluginRegistry(builtinPlugins).has('placement', 'consistent-hash'));
  t.deepEqual([...consistentHashPlacement.needs], ['membership', 'logger']);
  const properties = consistentHashPlacement.optionsSchema['properties'] as Record<string, Record<string, unknown>>;
  for (const [name, schema] of Object.entries(properties)) {
    t.true(typeof schema['description'] === 'string' && schema['default'] !== undefined, name);
  }
  t.deepEqual(placementOptions('consistent-hash'), {
    mode: 'ring',
    replicationFactor: 3,
    virtualNodes: 128,
    fallbacks: 3,
    writeQuorum: 'majority',
    readQuorum: 'majority',
    hash: 'xxhash32',
    dataRoles: ['storage'],
  });
});

test('cutShards: consecutive groups of the factor, the remainder joining the last shards', (t) => {
  t.deepEqual(cutShards(0, 2), []);
  t.deepEqual(cutShards(1, 2), [[0]]);
  t.deepEqual(cutShards(4, 2), [
    [0, 1],
    [2, 3],
  ]);
  t.deepEqual(cutShards(5, 2), [
    [0, 1],
    [2, 3, 4],
  ]);
  t.deepEqual(cutShards(8, 3), [
    [0, 1, 2, 7],
    [3, 4, 5, 6],
  ]);
  t.deepEqual(cutShards(5, 3), [[0, 1, 2, 3, 4]]);
});

test('ring: dht-node defaults give 3 replicas, W = R = 2 and the next distinct members as fallbacks', async (t) => {
  const world = PlacementWorld.of(placementMemberIds(5));
  const placement = await started(world, 'm001', {});
  t.teardown(() => placement.stop?.());
  for (const key of placementKeys(500)) {
    const set = await placement.locate(key, { intent: 'write' });
    t.is(set.replicas.length, 3);
    t.is(set.fallbacks.length, 2, 'five members leave two fallbacks');
    t.is(set.writeQuorum, 2);
    t.is(set.readQuorum, 2);
  }
  world.setState('m002', 'left');
  world.setState('m003', 'left');
  world.setState('m004', 'left');
  const small = await placement.locate('k', { intent: 'write' });
  t.is(small.replicas.length, 2, 'two members left: both are replicas');
  t.is(small.writeQuorum, 2);
  t.deepEqual(small.fallbacks, []);
});

test('ring: keys of one ring point share one frozen replica set, rebuilt when a state changes', async (t) => {
  const world = PlacementWorld.of(placementMemberIds(4));
  const placement = await started(world, 'm001', {});
  t.teardown(() => placement.stop?.());
  const first = await placement.locate('alpha', { intent: 'read' });
  t.is(await placement.locate('alpha', { intent: 'read' }), first, 'the same object: no allocation per lookup');
  t.true(Object.isFrozen(first) && Object.isFrozen(first.replicas));
  const victim = first.replicas[1]!.id;
  world.setState(victim, 'dead');
  const after = await placement.locate('alpha', { intent: 'read' });
  t.not(after, first);
  t.deepEqual(
    after.replicas.map((m) => m.id),
    first.replicas.map((m) => m.id),
  );
  t.is(after.replicas[1]!.state, 'dead');
  t.is(after.epoch, first.epoch, 'a state change is not a new epoch');
});

test('ring: describe reports the ring, the quorums and each member primary share', async (t) => {
  const world = PlacementWorld.of(placementMemberIds(3));
  const placement = await started(world, 'm001', { virtualNodes: 16 });
  t.teardown(() => placement.stop?.());
  const d = placement.describe();
  t.like(d, { strategy: 'consistent-hash', mode: 'ring', points: 48, replicationFactor: 3, writeQuorum: 'majority' });
  const ring = d['ring'] as { id: string; primaryShare: number }[];
  t.deepEqual(
    ring.map((r) => r.id),
    ['m001', 'm002', 'm003'],
  );
  t.true(Math.abs(ring.reduce((n, r) => n + r.primaryShare, 0) - 1) < 0.001);
});

test('shards: 4 members with factor 2 make 2 shards of 2; a key lives on its whole shard, with no fallback', async (t) => {
  const world = PlacementWorld.of(['10.10.0.4:13800', '10.10.0.5:13800', '10.10.0.6:13800', '10.10.0.7:13800']);
  const options = { mode: 'shards', replicationFactor: 2, writeQuorum: 'all', readQuorum: 1 };
  const placement = await started(world, '10.10.0.4:13800', options);
  t.teardown(() => placement.stop?.());
  const shards = placement.describe()['shards'] as { id: string; members: string[] }[];
  t.deepEqual(
    shards.map((s) => s.members),
    [
      ['10.10.0.4:13800', '10.10.0.5:13800'],
      ['10.10.0.6:13800', '10.10.0.7:13800'],
    ],
  );
  const primaries = new Set<string>();
  const seen = new Set<string>();
  for (const key of placementKeys(1_000)) {
    const set = await placement.locate(key, { intent: 'write' });
    const ids = set.replicas.map((m) => m.id).sort();
    t.true(
      shards.some((s) => s.members.join() === ids.join()),
      `${key}: replicas are one shard`,
    );
    t.deepEqual(set.fallbacks, []);
    t.is(set.writeQuorum, 2);
    t.is(set.readQuorum, 1);
    primaries.add(set.replicas[0]!.id);
    seen.add(ids.join());
  }
  t.is(seen.size, 2, 'both shards get keys');
  t.is(primaries.size, 4, 'primaries rotate within each shard');
});

test('shards: a fifth member joins the last shard, a sixth makes a third shard', async (t) => {
  const ids = placementMemberIds(6);
  const world = PlacementWorld.of(ids.slice(0, 5));
  const placement = await started(world, 'm001', { mode: 'shards', replicationFactor: 2 });
  t.teardown(() => placement.stop?.());
  const members = (): string[][] => (placement.describe()['shards'] as { members: string[] }[]).map((s) => s.members);
  t.deepEqual(members(), [
    ['m001', 'm002'],
    ['m003', 'm004', 'm005'],
  ]);
  const epoch = placement.epoch;
  world.add('m006');
  t.deepEqual(members(), [
    ['m001', 'm002'],
    ['m003', 'm004'],
    ['m005', 'm006'],
  ]);
  t.is(placement.epoch, viewEpoch(['m001', 'm002', 'm003', 'm004', 'm005', 'm006']));
  t.not(placement.epoch, epoch);
});

test('a quorum above the replication factor is a config error', async (t) => {
  const world = PlacementWorld.of(['m001']);
  const err = await t.throwsAsync<KvError>(started(world, 'm001', { replicationFactor: 2, writeQuorum: 3 }));
  t.is(err.code, 'KVMESH_ERR_CONFIG_INVALID');
  t.regex(err.message, /writeQuorum 3 exceeds the 2 replicas/);
});

test('sha1, md5 and xxhash32 place keys differently but each deterministically', async (t) => {
  const world = PlacementWorld.of(placementMemberIds(8));
  const answers: string[][] = [];
  for (const hash of ['xxhash32', 'sha1', 'md5']) {
    const a = await started(world, 'm001', { hash });
    const b = await started(world, 'm002', { hash });
    const ids: string[] = [];
    for (const key of placementKeys(200)) {
      const x = (await a.locate(key, { intent: 'read' })).replicas.map((m) => m.id).join();
      t.is((await b.locate(key, { intent: 'read' })).replicas.map((m) => m.id).join(), x);
      ids.push(x);
    }
    answers.push(ids);
    await a.stop?.();
    await b.stop?.();
  }
  t.notDeepEqual(answers[0], answers[1]);
  t.notDeepEqual(answers[1], answers[2]);
});
