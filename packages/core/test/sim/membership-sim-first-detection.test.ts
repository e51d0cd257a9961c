import test from 'ava';
import { PluginRegistry, simulateMembership } from '../../src/index.js';
import { testCodec } from '../helpers/test-codec.js';
import { allToAllMembership } from './all-to-all-membership.js';

const PERIOD_MS = 100;
const FAIL_AFTER_MS = 500;

test('a strategy without a suspect state is first suspected when it is first held dead', async (t) => {
  const result = await simulateMembership({
    registry: new PluginRegistry([testCodec(), allToAllMembership()]),
    plugin: 'all-to-all',
    options: { periodMs: PERIOD_MS, failAfterMs: FAIL_AFTER_MS },
    nodes: 6,
    periods: 40,
    crashes: 2,
    seed: 4,
  });
  t.log(result.crashTimings);
  t.is(result.crashTimings.length, 2);
  for (const crash of result.crashTimings) {
    t.is(crash.firstSuspicionMs, crash.firstDeathMs, crash.member);
    // Its last beat left within a period before the crash; a member holds it dead at its first tick past failAfterMs.
    t.true(crash.firstDeathMs! > FAIL_AFTER_MS - PERIOD_MS && crash.firstDeathMs! <= FAIL_AFTER_MS + PERIOD_MS + 10);
    t.true(crash.everyoneMs! >= crash.firstDeathMs!);
  }
  t.is(result.firstSuspicionPeriodsMean, result.firstDeathPeriodsMean);
  const mean = result.crashTimings.reduce((sum, c) => sum + c.firstDeathMs!, 0) / 2 / PERIOD_MS;
  t.is(result.firstDeathPeriodsMean, Math.round(mean * 1000) / 1000);
});
