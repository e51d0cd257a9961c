import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { PluginRegistry, definePlugin, interpolateEnv, isKvError, loadConfig, validateConfig } from '../src/index.js';
import type { ConfigProblem, KvError } from '../src/index.js';
import { fakePlacement, fakeStorage, stubPlugin } from './helpers/fake-plugins.js';

const registry = new PluginRegistry([
  fakeStorage([]),
  fakeStorage([], 'other-store'),
  fakePlacement([]),
  stubPlugin('codec', 'json'),
  stubPlugin('transport', 'http'),
]);
const minimal = { node: { address: '127.0.0.1:4000' }, storage: { name: 'fake-store' } };

function problemsOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    if (isKvError(err)) return (err.details?.['problems'] as { path: string; message: string }[]) ?? [];
    throw err;
  }
  throw new Error('expected a config error');
}

test('reports an unknown plugin, a wrong option type and an unknown key all at once, by JSON path', (t) => {
  const problems = problemsOf(() =>
    validateConfig(
      {
        node: { address: '127.0.0.1:4000' },
        placement: { name: 'chrod' },
        storage: { name: 'fake-store', options: { capacity: 'lots' } },
        replication: 3,
      },
      registry,
    ),
  );
  const paths = problems.map((p) => p.path).sort();
  t.deepEqual(paths, ['/placement/name', '/replication', '/storage/options/capacity']);
  t.regex(
    problems.find((p) => p.path === '/placement/name')!.message,
    /unknown placement plugin 'chrod'; available: fake-place/,
  );
  t.regex(problems.find((p) => p.path === '/storage/options/capacity')!.message, /must be integer \(found "lots"\)/);
  t.is(problems.find((p) => p.path === '/replication')!.message, 'unknown key');
});

test('the error message names the file and lists every problem on its own line', (t) => {
  const err = t.throws<KvError>(() =>
    validateConfig({ node: { address: 'nope' }, storage: { name: 'fake-store', options: { colour: 1 } } }, registry, {
      file: 'configs/x.json',
    }),
  );
  t.is(err.code, 'KVMESH_ERR_CONFIG_INVALID');
  const lines = err.message.split('\n');
  t.is(lines[0], 'configs/x.json: 2 problems');
  t.true(lines.some((l) => l.includes('/node/address: must match pattern')));
  t.true(lines.some((l) => l.includes('/storage/options/colour: unknown key')));
});

test('fills defaults, derives node id and data dir, and freezes the result', (t) => {
  const config = validateConfig(minimal, registry);
  t.is(config.node.id, '127.0.0.1:4000');
  t.is(config.node.dataDir, './data/127.0.0.1_4000');
  t.is(config.node.role, 'storage');
  t.is(config.rpc.timeoutMs, 2000);
  t.is(config.limits.maxKeyBytes, 1024);
  t.is(config.limits.maxValueBytes, 1048576);
  t.deepEqual(config.storage.options, { capacity: 10, label: 'main' });
  t.deepEqual(config.codec, { name: 'json', options: {} });
  t.true(Object.isFrozen(config.storage.options));
  t.throws(() => {
    (config.node as { id: string }).id = 'changed';
  });
});

test('does not modify the document it validates', (t) => {
  const doc = structuredClone(minimal);
  validateConfig(doc, registry);
  t.deepEqual(doc, minimal);
});

test('a missing required section is reported', (t) => {
  const problems = problemsOf(() => validateConfig({ storage: { name: 'fake-store' } }, registry));
  t.deepEqual(problems, [{ path: '/node', message: 'is required' }]);
});

test('interpolates ${VAR} and ${VAR:-default}, typing whole references as JSON', (t) => {
  const problems: ConfigProblem[] = [];
  const out = interpolateEnv(
    { a: '${HOST}:${PORT:-4000}', n: '${REPL_FACTOR:-2}', view: '${VIEW}', list: ['${HOST}'], keep: 7 },
    { HOST: '127.0.0.2', VIEW: '127.0.0.2:4000,127.0.0.3:4000' },
    problems,
  );
  t.deepEqual(out, { a: '127.0.0.2:4000', n: 2, view: '127.0.0.2:4000,127.0.0.3:4000', list: ['127.0.0.2'], keep: 7 });
  t.deepEqual(problems, []);
});

test('an unset variable without default is reported with its path', (t) => {
  const problems: ConfigProblem[] = [];
  interpolateEnv({ node: { address: '${ADDRESS}' } }, {}, problems);
  t.is(problems.length, 1);
  t.is(problems[0]!.path, '/node/address');
  t.regex(problems[0]!.message, /ADDRESS is not set/);
});

