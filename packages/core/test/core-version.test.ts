import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { CORE_VERSION, PluginRegistry, checkCoreVersion, definePlugin, loadConfig } from '../src/index.js';
import type { AnyPluginManifest, KvError } from '../src/index.js';
import { fakeStorage, stubPlugin } from './helpers/fake-plugins.js';

const packageVersion = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

function storageFor(range: string | undefined, name = 'ranged-store'): AnyPluginManifest {
  return definePlugin({ ...fakeStorage([], name), ...(range !== undefined ? { coreVersions: range } : {}) });
}

test('CORE_VERSION is the version in @kvmesh/core package.json', (t) => {
  t.is(CORE_VERSION, packageVersion);
});

test('a plugin whose range includes the running core is registered', (t) => {
  const registry = new PluginRegistry();
  registry.add(storageFor(`^${CORE_VERSION}`), 'built-in');
  registry.add(storageFor(`>=${CORE_VERSION}`, 'open-ended'), 'built-in');
  registry.add(storageFor(undefined, 'unranged'), 'built-in');
  t.deepEqual(registry.names('storage'), ['open-ended', 'ranged-store', 'unranged']);
});

test('a plugin whose range excludes the running core is refused, naming the plugin and both versions', (t) => {
  const registry = new PluginRegistry();
  const err = t.throws<KvError>(() => registry.add(storageFor('^9.0.0'), './vendor/store.js'));
  t.is(err.code, 'KVMESH_ERR_PLUGIN_CORE_VERSION');
  t.is(
    err.message,
    `storage plugin 'ranged-store' from ./vendor/store.js supports @kvmesh/core ^9.0.0, but this node runs @kvmesh/core ${CORE_VERSION}; install a version of the plugin made for ${CORE_VERSION}`,
  );
  t.deepEqual(err.details, {
    plugin: 'ranged-store',
    family: 'storage',
    origin: './vendor/store.js',
    coreVersions: '^9.0.0',
    coreVersion: CORE_VERSION,
  });
  t.false(registry.has('storage', 'ranged-store'));
});

test('ranges are semver ranges: caret on 0.x, intersections, pre-releases of the core', (t) => {
  const manifest = storageFor('^0.1.0');
  t.notThrows(() => checkCoreVersion(manifest, 'x', '0.1.7'));
  t.is(t.throws<KvError>(() => checkCoreVersion(manifest, 'x', '0.2.0')).code, 'KVMESH_ERR_PLUGIN_CORE_VERSION');
  t.notThrows(() => checkCoreVersion(manifest, 'x', '0.1.8-rc.1'));
  const window = storageFor('>=0.1.0 <0.3.0');
  t.notThrows(() => checkCoreVersion(window, 'x', '0.2.5'));
  t.throws(() => checkCoreVersion(window, 'x', '0.3.0'));
});

test('definePlugin rejects a coreVersions that is not a semver range', (t) => {
  for (const bad of ['not a range', 42, '']) {
    const err = t.throws<KvError>(() => definePlugin({ ...fakeStorage([]), coreVersions: bad as string }));
    t.is(err.code, 'KVMESH_ERR_PLUGIN_INVALID');
    t.regex(err.message, /coreVersions must be a semver range/);
  }
});

test('a third-party module made for another core is refused when the config loads it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kvmesh-core-version-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(
    join(dir, 'old-store.js'),
    `export const plugin = {
      family: 'storage', name: 'old-store', description: 'A storage made for a future core.',
      coreVersions: '>=5.0.0',
      optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
      needs: [], create: () => () => ({}),
    };\n`,
  );
  const file = join(dir, 'node.json');
  await writeFile(
    file,
    JSON.stringify({
      node: { address: '127.0.0.1:4000' },
      plugins: ['./old-store.js'],
      storage: { name: 'old-store' },
    }),
  );
  const registry = new PluginRegistry([stubPlugin('codec', 'json'), stubPlugin('transport', 'http')]);
  const err = await t.throwsAsync<KvError>(loadConfig(file, { registry }));
  t.is(err.code, 'KVMESH_ERR_PLUGIN_CORE_VERSION');
  t.true(err.message.startsWith("storage plugin 'old-store' from ./old-store.js supports @kvmesh/core >=5.0.0"));
  t.true(err.message.includes(`this node runs @kvmesh/core ${CORE_VERSION}`));
});
