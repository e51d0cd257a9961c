import test from 'ava';
import { PluginRegistry, SeededRandom, SkewedClock, VirtualClock, simulateMembership } from '@kvmesh/core';
import type { Clock, Member } from '@kvmesh/core';
import { builtinPlugins } from '../../src/index.js';
import { Awareness } from '../../src/membership/swim/awareness.js';
import { MemberList } from '../../src/membership/swim/member-list.js';
import { SWIM_MESSAGES } from '../../src/membership/swim/messages.js';
import { SWIM_DEFAULTS } from '../../src/membership/swim/options.js';
import type { SwimOptions } from '../../src/membership/swim/options.js';
import { Prober } from '../../src/membership/swim/prober.js';
import { ROUNDS_PER_PERMUTATION, SUSPECT_PLACES, scheduledRound } from '../../src/membership/swim/schedule.js';
import type { ScheduledRound } from '../../src/membership/swim/schedule.js';

const PERIOD_MS = 1000;
const EVERY = SWIM_DEFAULTS.scheduledRoundEvery;

const member = (id: string, state: Member['state'] = 'alive'): Member => ({
  id,
  address: `sim://${id}`,
  state,
  incarnation: 1,
  meta: {},
});

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `n${i + 1}`);

/** One member list per id, each holding every member of `members` (self included) as given. */
function lists(self: readonly string[], members: readonly Member[], seed = 1): Map<string, MemberList> {
  const out = new Map<string, MemberList>();
  self.forEach((id, i) => {
    const list = new MemberList(id, new SeededRandom(seed + i));
    for (const m of members)
      list.set({ member: m.id === id ? { ...m, state: 'alive' } : m, changedAt: 0, suspicion: undefined });
    out.set(id, list);
  });
  return out;
}

const targets = (all: Map<string, MemberList>, at: ScheduledRound): Map<string, string | undefined> =>
  new Map([...all].map(([id, list]) => [id, list.scheduledProbeTarget(at)?.member.id]));

test('every scheduledRoundEvery-th period is scheduled, and so is the one before each new permutation', (t) => {
  const rounds = (every: number, count: number): string[] =>
    Array.from({ length: count }, (_, r) => scheduledRound(r * PERIOD_MS + 7, PERIOD_MS, every))
      .map((at, r) => (at === undefined ? '' : `${r}:${at.epoch}`))
      .filter((s) => s !== '');
  const span = EVERY * ROUNDS_PER_PERMUTATION;
  const expected = Array.from({ length: 2 * span }, (_, r) => r)
    .filter((r) => r % EVERY === 0 || (r + 1) % span === 0)
    .map((r) => `${r}:${Math.floor((r + 1) / span)}`);
  t.deepEqual(rounds(EVERY, 2 * span), expected);
  // The gap between two scheduled rounds never exceeds `every` periods.
  const scheduled = expected.map((s) => Number(s.split(':')[0]));
  t.true(scheduled.every((r, i) => i === 0 || r - scheduled[i - 1]! <= EVERY));
  t.deepEqual(rounds(0, 100), [], '0 turns scheduled rounds off');
  t.is(scheduledRound(-PERIOD_MS * EVERY, PERIOD_MS, EVERY)?.round, -EVERY, 'a clock before 1970 still works');
});

