import test from 'ava';
import {
  PluginRegistry,
  SeededRandom,
  SimNetwork,
  TOKENS,
  VirtualClock,
  createNode,
  definePlugin,
  editorConfigSchema,
  facadeComponentName,
  isKvError,
  nodeFacades,
  validateConfig,
} from '../src/index.js';
import type {
  AnyPluginManifest,
  Cluster,
  Facade,
  KvError,
  Member,
  Membership,
  MembershipBounds,
} from '../src/index.js';
import { fakeStorage, stubPlugin } from './helpers/fake-plugins.js';
import type { Journal } from './helpers/fake-plugins.js';
import { testCodec } from './helpers/test-codec.js';

const network = new SimNetwork({ clock: new VirtualClock(), random: new SeededRandom(7) });
let endpoints = 0;
const transport = () => network.endpoint(`facade-${++endpoints}`);

/** A facade that records what it was given and when it started. */
function recordingFacade(name: string, journal: Journal, port?: number): AnyPluginManifest {
  return definePlugin({
    family: 'facade',
    name,
    description: `Recording facade ${name}.`,
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        prefix: { type: 'string', default: `/${name}`, description: 'Path prefix.' },
        port: { type: 'integer', minimum: 0, maximum: 65535, description: 'Own port.' },
      },
    },
    needs: ['cluster', 'node', 'storage'],
    create:
      (options: { prefix: string; port?: number }) =>
      ({ cluster, node }): Facade => {
        journal.push(`build ${name} ${options.prefix} for ${node.id} (administered: ${cluster.administered})`);
        return {
          ...(port !== undefined || options.port !== undefined ? { port: options.port ?? port } : {}),
          routes: () => async (_ctx, next) => next(),
          start: () => void journal.push(`start ${name}`),
          stop: () => void journal.push(`stop ${name}`),
        };
      },
  });
}

function registryWith(journal: Journal, ...extra: AnyPluginManifest[]): PluginRegistry {
  return new PluginRegistry([
    fakeStorage(journal),
    testCodec(),
    stubPlugin('transport', 'http'),
    recordingFacade('alpha', journal),
    recordingFacade('beta', journal),
    ...extra,
  ]);
}

const base = { node: { id: 'n1', address: '127.0.0.1:4000' }, storage: { name: 'fake-store' } };

function problemsOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    if (isKvError(err)) return (err.details?.['problems'] as { path: string; message: string }[]) ?? [];
    throw err;
  }
  throw new Error('expected a config error');
}

test('a config without facades has an empty facades list', (t) => {
  const config = validateConfig(base, registryWith([]));
  t.deepEqual(config.facades, []);
});

test('facade entries get their options validated and defaulted by the plugin schema', (t) => {
  const config = validateConfig(
    { ...base, facades: [{ name: 'beta', options: { port: 8000 } }, { name: 'alpha' }] },
    registryWith([]),
  );
  t.deepEqual(config.facades, [
    { name: 'beta', options: { prefix: '/beta', port: 8000 } },
    { name: 'alpha', options: { prefix: '/alpha' } },
  ]);
  t.true(Object.isFrozen(config.facades[0]!.options));
});

test('facade problems are reported all at once with their JSON paths', (t) => {
  const problems = problemsOf(() =>
    validateConfig(
      {
        ...base,
        facades: [
          { name: 'alpha', options: { port: 'eight thousand' } },
          { name: 'gamma' },
          { name: 'alpha' },
          { options: {} },
          { name: 'beta', extra: true, options: { prefx: '/b' } },
        ],
      },
      registryWith([]),
    ),
  );
  t.deepEqual(
    problems.map((p) => `${p.path}: ${p.message}`).sort(),
    [
      '/facades/0/options/port: must be integer (found "eight thousand")',
      "/facades/1/name: unknown facade plugin 'gamma'; available: alpha, beta",
      "/facades/2/name: facade 'alpha' is already listed at /facades/0; a node mounts each facade once",
      '/facades/3/name: is required',
      '/facades/4/extra: unknown key',
      '/facades/4/options/prefx: unknown key',
    ].sort(),
  );
});

test('facades is an array of entries', (t) => {
  const problems = problemsOf(() => validateConfig({ ...base, facades: { name: 'alpha' } }, registryWith([])));
  t.deepEqual(
    problems.map((p) => p.path),
    ['/facades'],
  );
});

