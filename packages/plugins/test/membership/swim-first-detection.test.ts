import test from 'ava';
import { PluginRegistry, simulateMembership } from '@kvmesh/core';
import { builtinPlugins } from '../../src/index.js';

const registry = new PluginRegistry(builtinPlugins);
const PERIOD_MS = 1000;
const SUSPICION_MULT = 4;
const NODES = 12;

test('the simulator times each crash to its first suspicion and first death from the crash itself', async (t) => {
  // Plain SWIM without loss: a member suspects the crashed one when its ping goes a whole period unanswered, and
  // declares it dead exactly one suspicion timeout after that ping left, so the two figures differ by T - 1 period.
  const result = await simulateMembership({
    registry,
    plugin: 'swim',
    options: { lifeguard: false, probeIntervalMs: PERIOD_MS, suspicionMult: SUSPICION_MULT },
    nodes: NODES,
    crashes: 3,
    seed: 3,
  });
  t.log(result.crashTimings);
  t.is(result.crashTimings.length, 3);
  t.is(result.undetected, 0);
  const detections: number[] = [];
  result.crashTimings.forEach((crash, i) => {
    const { firstSuspicionMs, firstDeathMs, everyoneMs } = crash;
    if (firstSuspicionMs === null || firstDeathMs === null || everyoneMs === null) {
      t.fail(`crash ${crash.member} not timed: ${JSON.stringify(crash)}`);
      return;
    }
    if (i > 0) t.true(crash.crashedAtMs > result.crashTimings[i - 1]!.crashedAtMs, 'in crash order');
    // The suspicion timeout is set when the suspicion starts, from the members still live then (N - i).
    const suspicionMs = Math.round(SUSPICION_MULT * Math.log10(NODES - i) * PERIOD_MS);
    t.is(firstDeathMs - firstSuspicionMs, suspicionMs - PERIOD_MS, crash.member);
    // The first ping that can go unanswered leaves after the crash, and fails a whole period later.
    t.true(firstSuspicionMs > PERIOD_MS, crash.member);
    // Round-robin probing: every other member probes it within two rounds (2(N - 1) - 1 periods).
    t.true(firstSuspicionMs <= 2 * (NODES - 1 - i) * PERIOD_MS, crash.member);
    t.true(everyoneMs >= firstDeathMs && everyoneMs - firstDeathMs < PERIOD_MS, crash.member);
    detections.push(everyoneMs);
  });
  t.deepEqual(
    detections.sort((a, b) => a - b),
    [...result.detections],
  );
  const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
  const suspicions = result.crashTimings.map((c) => c.firstSuspicionMs!);
  const deaths = result.crashTimings.map((c) => c.firstDeathMs!);
  t.is(result.firstSuspicionPeriodsMean, Math.round((mean(suspicions) / PERIOD_MS) * 1000) / 1000);
  t.is(result.firstDeathPeriodsMean, Math.round((mean(deaths) / PERIOD_MS) * 1000) / 1000);
  t.is(result.firstSuspicionMsMax, Math.max(...suspicions));
});

test('without crashes there is no first detection to report', async (t) => {
  const result = await simulateMembership({ registry, plugin: 'swim', nodes: 4, periods: 5, crashes: 0 });
  t.deepEqual(result.crashTimings, []);
  t.is(result.firstSuspicionPeriodsMean, null);
  t.is(result.firstDeathPeriodsMean, null);
  t.is(result.firstSuspicionMsMax, null);
});
