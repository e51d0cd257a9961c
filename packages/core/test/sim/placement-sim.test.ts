import test from 'ava';
import { PluginRegistry, definePlugin, isKvError, simulatePlacement } from '../../src/index.js';
import type { PlacementSimResult } from '../../src/index.js';
import { testCodec } from '../helpers/test-codec.js';
import { gossipPlacement } from './gossip-placement.js';

function registry(contacts?: Array<[number, number]>): PluginRegistry {
  return new PluginRegistry([testCodec(), gossipPlacement(contacts)]);
}

// Real time and CPU time are the machine's, not the run's.
const withoutWall = (r: PlacementSimResult): Omit<PlacementSimResult, 'wallMs' | 'cpuMs'> => {
  const { wallMs: _wall, cpuMs: _cpu, ...rest } = r;
  return rest;
};

test('simulatePlacement bootstraps a routed placement in waves, each node joining through an earlier one', async (t) => {
  const contacts: Array<[number, number]> = [];
  const result = await simulatePlacement({
    registry: registry(contacts),
    plugin: 'gossip-test',
    nodes: 40,
    lookups: 300,
  });
  t.log(JSON.stringify(result));
  t.is(result.nodes, 40);
  t.is(result.periodMs, 500, 'the period comes from the hint');
  t.is(contacts.length, 40);
  t.deepEqual(contacts[0], [0, -1]);
  // Waves of 1, 1, 2, 4, 8...: a member's contact is from a wave before its own.
  for (const [index, contact] of contacts.slice(1)) {
    t.true(contact >= 0 && contact < 2 ** Math.floor(Math.log2(index)), `member ${index} joined through ${contact}`);
  }
  t.is(result.successRate, 1);
  t.true(result.hopsMean > 0.9 && result.hopsMean <= 1, `hops ${result.hopsMean}`);
  t.is(result.hopsMax, 1);
  // Each hop is one request and its response; nothing else is counted as the lookup's.
  t.true(Math.abs(result.messagesPerLookup - 2 * result.hopsMean) < 0.01, `${result.messagesPerLookup} messages`);
  t.true(result.settleMs > 0);
  t.is(result.failure, null);
});

test('the same seed replays the same run; another seed does not', async (t) => {
  const run = (seed: number): Promise<PlacementSimResult> =>
    simulatePlacement({ registry: registry(), plugin: 'gossip-test', nodes: 24, lookups: 200, churn: 0.25, seed });
  const [a, b, c] = [await run(7), await run(7), await run(8)];
  t.deepEqual(withoutWall(a), withoutWall(b));
  t.notDeepEqual(withoutWall(a), withoutWall(c));
});

test('churn: the failed fraction, the repair time, and keys followed through the announced moves', async (t) => {
  const result = await simulatePlacement({
    registry: registry(),
    plugin: 'gossip-test',
    nodes: 48,
    lookups: 400,
    churn: 0.25,
    keys: 400,
    seed: 3,
  });
  t.log(JSON.stringify(result.failure));
  const failure = result.failure!;
  t.is(failure.nodesFailed, 12);
  t.true(failure.lookupsFailedAfterCrash > 0, 'a lookup right after fails when its primary is gone');
  t.not(failure.repairMs, null);
  t.is(failure.afterRepair.successRate, 1);
  t.is(failure.keys, 400);
  // Two replicas per key: a key is lost exactly when both failed; the moves restore every other one.
  t.is(failure.keysLost, failure.keysWithEveryReplicaFailed);
  t.true(failure.keysLost < 60);
  t.is(failure.keysUnderReplicated, 0);
  t.not(failure.replicationRepairMs, null);
});

test('a placement that needs a membership or storage is refused with the components it lacks', async (t) => {
  const needy = definePlugin({
    family: 'placement',
    name: 'needy',
    description: 'Needs a membership.',
    optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
    needs: ['membership', 'rpc'],
    create: () => () => {
      throw new Error('never built');
    },
  });
  const err = await t.throwsAsync(
    simulatePlacement({ registry: new PluginRegistry([testCodec(), needy]), plugin: 'needy', nodes: 4 }),
  );
  t.true(isKvError(err, 'KVMESH_ERR_CONFIG_INVALID'), String(err));
  t.regex(err!.message, /needs membership/);
});

test('invalid options are a config error naming the simulated node', async (t) => {
  const err = await t.throwsAsync(
    simulatePlacement({ registry: registry(), plugin: 'gossip-test', nodes: 3, options: { periodMs: 'soon' } }),
  );
  t.true(isKvError(err, 'KVMESH_ERR_CONFIG_INVALID'), String(err));
  t.regex(err!.message, /simulated node n1/);
});