test('while lists agree a scheduled round probes every alive member once and every suspect up to three times', (t) => {
  const all = ids(60);
  // Every 7th member crashed and is held suspect by all the others (it probes nobody any more).
  const crashed = new Set(all.filter((_, i) => i % 7 === 3));
  const members = all.map((id) => member(id, crashed.has(id) ? 'suspect' : 'alive'));
  const probers = all.filter((id) => !crashed.has(id));
  const views = lists(probers, [...members, member('gone', 'dead')]);
  const first = scheduledRound(0, PERIOD_MS, EVERY)!;
  const suspectProbers = new Map<string, Set<string>>(); // who probed each suspect, over the epoch
  const aliveProber = new Map<string, string>(); // the one member that probes each alive member in the epoch
  let round: Map<string, string | undefined> | undefined;
  for (let r = 0; r < ROUNDS_PER_PERMUTATION * EVERY; r += EVERY) {
    const at = scheduledRound(r * PERIOD_MS, PERIOD_MS, EVERY)!;
    t.is(at.epoch, first.epoch);
    round = targets(views, at);
    const probed = [...round.values()];
    t.false(probed.includes(undefined), 'everybody probes somebody');
    const alive = probed.filter((id) => !crashed.has(id!));
    t.is(new Set(alive).size, alive.length, 'no alive member is probed twice');
    t.false(probed.includes('gone'), 'the dead member is not probed');
    t.true(
      [...round].every(([from, to]) => from !== to),
      'nobody probes itself',
    );
    // Only a member after one of the places of a crashed suspect goes without a probe this round.
    const shadowed = probers.length - alive.length;
    t.true(shadowed <= SUSPECT_PLACES * crashed.size);
    for (const suspect of crashed) t.true(probed.filter((id) => id === suspect).length <= SUSPECT_PLACES);
    for (const [from, to] of round) {
      if (crashed.has(to!)) {
        if (!suspectProbers.has(to!)) suspectProbers.set(to!, new Set());
        suspectProbers.get(to!)!.add(from);
      } else {
        // An alive member keeps its prober for the whole permutation, so it is probed exactly `every` periods apart.
        t.is(aliveProber.get(to!) ?? from, from, `${to} keeps its prober`);
        aliveProber.set(to!, from);
      }
    }
  }
  // A suspect is probed by another member each round (a new independent confirmation each time).
  t.log('distinct probers of each suspect over the epoch:', [...suspectProbers.values()].map((s) => s.size).join(' '));
  for (const [suspect, seen] of suspectProbers) t.true(seen.size >= ROUNDS_PER_PERMUTATION, suspect);
  // The next permutation gives the members other probers.
  const next = targets(views, scheduledRound(ROUNDS_PER_PERMUTATION * EVERY * PERIOD_MS, PERIOD_MS, EVERY)!);
  const kept = [...next].filter(([from, to]) => aliveProber.get(to!) === from).length;
  t.true(kept < all.length / 4, `${kept} of ${all.length} probed by the same member in the next permutation`);
});

test('lists that disagree make a scheduled round random-like where they differ, never a round without probes', (t) => {
  const all = ids(60);
  // n7 is missing from half the lists (just joined, or just forgotten) and n9 is held dead by a third of them.
  const views = new Map<string, MemberList>();
  all.forEach((id, i) => {
    const members = all
      .filter((m) => m !== 'n7' || i % 2 === 0 || id === 'n7')
      .map((m) => member(m, m === 'n9' && i % 3 === 0 && id !== 'n9' ? 'dead' : 'alive'));
    views.set(id, lists([id], members, i).get(id)!);
  });
  const round = targets(views, scheduledRound(0, PERIOD_MS, EVERY)!);
  t.false([...round.values()].includes(undefined), 'everybody probes somebody');
  const unprobed = all.filter((id) => ![...round.values()].includes(id));
  t.log('not probed in this round:', unprobed);
  t.true(unprobed.length <= 4, `${unprobed.length} members not probed`);
});

/** Pings sent by `n` probers over `periods` periods on one virtual clock; `skewMs(i)` offsets member i's clock. */
function pings(
  options: Partial<SwimOptions>,
  n: number,
  periods: number,
  skewMs: (i: number) => number = () => 0,
): { byTarget: Map<string, number[]>; bySender: Map<string, number>; startMs: number } {
  const clock = new VirtualClock();
  const all = ids(n);
  const byTarget = new Map<string, number[]>(all.map((id) => [id, []]));
  const bySender = new Map<string, number>(all.map((id) => [id, 0]));
  const opts: SwimOptions = { ...SWIM_DEFAULTS, lifeguard: false, ...options };
  const probers = all.map((id, i) => {
    const random = new SeededRandom(1000 + i);
    const own: Clock = skewMs(i) === 0 ? clock : new SkewedClock(clock, skewMs(i));
    const list = new MemberList(id, random);
    for (const m of all) list.set({ member: member(m), changedAt: 0, suspicion: undefined });
    return new Prober(own, random.fork(), opts, list, new Awareness(1), {
      selfId: id,
      transmit: (_to, type, base) => {
        if (type !== SWIM_MESSAGES.ping) return;
        byTarget.get(base['target'] as string)!.push(clock.now());
        bySender.set(id, bySender.get(id)! + 1);
      },
      doubtAbout: () => undefined,
      probeFailed: () => undefined,
    });
  });
  for (const prober of probers) prober.start();
  clock.advance(periods * opts.probeIntervalMs);
  for (const prober of probers) prober.stop();
  return { byTarget, bySender, startMs: clock.startMs };
}

