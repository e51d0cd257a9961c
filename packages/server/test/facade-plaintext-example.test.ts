import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { PluginRegistry, loadConfig, runFacadeConformance, silentLogger } from '@kvmesh/core';
import type { FacadeConformanceTable } from '@kvmesh/core';
import { builtinPlugins } from '@kvmesh/plugins';
import { facadeConformanceHost } from '../src/facade-conformance-host.js';
import { startNodeServer } from '../src/node-server.js';
import { SERVER_CONFIG_EXTENSIONS } from '../src/settings.js';
import { http } from './helpers/http.js';

// The third-party example, loaded by path from its config exactly as `kvmesh start` would, runs the same suite.
const file = fileURLToPath(new URL('../../../../examples/plaintext.json', import.meta.url));
const { config, registry } = await loadConfig(file, {
  registry: new PluginRegistry(builtinPlugins),
  env: {},
  extensions: SERVER_CONFIG_EXTENSIONS,
});
const manifest = registry.get('facade', 'plaintext');
const { table } = (await import(
  new URL('../../../../examples/facade-plaintext/conformance.js', import.meta.url).href
)) as {
  table: FacadeConformanceTable;
};

test('the example config loads the plaintext facade by path, with its options validated, beside dht-node', (t) => {
  t.deepEqual(config.facades, [
    { name: 'plaintext', options: { port: 4401 } },
    { name: 'dht-node', options: { port: null, host: null } },
  ]);
  t.is(registry.entries('facade').find((e) => e.manifest.name === 'plaintext')?.origin, './facade-plaintext/index.js');
  t.is(manifest.coreVersions, '^0.1.0');
});

runFacadeConformance(test, {
  title: 'plaintext example as its config loads it',
  facade: manifest,
  options: { ...config.facades[0]!.options, port: 0 },
  host: facadeConformanceHost,
  ...table,
});

test('a node started from the example config serves the plaintext facade on its own port and dht-node on the node port', async (t) => {
  const server = await startNodeServer({
    configFile: file,
    env: {},
    overrides: { '/node/address': '127.0.0.1:0', '/facades/0/options/port': 0, '/log/level': 'silent' },
    logger: silentLogger,
  });
  t.teardown(() => server.shutdown());
  const [plaintext, dhtNode] = server.facades;
  t.is(dhtNode?.url, server.url);
  t.not(plaintext?.url, server.url);
  t.is((await http(plaintext!.url, '/text?key=k', { method: 'PUT', body: 'one value' })).status, 201);
  t.is((await http(server.url, '/d/k')).body.toString(), 'one value', 'both APIs read the same KV service');
  const members = await http(plaintext!.url, '/text/members');
  t.regex(members.body.toString(), /^n1 alive http:\/\/127\.0\.0\.1:\d+\n$/);
  const doc = (await http(server.url, '/v1/openapi.json')).json();
  t.deepEqual(doc.paths['/text'].servers, [{ url: plaintext!.url, description: "the port of facade 'plaintext'" }]);
  t.truthy(doc.paths['/d/{key}']);
});

test('the example loads by package name once installed next to a config, as a published plugin would', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kvmesh-facade-package-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // What `npm install kvmesh-facade-plaintext` leaves next to the config.
  await mkdir(join(dir, 'node_modules'));
  const example = fileURLToPath(new URL('../../../../examples/facade-plaintext', import.meta.url));
  await symlink(example, join(dir, 'node_modules', 'kvmesh-facade-plaintext'), 'dir');
  const configFile = join(dir, 'node.json');
  await writeFile(
    configFile,
    JSON.stringify({
      node: { address: '127.0.0.1:0' },
      plugins: ['kvmesh-facade-plaintext'],
      storage: { name: 'memory' },
      placement: { name: 'single' },
      facades: [{ name: 'plaintext', options: { port: 0 } }],
    }),
  );
  const loaded = await loadConfig(configFile, {
    registry: new PluginRegistry(builtinPlugins),
    extensions: SERVER_CONFIG_EXTENSIONS,
  });
  t.is(
    loaded.registry.entries('facade').find((e) => e.manifest.name === 'plaintext')?.origin,
    'kvmesh-facade-plaintext',
  );
  const server = await startNodeServer({ configFile, logger: silentLogger });
  t.teardown(() => server.shutdown());
  const url = server.facades[0]!.url;
  t.is((await http(url, '/text?key=a', { method: 'PUT', body: 'b' })).body.toString(), 'OK created\n');
});
