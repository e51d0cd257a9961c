import test from 'ava';
import { PluginRegistry, SimCluster, runMembershipConformance } from '../../src/index.js';
import type { MembershipEvent, SimNodeSpec } from '../../src/index.js';
import { testCodec } from '../helpers/test-codec.js';
import { allToAllMembership } from './all-to-all-membership.js';

const registry = new PluginRegistry([testCodec(), allToAllMembership()]);

async function cluster(t: { teardown(fn: () => unknown): void }, nodes = 4, seed = 7): Promise<SimCluster> {
  const c = await SimCluster.create({
    registry,
    nodes,
    seed,
    config: () => ({ membership: { name: 'all-to-all' } }),
  });
  t.teardown(() => c.dispose());
  return c;
}

const allAlive = (c: SimCluster) => () =>
  c.runningIds().every((observer) => c.runningIds().every((id) => c.view(observer, id)?.state === 'alive'));

test('names nodes n1..nN with sim:// transport URIs built from the config address', async (t) => {
  const c = await cluster(t, 3);
  t.deepEqual(c.ids, ['n1', 'n2', 'n3']);
  t.deepEqual(c.spec('n2'), { index: 1, id: 'n2', hostPort: 'n2:7946', address: 'sim://n2:7946' });
  t.is(c.node('n2').info.address, 'n2:7946');
  t.is(c.membership('n2').self.address, 'sim://n2:7946');
  t.throws(() => c.spec('n9'), { instanceOf: RangeError });
});

test('starts, joins through the first node and converges on virtual time only', async (t) => {
  const c = await cluster(t);
  t.deepEqual(c.runningIds(), []);
  await c.start();
  t.deepEqual(c.runningIds(), ['n1', 'n2', 'n3', 'n4']);
  await c.join();
  const took = await c.waitFor(allAlive(c), 5_000);
  t.true(took > 0 && took < 5_000);
});

test('waitFor fails after the limit and names the seed', async (t) => {
  const c = await cluster(t, 2, 42);
  const start = c.clock.now();
  await t.throwsAsync(
    c.waitFor(() => false, 250, 100),
    { message: /within 250 virtual ms \(seed 42\)/ },
  );
  t.is(c.clock.now() - start, 250);
});

test('a crashed node goes silent at once and is seen dead; a restart brings a new node with the same id', async (t) => {
  const c = await cluster(t);
  await c.start();
  await c.join();
  await c.waitFor(allAlive(c), 5_000);
  const old = c.node('n3');
  const sentBefore = c.network.stats().sent.message;
  await c.crash('n3');
  t.false(c.isRunning('n3'));
  t.is(old.state, 'stopped');
  t.false(c.network.listening().includes('sim://n3:7946'));
  await c.waitFor(() => ['n1', 'n2', 'n4'].every((o) => c.view(o, 'n3')?.state === 'dead'), 5_000);
  t.true(c.network.stats().sent.message > sentBefore);
  await c.restart('n3');
  t.is(c.generation('n3'), 2);
  t.not(c.node('n3'), old);
  await c.join(['n3']);
  await c.waitFor(allAlive(c), 5_000);
});

test('watch hears every node, also nodes rebuilt by restart, until unsubscribed', async (t) => {
  const c = await cluster(t, 3);
  const heard: Array<[string, MembershipEvent]> = [];
  const unwatch = c.watch((observer: SimNodeSpec, event) => heard.push([observer.id, event]));
  await c.start();
  await c.join();
  await c.waitFor(allAlive(c), 5_000);
  t.deepEqual([...new Set(heard.map(([o]) => o))].sort(), ['n1', 'n2', 'n3']);
  await c.crash('n2');
  await c.restart('n2');
  heard.length = 0;
  await c.join(['n2']);
  await c.waitFor(allAlive(c), 5_000);
  t.true(
    heard.some(([o]) => o === 'n2'),
    'the restarted node is watched',
  );
  unwatch();
  heard.length = 0;
  await c.leave('n1');
  await c.advance(1_000);
  t.deepEqual(heard, []);
});

test('leave tells the others before the node stops', async (t) => {
  const c = await cluster(t);
  await c.start();
  await c.join();
  await c.waitFor(allAlive(c), 5_000);
  await c.leave('n4');
  t.false(c.isRunning('n4'));
  await c.waitFor(() => ['n1', 'n2', 'n3'].every((o) => c.view(o, 'n4')?.state === 'left'), 1_000);
  t.pass();
});

test('the same seed replays the same run', async (t) => {
  const run = async (seed: number) => {
    const c = await cluster(t, 5, seed);
    await c.start();
    await c.join();
    c.network.setDefaults({ loss: 0.2, latencyMs: { min: 1, max: 40 } });
    await c.advance(3_000);
    const stats = c.network.stats();
    return {
      stats,
      views: c.ids.map((id) =>
        c
          .membership(id)
          .members()
          .map((m) => `${m.id}:${m.state}`),
      ),
    };
  };
  t.deepEqual(await run(3), await run(3));
  t.notDeepEqual((await run(3)).stats, (await run(4)).stats);
});

test('stopping every node leaves no timer pending once in-flight packets are delivered', async (t) => {
  const c = await cluster(t);
  await c.start();
  await c.join();
  await c.advance(500);
  await c.dispose();
  await c.clock.runUntilIdleAsync(1_000);
  t.is(c.clock.pending(), 0);
});

runMembershipConformance(test, {
  registry,
  plugin: 'all-to-all',
  options: { periodMs: 100, failAfterMs: 500 },
  nodes: 6,
  seed: 11,
  title: 'all-to-all reference',
  incarnations: true,
  claims: { none: 'the reference membership exists to exercise the harness and trusts every beat it hears' },
});
