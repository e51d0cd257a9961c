import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { PluginRegistry, definePlugin, isKvError, loadConfig, manifestProblems, validateConfig } from '../src/index.js';
import type { AnyPluginManifest, ConfigDefault } from '../src/index.js';
import { fakeStorage, stubPlugin } from './helpers/fake-plugins.js';

/** A placement with options of its own, which the facade below fills. */
const ring = stubPlugin('placement', 'ring', {
  periodMs: { type: 'integer', minimum: 10, default: 1000, description: 'Maintenance period.' },
  shape: { enum: ['round', 'flat'], default: 'round', description: 'Shape.' },
});

/** A facade that takes another system's option names, as a seed's config file spells them. */
function legacyFacade(
  map?: (o: Record<string, any>, config: Record<string, any>) => ConfigDefault[],
): AnyPluginManifest {
  return definePlugin({
    family: 'facade',
    name: 'legacy',
    description: 'A facade with option names of its own.',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        node_name: { type: ['string', 'integer', 'null'], default: null, description: 'This node.' },
        port: { type: ['integer', 'null'], default: null, description: 'Port of node.address.' },
        peers: { type: 'array', items: { type: 'string' }, default: [], description: 'Join list.' },
        beat: { type: 'number', exclusiveMinimum: 0, default: 1, description: 'Period in seconds.' },
      },
    },
    needs: [],
    configDefaults:
      map ??
      ((o, config) => {
        const address = (config['node'] as { address?: string } | undefined)?.address;
        const host = address?.slice(0, address.lastIndexOf(':')) ?? '127.0.0.1';
        return [
          ...(o['node_name'] !== null
            ? [{ path: '/node/id', value: String(o['node_name']), option: '/node_name' }]
            : []),
          ...(o['port'] !== null ? [{ path: '/node/address', value: `${host}:${o['port']}`, option: '/port' }] : []),
          { path: '/join', value: o['peers'], option: '/peers' },
          { path: '/placement/options/periodMs', value: Math.round(o['beat'] * 1000), option: '/beat' },
        ];
      }),
    create: () => () => ({ routes: () => async (_ctx, next) => next() }),
  });
}

const basics = (): AnyPluginManifest[] => [stubPlugin('codec', 'json'), stubPlugin('transport', 'http')];
const registry = new PluginRegistry([
  fakeStorage([]),
  ring,
  legacyFacade(),
  stubPlugin('codec', 'json'),
  stubPlugin('transport', 'http'),
]);

function problemsOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    if (isKvError(err)) return (err.details?.['problems'] as { path: string; message: string }[]) ?? [];
    throw err;
  }
  throw new Error('expected a config error');
}

function document(options: Record<string, unknown>, rest: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    storage: { name: 'fake-store' },
    placement: { name: 'ring' },
    facades: [{ name: 'legacy', options }],
    ...rest,
  };
}

test("a facade's written options fill the sections kvmesh reads them from", (t) => {
  const config = validateConfig(
    document({ node_name: '3', port: 10003, peers: ['127.0.0.1:10000'], beat: 0.25 }),
    registry,
  );
  t.is(config.node.id, '3');
  t.is(config.node.address, '127.0.0.1:10003', 'node.address, required by the core schema, comes from port');
  t.deepEqual(config.join, ['127.0.0.1:10000']);
  t.is(config.placement?.options['periodMs'], 250);
  t.deepEqual(config.facades[0]?.options, { node_name: '3', port: 10003, peers: ['127.0.0.1:10000'], beat: 0.25 });
});

test('an option left to its default fills nothing, so the section keeps its own default', (t) => {
  const config = validateConfig(document({ port: 4000 }), registry);
  t.is(config.placement?.options['periodMs'], 1000, "the ring's default, not the facade's beat default");
  t.deepEqual(config.join, []);
  t.is(config.node.id, '127.0.0.1:4000');
});

test('a value the file sets explicitly and equally is no conflict', (t) => {
  const config = validateConfig(
    document(
      { port: 4000, beat: 2 },
      { node: { address: '127.0.0.1:4000' }, placement: { name: 'ring', options: { periodMs: 2000 } } },
    ),
    registry,
  );
  t.is(config.node.address, '127.0.0.1:4000');
  t.is(config.placement?.options['periodMs'], 2000);
});