/** The longest wait from any instant after the first period until the next ping of a member, in periods. */
function longestWait(byTarget: Map<string, number[]>, startMs: number, periods: number): number {
  let longest = 0;
  for (const times of byTarget.values()) {
    const edges = [
      startMs + PERIOD_MS,
      ...times.filter((at) => at > startMs + PERIOD_MS),
      startMs + periods * PERIOD_MS,
    ];
    for (let i = 1; i < edges.length; i++) longest = Math.max(longest, edges[i]! - edges[i - 1]!);
  }
  return longest / PERIOD_MS;
}

test('scheduled rounds bound the wait for the next ping of every member to scheduledRoundEvery periods', (t) => {
  const periods = 200;
  const n = 40;
  const scheduled = pings({}, n, periods);
  const plain = pings({ scheduledRoundEvery: 0 }, n, periods);
  const bounded = longestWait(scheduled.byTarget, scheduled.startMs, periods);
  const unbounded = longestWait(plain.byTarget, plain.startMs, periods);
  t.log(
    `longest wait for a ping: ${bounded} periods scheduled, ${unbounded} round-robin only (N = ${n}, ${periods} periods)`,
  );
  t.true(bounded <= EVERY, `${bounded} periods`);
  // Round-robin alone leaves waits of about exponential length: over 8,000 member-periods some exceed the bound.
  t.true(unbounded > EVERY + 1, `${unbounded} periods`);
  // Same number of probes either way: one per member per period.
  for (const sent of [...scheduled.bySender.values(), ...plain.bySender.values()])
    t.true(Math.abs(sent - periods) <= 1);
});

test('with clocks skewed by up to several periods every member still sends one probe a period', (t) => {
  const periods = 100;
  const skewed = pings({}, 40, periods, (i) => (i % 5) * 1370 - 2500);
  for (const [id, sent] of skewed.bySender) t.true(Math.abs(sent - periods) <= 1, `${id} sent ${sent}`);
  const received = [...skewed.byTarget.values()].map((times) => times.length);
  t.log(`pings received per member over ${periods} periods: ${Math.min(...received)}..${Math.max(...received)}`);
  t.true(Math.min(...received) > periods / 3, 'no member goes unprobed');
});

test('in the simulator, scheduled rounds every 2 periods bound every crash first ping to 2 periods', async (t) => {
  // Crashes 20 periods apart, so no crashed member is still listed when the next one crashes: lists agree.
  const registry = new PluginRegistry(builtinPlugins);
  const every = 2;
  const result = await simulateMembership({
    registry,
    plugin: 'swim',
    options: { scheduledRoundEvery: every },
    nodes: 48,
    crashes: 10,
    periods: 400,
    seed: 5,
  });
  const waits = result.crashTimings.map((c) => (c.firstSuspicionMs ?? Infinity) / PERIOD_MS - 1);
  t.log('crash -> first ping, periods:', waits.map((w) => w.toFixed(3)).join(' '));
  t.is(result.undetected, 0);
  t.is(result.falsePositives, 0);
  // The unanswered ping leaves W after the crash; its prober suspects one period later.
  for (const w of waits) t.true(w <= every, `${w} periods`);
  const mean = waits.reduce((a, b) => a + b, 0) / waits.length;
  t.true(mean < 0.8, `mean ${mean} periods (about 1 with round-robin alone)`);
});