test('the kernel builds each facade after what it needs, in config order, and starts and stops it with the node', async (t) => {
  const journal: Journal = [];
  const registry = registryWith(journal);
  const config = validateConfig(
    { ...base, facades: [{ name: 'beta' }, { name: 'alpha', options: { port: 0 } }] },
    registry,
  );
  const node = await createNode({ config, registry, provide: { transport: transport() } });
  const order = node.components;
  t.true(order.indexOf('cluster') < order.indexOf(facadeComponentName('beta')));
  t.true(order.indexOf('storage') < order.indexOf(facadeComponentName('beta')));
  t.true(order.indexOf(facadeComponentName('beta')) < order.indexOf(facadeComponentName('alpha')));
  const facades = nodeFacades(node, config);
  t.deepEqual(
    facades.map((f) => f.name),
    ['beta', 'alpha'],
  );
  t.is(facades[0]!.facade.port, undefined);
  t.is(facades[1]!.facade.port, 0);
  t.is(node.get<Facade>(facadeComponentName('alpha')), facades[1]!.facade);
  await node.start();
  await node.stop();
  t.deepEqual(
    journal.filter((line) => !line.includes('fake-store')),
    [
      'build beta /beta for n1 (administered: false)',
      'build alpha /alpha for n1 (administered: false)',
      'start beta',
      'start alpha',
      'stop alpha',
      'stop beta',
    ],
  );
});

test('a facade that needs a component the node lacks names it', async (t) => {
  const journal: Journal = [];
  const needy = definePlugin({
    ...recordingFacade('needy', journal),
    needs: ['kv'],
  });
  const registry = registryWith(journal, needy);
  const config = validateConfig({ ...base, facades: [{ name: 'needy' }] }, registry);
  const err = await t.throwsAsync<KvError>(createNode({ config, registry, provide: { transport: transport() } }));
  t.is(err.code, 'KVMESH_ERR_KERNEL_DEPENDENCY');
  t.regex(err.message, /facade 'needy' needs 'kv'/);
});

test('the editor schema offers every facade name and checks each entry against its own options', (t) => {
  const schema = editorConfigSchema(registryWith([])) as {
    properties: { facades: { items: { properties: { name: { enum: string[] } }; allOf: unknown[] } } };
  };
  const items = schema.properties.facades.items;
  t.deepEqual(items.properties.name.enum, ['alpha', 'beta']);
  t.is(items.allOf.length, 2);
});

// The cluster component every node has.

function fakeMembership(views: string[][]): Membership {
  const self: Member = { id: 'n1', address: 'sim://n1', state: 'alive', incarnation: 0, meta: {} };
  const peer: Member = { id: 'n2', address: 'sim://n2', state: 'suspect', incarnation: 3, meta: {} };
  return {
    name: 'administered',
    self,
    members: () => [self, peer],
    on: () => () => undefined,
    join: async () => undefined,
    leave: async () => undefined,
    bounds: { detectionMs: 1, toleratedLoss: 0, periodMs: 1, healMs: 1 } satisfies MembershipBounds,
    setView: async (view) => void views.push([...view]),
  };
}

test('the cluster view of a node without membership is the node itself', async (t) => {
  const registry = registryWith([]);
  const config = validateConfig(base, registry);
  const endpoint = transport();
  const node = await createNode({ config, registry, provide: { transport: endpoint } });
  const cluster = node.get<Cluster>(TOKENS.cluster);
  t.deepEqual(cluster.view(), {
    self: { id: 'n1', address: '127.0.0.1:4000' },
    members: [{ id: 'n1', address: endpoint.address, state: 'alive', incarnation: 0, role: 'storage' }],
    placement: {},
  });
  t.false(cluster.administered);
  await node.start();
  t.teardown(() => node.stop());
  const err = await t.throwsAsync<KvError>(cluster.setView(['127.0.0.1:4000']));
  t.is(err.code, 'KVMESH_ERR_MEMBERSHIP_VIEW_UNSUPPORTED');
});

test('the cluster component reports the members and hands view changes to an administered membership, only while running', async (t) => {
  const registry = registryWith([], stubPlugin('membership', 'administered'));
  const config = validateConfig({ ...base, membership: { name: 'administered' } }, registry);
  const views: string[][] = [];
  const node = await createNode({
    config,
    registry,
    provide: { transport: transport(), membership: fakeMembership(views) },
  });
  const cluster = node.get<Cluster>('cluster');
  t.true(cluster.administered);
  t.deepEqual(
    cluster.view().members.map((m) => `${m.id} ${m.state}`),
    ['n1 alive', 'n2 suspect'],
  );
  const early = await t.throwsAsync<KvError>(cluster.setView(['127.0.0.1:4000']));
  t.is(early.code, 'KVMESH_ERR_KERNEL_STATE');
  await node.start();
  await cluster.setView(['127.0.0.1:4000', '127.0.0.1:4001']);
  await node.stop();
  t.deepEqual(views, [['127.0.0.1:4000', '127.0.0.1:4001']]);
  const late = await t.throwsAsync<KvError>(cluster.setView(['127.0.0.1:4000']));
  t.is(late.code, 'KVMESH_ERR_KERNEL_STATE');
});