test('a section that says otherwise is a conflict naming both JSON paths, reported with every other problem', (t) => {
  const problems = problemsOf(() =>
    validateConfig(
      document(
        { port: 4001, beat: 2, node_name: 'bad id!' },
        {
          node: { address: '127.0.0.1:4000' },
          placement: { name: 'ring', options: { periodMs: 500 } },
          limits: { maxKeyBytes: 0 },
        },
      ),
      registry,
    ),
  );
  t.deepEqual(problems.map((p) => p.path).sort(), [
    '/facades/0/options/beat',
    '/facades/0/options/port',
    '/limits/maxKeyBytes',
    '/node/id',
  ]);
  const port = problems.find((p) => p.path === '/facades/0/options/port')!;
  t.regex(
    port.message,
    /gives \/node\/address the value "127\.0\.0\.1:4001", but the file sets \/node\/address to "127\.0\.0\.1:4000"/,
  );
  const beat = problems.find((p) => p.path === '/facades/0/options/beat')!;
  t.regex(beat.message, /\/placement\/options\/periodMs the value 2000, but the file sets .* to 500/);
  const id = problems.find((p) => p.path === '/node/id')!;
  t.regex(
    id.message,
    /\(given by \/facades\/0\/options\/node_name\)$/,
    'a filled value that fails the schema names its option',
  );
});

test('a filled value the chosen section does not accept is reported at the section, naming the option', (t) => {
  const flat = stubPlugin('placement', 'flat');
  const problems = problemsOf(() =>
    validateConfig(
      document({ port: 4000, beat: 2 }, { placement: { name: 'flat' } }),
      new PluginRegistry([...basics(), fakeStorage([]), flat, legacyFacade()]),
    ),
  );
  t.deepEqual(problems, [
    { path: '/placement/options/periodMs', message: 'unknown key (given by /facades/0/options/beat)' },
  ]);
});

test('command-line overrides win over the file and over mapped options; a function override keeps the host', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kvmesh-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'legacy.json');
  await writeFile(file, JSON.stringify(document({ node_name: '${ID:-1}', port: 10000, peers: ['127.0.0.2:10000'] })));
  const { config } = await loadConfig(file, {
    registry,
    env: {},
    overrides: {
      '/node/id': 'n7',
      '/node/address': (current: unknown) => `${String(current).split(':')[0]}:10007`,
      '/join': undefined,
    },
  });
  t.is(config.node.id, 'n7', '--id wins over node_name');
  t.is(config.node.address, '127.0.0.1:10007', "--port changes the port of the address the facade's port gave");
  t.deepEqual(config.join, ['127.0.0.2:10000'], 'an undefined override changes nothing');
  const fromEnv = await loadConfig(file, { registry, env: { ID: '4' } });
  t.is(fromEnv.config.node.id, '4', 'options are interpolated before they are mapped');
});

test('two plugins that map different values to one path conflict; a mapping into its own section or a throw is reported', (t) => {
  const other = definePlugin({
    family: 'placement',
    name: 'mapper',
    description: 'A placement that maps an option too.',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: { peers: { type: 'array', default: [], description: 'Join list.' } },
    },
    needs: [],
    configDefaults: (o: Record<string, unknown>) => [
      { path: '/join', value: o['peers'], option: '/peers' },
      { path: '/placement/options/peers', value: [], option: '/peers' },
    ],
    create: () => () => {
      throw new Error('stub');
    },
  });
  const throwing = legacyFacade(() => {
    throw new Error('port out of range');
  });
  const both = new PluginRegistry([...basics(), fakeStorage([]), other, legacyFacade()]);
  const problems = problemsOf(() =>
    validateConfig(
      {
        node: { address: '127.0.0.1:1' },
        storage: { name: 'fake-store' },
        placement: { name: 'mapper', options: { peers: ['a:1'] } },
        facades: [{ name: 'legacy', options: { peers: ['b:1'] } }],
      },
      both,
    ),
  );
  t.deepEqual(problems.map((p) => p.path).sort(), ['/facades/0/options/peers', '/placement/options/peers']);
  t.regex(
    problems.find((p) => p.path === '/facades/0/options/peers')!.message,
    /but \/placement\/options\/peers gives \/join to \["a:1"\]/,
  );
  t.regex(problems.find((p) => p.path === '/placement/options/peers')!.message, /not another section/);
  const thrown = problemsOf(() =>
    validateConfig(
      document({ port: 1 }, { node: { address: '127.0.0.1:1' } }),
      new PluginRegistry([...basics(), fakeStorage([]), ring, throwing]),
    ),
  );
  t.deepEqual(thrown, [
    { path: '/facades/0/options', message: "facade 'legacy' could not map its options: port out of range" },
  ]);
});

test('a manifest whose configDefaults is not a function is refused', (t) => {
  t.deepEqual(
    manifestProblems({ ...legacyFacade(), configDefaults: [] }).filter((p) => p.includes('configDefaults')),
    ['configDefaults must be a function (options, config) => [{ path, value, option }]'],
  );
});
