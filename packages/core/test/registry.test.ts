import { fileURLToPath } from 'node:url';
import test from 'ava';
import { PluginRegistry, definePlugin, loadConfig } from '../src/index.js';
import type { KvError } from '../src/index.js';
import { fakeStorage, stubPlugin } from './helpers/fake-plugins.js';

const base = (): PluginRegistry =>
  new PluginRegistry([
    fakeStorage([], 'memory'),
    stubPlugin('codec', 'json'),
    stubPlugin('transport', 'http'),
    stubPlugin('membership', 'static', { view: { type: 'array' } }),
  ]);

const examples = fileURLToPath(new URL('../../../../examples/', import.meta.url));

test('an unknown name fails with the names available in that family', (t) => {
  const registry = new PluginRegistry([fakeStorage([]), fakeStorage([], 'other-store')]);
  const err = t.throws<KvError>(() => registry.get('storage', 'lmbd'));
  t.is(err.code, 'KVMESH_ERR_PLUGIN_UNKNOWN');
  t.is(err.message, "unknown storage plugin 'lmbd'; available: fake-store, other-store");
});

test('two different plugins cannot share a family and name', (t) => {
  const registry = new PluginRegistry([fakeStorage([])]);
  t.notThrows(() => registry.add(registry.get('storage', 'fake-store'), 'again'));
  const err = t.throws<KvError>(() => registry.add(fakeStorage([]), 'elsewhere'));
  t.is(err.code, 'KVMESH_ERR_PLUGIN_DUPLICATE');
});

test('definePlugin rejects a manifest that lets unknown options through', (t) => {
  const err = t.throws<KvError>(() =>
    definePlugin({
      family: 'storage',
      name: 'Loose Store',
      description: 'x',
      optionsSchema: { type: 'object' },
      needs: [],
      create: () => () => ({}) as never,
    }),
  );
  t.is(err.code, 'KVMESH_ERR_PLUGIN_INVALID');
  t.regex(err.message, /name must be kebab-case/);
  t.regex(err.message, /additionalProperties: false/);
});

test('a plugin outside packages/ is loaded purely from the config, relative to the file', async (t) => {
  const registry = base();
  const { config, registry: loaded } = await loadConfig(`${examples}third-party.json`, { registry });
  t.is(config.placement?.name, 'first-alive');
  t.deepEqual(config.placement?.options, { preferRole: 'storage' });
  t.deepEqual(loaded.names('placement'), ['first-alive']);
  t.false(registry.has('placement', 'first-alive'), 'the base registry is left untouched');
});

test('a missing plugin module is a load error naming it', async (t) => {
  const registry = base();
  const err = await t.throwsAsync<KvError>(
    loadConfig(`${examples}third-party.json`, { registry, overrides: { '/plugins': ['./nowhere.js'] } }),
  );
  t.is(err.code, 'KVMESH_ERR_PLUGIN_LOAD');
  t.regex(err.message, /'\.\/nowhere\.js' not found/);
});

test('a package name resolves like an import from the config folder', async (t) => {
  const err = await t.throwsAsync<KvError>(
    loadConfig(`${examples}third-party.json`, { registry: base(), overrides: { '/plugins': ['@kvmesh/core'] } }),
  );
  t.is(err.code, 'KVMESH_ERR_PLUGIN_INVALID');
  t.regex(err.message, /'@kvmesh\/core' exports no `default`, `plugin` or `plugins`/);
});
