import { fileURLToPath } from 'node:url';
import test from 'ava';
import { PluginRegistry, loadConfig, runPlacementConformance } from '@kvmesh/core';
import type { Placement } from '@kvmesh/core';
import { builtinPlugins } from '../../src/index.js';

// The third-party example, loaded by path from its config exactly as `kvmesh start` would, runs the same suite.
const file = fileURLToPath(new URL('../../../../../examples/rendezvous.json', import.meta.url));
// The `up` section belongs to the server's `kvmesh up`; here it is only let through.
const { config, registry } = await loadConfig(file, {
  registry: new PluginRegistry(builtinPlugins),
  env: {},
  extensions: { up: { type: 'object' } },
});
const manifest = registry.get('placement', config.placement!.name);

test('the example config loads the rendezvous plugin by path and validates its options', (t) => {
  t.is(config.placement?.name, 'rendezvous');
  t.deepEqual(config.placement?.options, {
    replicas: 2,
    writeQuorum: 'all',
    readQuorum: 1,
    fallbacks: 1,
    buckets: 8192,
    dataRoles: ['storage'],
  });
});

runPlacementConformance(test, {
  name: 'rendezvous example',
  create: async (components) => (await manifest.create(config.placement!.options)(components as never)) as Placement,
  bounds: { replicationFactor: 2, balance: { 10: 1.15, 100: 1.25 }, joinMoved: 1.1, leaveMoved: 1.3 },
  keys: 50_000,
});
