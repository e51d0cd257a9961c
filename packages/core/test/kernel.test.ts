import test from 'ava';
import {
  PluginRegistry,
  SeededRandom,
  SimNetwork,
  COMPONENT_STOP_TIMEOUT_MS,
  TOKENS,
  VirtualClock,
  createNode,
  isKvError,
  validateConfig,
} from '../src/index.js';
import type { AnyPluginManifest, ComponentDefinition, KvError, Storage } from '../src/index.js';
import { fakePlacement, fakeStorage, stubPlugin } from './helpers/fake-plugins.js';
import type { Journal } from './helpers/fake-plugins.js';
import { testCodec } from './helpers/test-codec.js';

const network = new SimNetwork({ clock: new VirtualClock(), random: new SeededRandom(1) });
let endpoints = 0;
const loopbackTransport = (name: string) => network.endpoint(`${name}-${++endpoints}`);

const base = { node: { id: 'n1', address: '127.0.0.1:4000' }, storage: { name: 'fake-store' } };

function setup(journal: Journal, extra: AnyPluginManifest[] = [], raw: object = base) {
  const registry = new PluginRegistry([fakeStorage(journal), testCodec(), stubPlugin('transport', 'http'), ...extra]);
  const config = validateConfig(raw, registry);
  return { registry, config };
}

test('two nodes in one process get separate containers', async (t) => {
  const journal: Journal = [];
  const { registry, config } = setup(journal);
  const a = await createNode({ config, registry, provide: { transport: loopbackTransport('a') } });
  const b = await createNode({ config, registry, provide: { transport: loopbackTransport('b') } });
  t.not(a.get<Storage>(TOKENS.storage), b.get<Storage>(TOKENS.storage));
  t.is(a.get<Storage>(TOKENS.storage), a.get<Storage>('storage'));
  t.is(a.get<Storage>(TOKENS.storage).name, 'fake-store');
});

test('starts components after what they need and stops them in reverse', async (t) => {
  const journal: Journal = [];
  const { registry, config } = setup(journal, [fakePlacement(journal)], { ...base, placement: { name: 'fake-place' } });
  const node = await createNode({ config, registry, provide: { transport: loopbackTransport('a') } });
  t.true(node.components.indexOf('storage') < node.components.indexOf('placement'));
  await node.start();
  t.is(node.state, 'running');
  await node.stop();
  t.deepEqual(journal, ['start fake-store', 'start fake-place', 'stop fake-place', 'stop fake-store']);
});

test('stop is idempotent and concurrent stops resolve together', async (t) => {
  const journal: Journal = [];
  const { registry, config } = setup(journal);
  const node = await createNode({ config, registry, provide: { transport: loopbackTransport('a') } });
  await node.start();
  await Promise.all([node.stop(), node.stop()]);
  await node.stop();
  t.deepEqual(journal, ['start fake-store', 'stop fake-store']);
  const err = await t.throwsAsync<KvError>(node.start());
  t.is(err.code, 'KVMESH_ERR_KERNEL_STATE');
});

test('a failing start names the plugin and stops what already started', async (t) => {
  const journal: Journal = [];
  const { registry, config } = setup(journal, [fakePlacement(journal, 'start')], {
    ...base,
    placement: { name: 'fake-place' },
  });
  const node = await createNode({ config, registry, provide: { transport: loopbackTransport('a') } });
  const err = await t.throwsAsync<KvError>(node.start());
  t.is(err.message, "placement 'fake-place': ring is broken");
  t.is(err.code, 'KVMESH_ERR_PLUGIN_FAILED');
  t.deepEqual(journal, ['start fake-store', 'stop fake-store']);
  t.is(node.state, 'failed');
});

test('a failing factory is wrapped with family and name', async (t) => {
  const journal: Journal = [];
  const { registry, config } = setup(journal, [fakePlacement(journal, 'build')], {
    ...base,
    placement: { name: 'fake-place' },
  });
  const err = await t.throwsAsync<KvError>(
    createNode({ config, registry, provide: { transport: loopbackTransport('a') } }),
  );
  t.is(err.message, "placement 'fake-place': cannot build");
});

test('a component whose need nothing provides fails with the chain', async (t) => {
  const journal: Journal = [];
  const { registry, config } = setup(journal);
  const extra: ComponentDefinition = {
    name: 'kv',
    token: Symbol.for('@kvmesh/test-kv'),
    label: 'kv service',
    needs: ['storage', 'placement'],
    build: () => ({}),
  };
  const err = await t.throwsAsync<KvError>(
    createNode({ config, registry, provide: { transport: loopbackTransport('a') }, extras: [extra] }),
  );
  t.true(isKvError(err, 'KVMESH_ERR_KERNEL_DEPENDENCY'));
  t.regex(err.message, /kv service needs 'placement', which nothing provides/);
});

test('a component that does not stop within the stop timeout is given up on: the others stop, and the stop fails naming it', async (t) => {
  const journal: Journal = [];
  const { registry, config } = setup(journal, [fakePlacement(journal)], { ...base, placement: { name: 'fake-place' } });
  const stuck: ComponentDefinition = {
    name: 'stuck',
    token: Symbol.for('@kvmesh/test-stuck'),
    label: 'stuck service',
    needs: ['storage'],
    build: () => ({ start: async () => undefined, stop: () => new Promise<void>(() => undefined) }),
  };
  const node = await createNode({
    config,
    registry,
    provide: { transport: loopbackTransport('a') },
    extras: [stuck],
    componentStopTimeoutMs: 100,
  });
  await node.start();
  const started = performance.now();
  const err = await t.throwsAsync<KvError>(node.stop());
  const tookMs = performance.now() - started;
  t.log(`given up on after ${Math.round(tookMs)} ms (timeout 100 ms)`);
  t.regex(err.message, /stuck service: did not stop within 100 ms/);
  t.true(journal.includes('stop fake-store'), 'the components after it stopped');
  t.is(node.state, 'stopped');
  t.true(COMPONENT_STOP_TIMEOUT_MS >= 1000, 'the default leaves a slow stop time');
});

test('plugins receive validated options and only the components they declared', async (t) => {
  let seen: string[] = [];
  const probe: AnyPluginManifest = {
    ...fakePlacement([]),
    create: () => (components) => {
      seen = Object.keys(components).sort();
      return {
        name: 'probe',
        epoch: 1,
        locate: async () => ({
          replicas: [],
          fallbacks: [],
          writeQuorum: 1,
          conditionalWriteQuorum: 1,
          readQuorum: 1,
          epoch: 1,
          hops: 0,
        }),
        admit: () => ({ kind: 'own' as const }),
        plan: () => [],
        describe: () => ({}),
      };
    },
  };
  const { registry, config } = setup([], [probe], { ...base, placement: { name: 'fake-place' } });
  await createNode({ config, registry, provide: { transport: loopbackTransport('a') } });
  t.deepEqual(seen, ['clock', 'storage']);
  const node = await createNode({ config, registry, provide: { transport: loopbackTransport('b') } });
  t.deepEqual(node.get<{ options: unknown }>('storage').options, { capacity: 10, label: 'main' });
});
