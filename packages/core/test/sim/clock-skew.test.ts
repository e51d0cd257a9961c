import test from 'ava';
import { PluginRegistry, SimCluster, TOKENS, VirtualClock } from '../../src/index.js';
import type { Clock, SimClusterOptions } from '../../src/index.js';
import { testCodec } from '../helpers/test-codec.js';
import { allToAllMembership } from './all-to-all-membership.js';

const registry = new PluginRegistry([testCodec(), allToAllMembership()]);

test('a skewed view reads the virtual time plus its offset, and its drift accumulates from the start', (t) => {
  const clock = new VirtualClock({ startMs: 1_000_000 });
  const ahead = clock.skewed(250);
  const behind = clock.skewed(-400);
  const fast = clock.skewed(0, 100);
  t.is(ahead.now(), 1_000_250);
  t.is(behind.now(), 999_600);
  t.is(fast.now(), 1_000_000);
  clock.advance(3_600_000);
  t.is(ahead.now() - clock.now(), 250);
  t.is(behind.now() - clock.now(), -400);
  // 100 ppm of an hour: 360 ms gained.
  t.is(fast.now() - clock.now(), 360);
  t.is(clock.skewed(0, -100).now() - clock.now(), -360);
});

test("a skewed view's timers run on the shared clock, measured in the node's own time", async (t) => {
  const clock = new VirtualClock({ startMs: 0 });
  const behind = clock.skewed(-5_000);
  const fast = clock.skewed(0, 1_000);
  const fired: Array<[string, number]> = [];
  behind.setTimeout(() => fired.push(['behind', clock.now()]), 100);
  // 10,000 ms on a clock 0.1 % fast pass in 9,990 virtual ms.
  fast.setTimeout(() => fired.push(['fast', clock.now()]), 10_000);
  clock.setTimeout(() => fired.push(['shared', clock.now()]), 10_000);
  const ticks: number[] = [];
  const interval = behind.setInterval(() => ticks.push(clock.now()), 30);
  clock.advance(100);
  interval.cancel();
  clock.advance(10_000);
  t.deepEqual(fired, [
    ['behind', 100],
    ['fast', 9_990],
    ['shared', 10_000],
  ]);
  t.deepEqual(ticks, [30, 60, 90]);
  const sleeping = fast.sleep(1_000).then(() => clock.now());
  await clock.advanceAsync(2_000);
  t.is(await sleeping, 10_100 + 999);
  t.is(clock.pending(), 0);
});

test('a skewed view never goes backwards and refuses a drift that would stop it', (t) => {
  const clock = new VirtualClock({ startMs: 0 });
  const slow = clock.skewed(-7, -999_000);
  let last = slow.now();
  for (let i = 0; i < 100; i++) {
    clock.advance(7);
    t.true(slow.now() >= last);
    last = slow.now();
  }
  t.throws(() => clock.skewed(0, -1_000_000), { instanceOf: RangeError });
  t.throws(() => clock.skewed(Number.NaN), { instanceOf: RangeError });
  t.throws(() => clock.skewed(0, 10).setInterval(() => undefined, 0), { instanceOf: RangeError });
});

async function skewedCluster(
  t: { teardown(fn: () => unknown): void },
  options: { clockSkew?: SimClusterOptions['clockSkew']; seed?: number; nodes?: number },
): Promise<SimCluster> {
  const c = await SimCluster.create({
    registry,
    nodes: options.nodes ?? 3,
    seed: options.seed ?? 5,
    config: () => ({ membership: { name: 'all-to-all' } }),
    ...(options.clockSkew ? { clockSkew: options.clockSkew } : {}),
  });
  t.teardown(() => c.dispose());
  return c;
}

test('each simulated node reads its own clock, off by its offset; the cluster keeps running on virtual time', async (t) => {
  const offsets: Record<string, number> = { n1: 0, n2: -1_500, n3: 2_000 };
  const c = await skewedCluster(t, { clockSkew: (spec) => ({ offsetMs: offsets[spec.id]! }) });
  const read = (id: string): number => c.node(id).get<Clock>(TOKENS.clock).now();
  t.is(read('n2') - read('n1'), -1_500);
  t.is(read('n3') - read('n1'), 2_000);
  t.is(read('n1'), c.clock.now());
  t.is(c.nodeClock('n3'), c.node('n3').get<Clock>(TOKENS.clock));
  t.deepEqual(c.clockSkew('n2'), { offsetMs: -1_500, driftPpm: 0 });

  // The membership's beats and failure timers are set on the skewed clocks and still fire.
  await c.start();
  await c.join();
  const allAlive = (): boolean =>
    c.runningIds().every((o) => c.runningIds().every((id) => c.view(o, id)?.state === 'alive'));
  const took = await c.waitFor(allAlive, 5_000);
  t.true(took > 0 && took < 5_000, `converged after ${took} virtual ms`);
  await c.advance(1_000);
  t.is(read('n2') - c.clock.now(), -1_500);

  await c.restart('n2');
  t.is(read('n2') - c.clock.now(), -1_500, 'a restarted node keeps its skew');
});

test('drawn skews stay within the bounds, differ per node and replay from the seed', async (t) => {
  const bounds = { maxOffsetMs: 5_000, maxDriftPpm: 200 };
  const skews = (c: SimCluster) => c.ids.map((id) => c.clockSkew(id));
  const a = await skewedCluster(t, { clockSkew: bounds, seed: 11, nodes: 5 });
  const b = await skewedCluster(t, { clockSkew: bounds, seed: 11, nodes: 5 });
  const other = await skewedCluster(t, { clockSkew: bounds, seed: 12, nodes: 5 });
  t.deepEqual(skews(a), skews(b));
  t.notDeepEqual(skews(a), skews(other));
  t.is(new Set(skews(a).map((s) => s.offsetMs)).size, 5);
  for (const { offsetMs, driftPpm } of skews(a)) {
    t.true(Number.isInteger(offsetMs) && Math.abs(offsetMs) <= 5_000, `offset ${offsetMs}`);
    t.true(Math.abs(driftPpm) <= 200, `drift ${driftPpm}`);
  }
  t.is(a.node('n4').get<Clock>(TOKENS.clock).now() - a.clock.now(), a.clockSkew('n4').offsetMs);
  await t.throwsAsync(skewedCluster(t, { clockSkew: { maxOffsetMs: -1 } }), { instanceOf: RangeError });
});

test('without clockSkew every node reads the shared clock', async (t) => {
  const c = await skewedCluster(t, {});
  t.is(c.node('n2').get<Clock>(TOKENS.clock), c.clock);
  t.is(c.nodeClock('n2'), c.clock);
  t.deepEqual(c.clockSkew('n2'), { offsetMs: 0, driftPpm: 0 });
});
