import test from 'ava';
import { PluginRegistry, simulatePlacement } from '@kvmesh/core';
import { builtinPlugins } from '../../src/index.js';

// The figures of docs/placement.md at a size that fits in a test; the 1,024 and 10,000 runs are in the docs.
const registry = new PluginRegistry(builtinPlugins);

test('at 256 nodes lookups all succeed in at most ½·log2 N + 1 hops on average', async (t) => {
  const result = await simulatePlacement({ registry, plugin: 'chord', nodes: 256, lookups: 1000, seed: 1 });
  t.log(JSON.stringify(result));
  t.is(result.successRate, 1);
  t.true(result.hopsMean <= 0.5 * Math.log2(256) + 1, `mean hops ${result.hopsMean}`);
  t.true(result.hopsMean >= 1, 'lookups do route');
  t.true(result.messagesPerLookup <= 2 * result.hopsMean + 0.01, 'a hop is a request and its response');
});

test('after 20% of 256 nodes fail at once, the ring repairs: 99% of lookups succeed and only keys whose every replica failed are lost', async (t) => {
  const result = await simulatePlacement({
    registry,
    plugin: 'chord',
    nodes: 256,
    lookups: 1000,
    churn: 0.2,
    keys: 500,
    seed: 2,
  });
  const failure = result.failure!;
  t.log(JSON.stringify(failure));
  t.is(failure.nodesFailed, 51);
  t.not(failure.repairMs, null, 'a probe of lookups all succeeded again');
  t.true(failure.repairMs! <= 10 * result.periodMs, `repaired in ${failure.repairMs} ms`);
  t.true(failure.afterRepair.successRate >= 0.99, `success after repair ${failure.afterRepair.successRate}`);
  t.true(failure.afterRepair.hopsMean <= 0.5 * Math.log2(205) + 1.5);
  t.is(failure.keysLost, failure.keysWithEveryReplicaFailed, 'no key with a surviving copy is lost');
  t.not(failure.replicationRepairMs, null, 'every surviving key is on all its replicas again');
});

test('with four backups no key is lost when 20% fail at once', async (t) => {
  const result = await simulatePlacement({
    registry,
    plugin: 'chord',
    nodes: 200,
    lookups: 300,
    churn: 0.2,
    keys: 500,
    seed: 3,
    options: { backups: 4 },
  });
  t.log(JSON.stringify(result.failure));
  t.is(result.failure!.keysLost, 0);
  t.is(result.failure!.keysUnderReplicated, 0);
});