test('loadConfig applies environment, then command-line overrides, then validates', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kvmesh-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'node.json');
  await writeFile(
    file,
    JSON.stringify({ node: { id: '${NODE_ID:-n1}', address: '${ADDRESS}' }, storage: { name: 'fake-store' } }),
  );
  const { config } = await loadConfig(file, {
    registry,
    env: { ADDRESS: '127.0.0.1:5000' },
    overrides: { '/node/id': 'from-flag', '/storage/options/capacity': 3 },
  });
  t.is(config.node.id, 'from-flag');
  t.is(config.node.address, '127.0.0.1:5000');
  t.is(config.storage.options['capacity'], 3);
});

test('a JSON syntax error names the file, line and column', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kvmesh-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'bad.json');
  await writeFile(file, '{\n  "node": {,\n}');
  const err = await t.throwsAsync<KvError>(loadConfig(file, { registry }));
  t.is(err.code, 'KVMESH_ERR_CONFIG_READ');
  t.regex(err.message, /bad\.json: not valid JSON at line 2, column 12/);
});

test('a missing file is a read error', async (t) => {
  const err = await t.throwsAsync<KvError>(loadConfig('/nonexistent/kvmesh.json', { registry }));
  t.is(err.code, 'KVMESH_ERR_CONFIG_READ');
  t.regex(err.message, /no such file/);
});

test('config imports nothing from the kernel, so the two folders form no cycle', async (t) => {
  // Compiled tests live in dist/test; the sources two levels up.
  const folder = new URL('../../src/config/', import.meta.url);
  const files = (await readdir(folder)).filter((f) => f.endsWith('.ts'));
  t.true(files.length > 0, `no sources found in ${folder.pathname}`);
  for (const name of files) {
    const source = await readFile(new URL(name, folder), 'utf8');
    t.notRegex(source, /from '\.\.\/kernel\//, `config/${name} imports the kernel`);
  }
});

test('ports out of range are config problems at their JSON path, node address and join seeds alike', (t) => {
  const problems = problemsOf(() =>
    validateConfig(
      { ...minimal, node: { address: '127.0.0.1:99999' }, join: ['127.0.0.1:4001', '10.0.0.1:65536'] },
      registry,
    ),
  );
  t.deepEqual(
    problems.map((p) => p.path),
    ['/node/address', '/join/1'],
  );
  t.regex(problems[0]!.message, /port 99999 is out of range; a port is 0 to 65535/);
  t.notThrows(() => validateConfig({ ...minimal, node: { address: '127.0.0.1:65535' } }, registry));
});

test("a plugin's checkConfig sees the defaulted config and its problems are listed with the others", (t) => {
  const seen: unknown[] = [];
  const checked = new PluginRegistry([
    fakeStorage([]),
    stubPlugin('codec', 'json'),
    stubPlugin('transport', 'http'),
    definePlugin({
      family: 'storage',
      name: 'small-keys',
      description: 'Holds keys of at most 100 bytes.',
      optionsSchema: {
        type: 'object',
        additionalProperties: false,
        properties: { slack: { type: 'integer', default: 0 } },
      },
      needs: [],
      checkConfig: (options: { slack: number }, config) => {
        seen.push(options, (config['limits'] as { maxKeyBytes: number }).maxKeyBytes);
        return [{ path: '/limits/maxKeyBytes', message: 'is more than the 100 bytes this storage holds' }];
      },
      create: () => () => {
        throw new Error('not built');
      },
    }),
    definePlugin({
      family: 'placement',
      name: 'broken-check',
      description: 'Its check throws.',
      optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
      needs: [],
      checkConfig: () => {
        throw new Error('boom');
      },
      create: () => () => {
        throw new Error('not built');
      },
    }),
  ]);
  const problems = problemsOf(() =>
    validateConfig(
      { node: { address: '127.0.0.1:99999' }, storage: { name: 'small-keys' }, placement: { name: 'broken-check' } },
      checked,
    ),
  );
  t.deepEqual(seen, [{ slack: 0 }, 1024], 'options and limits with their defaults');
  t.deepEqual(
    problems.map((p) => p.path),
    ['/node/address', '/placement', '/limits/maxKeyBytes'],
  );
  t.regex(problems[1]!.message, /placement 'broken-check' failed to check the config: boom/);
  // Not run while the schema finds problems: the config it would check is not complete.
  const early = problemsOf(() =>
    validateConfig({ node: { address: 'nope' }, storage: { name: 'small-keys' } }, checked),
  );
  t.deepEqual(
    early.map((p) => p.path),
    ['/node/address'],
  );
});
