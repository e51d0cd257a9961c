import test from 'ava';
import {
  PluginRegistry,
  SeededRandom,
  SimNetwork,
  VirtualClock,
  PLACEMENT_CHECKS,
  createNode,
  kvConfigSchema,
  kvServiceDefinition,
  runPlacementConformance,
  validateConfig,
} from '@kvmesh/core';
import type { KvService, Member, NodeInfo, Rpc, Storage } from '@kvmesh/core';
import { SinglePlacement, builtinPlugins, singlePlacement } from '../../src/index.js';

const node: NodeInfo = {
  id: 'solo',
  address: '127.0.0.1:4000',
  role: 'storage',
  dataDir: '/tmp/solo',
  configDir: '/tmp',
};

function fakeRpc(address: string): Rpc & { address: string } {
  return {
    address,
    request: () => Promise.reject(new Error('no peers')),
    send: () => undefined,
    handle: () => undefined,
    on: () => () => undefined,
  };
}

test('the manifest is a placement named single that needs node and rpc', (t) => {
  t.is(singlePlacement.family, 'placement');
  t.is(singlePlacement.name, 'single');
  t.deepEqual([...singlePlacement.needs], ['node', 'rpc']);
  t.true(builtinPlugins.includes(singlePlacement));
  t.true(new PluginRegistry(builtinPlugins).has('placement', 'single'));
});

test('every key is located on this node alone with W = R = 1, conditional writes too', async (t) => {
  const placement = singlePlacement.create({})({ node, rpc: fakeRpc('http://127.0.0.1:4000/rpc') }) as SinglePlacement;
  placement.start();
  const expected: Member = {
    id: 'solo',
    address: 'http://127.0.0.1:4000/rpc',
    state: 'alive',
    incarnation: 0,
    meta: { api: 'http://127.0.0.1:4000', role: 'storage' },
  };
  for (const key of ['a', 'another key', '😀', 'x'.repeat(1000)]) {
    const set = await placement.locate(key, { intent: 'read' });
    t.deepEqual(set, {
      replicas: [expected],
      fallbacks: [],
      writeQuorum: 1,
      conditionalWriteQuorum: 1,
      readQuorum: 1,
      epoch: 1,
      hops: 0,
    });
  }
  t.deepEqual(placement.self, expected);
});

test('the member carries the transport address as it is after the transport started', async (t) => {
  const rpc = fakeRpc('udp://127.0.0.1:0');
  const placement = new SinglePlacement({ node, rpc });
  rpc.address = 'udp://127.0.0.1:41234';
  placement.start();
  t.is((await placement.locate('k', { intent: 'write' })).replicas[0]?.address, 'udp://127.0.0.1:41234');
});

test('nothing ever moves, and describe names the owner', (t) => {
  const placement = new SinglePlacement({ node, rpc: fakeRpc('sim://solo') });
  const a: Member = { id: 'a', address: 'sim://a', state: 'alive', incarnation: 0, meta: {} };
  const b: Member = { ...a, id: 'b', address: 'sim://b' };
  t.deepEqual(placement.plan([a], [a, b]), []);
  t.deepEqual(placement.plan([a, b], []), []);
  t.like(placement.describe(), { strategy: 'single', owner: 'solo', drawing: { shape: 'groups' } });
});

test('a node with memory storage and single placement serves puts, gets and deletes', async (t) => {
  const registry = new PluginRegistry(builtinPlugins);
  const config = validateConfig(
    {
      node: { id: 'solo', address: '127.0.0.1:4000' },
      storage: { name: 'memory' },
      placement: { name: 'single' },
    },
    registry,
    { extensions: { kv: kvConfigSchema } },
  );
  const clock = new VirtualClock();
  const network = new SimNetwork({ clock, random: new SeededRandom(1) });
  const kvNode = await createNode({
    config,
    registry,
    provide: { clock, transport: network.endpoint('solo') },
    extras: [kvServiceDefinition()],
  });
  await kvNode.start();
  t.teardown(() => kvNode.stop());
  const kv = kvNode.get<KvService>('kv');
  const put = await kv.put('k', new TextEncoder().encode('v'), 'text/plain');
  t.true(put.created);
  t.is(put.version.node, 'solo');
  t.is(new TextDecoder().decode((await kv.get('k')).record?.value), 'v');
  t.is(await kvNode.get<Storage>('storage').count(), 1);
  t.true((await kv.delete('k')).existed);
  t.is((await kv.get('k')).record, undefined);
  t.is(await kvNode.get<Storage>('storage').count(), 0);
});

// Every node answers "here", whatever the members: only the checks that hold for a one-node placement apply.
runPlacementConformance(test, {
  name: 'single',
  create: (components) => singlePlacement.create({})(components),
  bounds: { replicationFactor: 1 },
  skip: PLACEMENT_CHECKS.filter((check) => check !== 'lifecycle'),
});
