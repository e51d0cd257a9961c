import type { ExecutionContext, TestFn } from 'ava';
import type { Member, MembershipBounds, MembershipEvent, MemberState } from '../contracts/membership.js';
import type { PluginRegistry } from '../kernel/registry.js';
import { SimCluster } from '../sim/cluster.js';
import type { SimNodeSpec } from '../sim/cluster.js';
import type { LinkProfile } from '../sim/link-profile.js';
import type { SimTransportOptions } from '../sim/sim-transport.js';
import { MEMBERSHIP_CLAIM_CHECKS, registerClaimChecks } from './membership-claims.js';
import type { MembershipClaimCheck, MembershipClaims } from './membership-claims.js';

export { MEMBERSHIP_CLAIM_CHECKS } from './membership-claims.js';
export type { ForgedClaim, MembershipClaimCheck, MembershipClaims } from './membership-claims.js';

/** The checks of the suite, by name (for `skip`). */
export const MEMBERSHIP_CHECKS = [
  'converge',
  'detect',
  'heal',
  'loss',
  'restart',
  'leave',
  'lifecycle',
  'events',
  ...MEMBERSHIP_CLAIM_CHECKS,
] as const;
export type MembershipCheck = (typeof MEMBERSHIP_CHECKS)[number];

export interface MembershipConformanceOptions {
  /** Holds the plugin under test and every plugin the node configs name (codec...). */
  readonly registry: PluginRegistry;
  /** Name of the membership plugin under test. */
  readonly plugin: string;
  /** Its options on every node (unless `configure` replaces the membership section). */
  readonly options?: Record<string, unknown>;
  /** Nodes per simulated cluster. Default 8. */
  readonly nodes?: number;
  /** Seed of the first check; check i runs with seed + i. Printed when a check fails. Default 1. */
  readonly seed?: number;
  /** Prefix of every test title. Default `membership '<plugin>'`. */
  readonly title?: string;
  /**
   * Raw config sections of one node, merged over
   * `{ membership: { name: plugin, options } }` (a `node` section is merged
   * key by key): a role, a static view, a codec, per-node options.
   */
  readonly configure?: (spec: SimNodeSpec, all: readonly SimNodeSpec[]) => Record<string, unknown>;
  /** Transport URIs every node joins through. Default: the first node's. */
  readonly seeds?: (all: readonly SimNodeSpec[]) => readonly string[];
  /** Nodes the suite never crashes, restarts or makes leave (a controller). Default: none. */
  readonly essential?: (spec: SimNodeSpec) => boolean;
  /** Nodes that appear in the member lists (a controller that is not a member). Default: all. */
  readonly listed?: (spec: SimNodeSpec) => boolean;
  /** Frame limits of the simulated endpoints. Default `{ maxMessageBytes: 1192 }`, one UDP datagram. */
  readonly transport?: SimTransportOptions;
  /** Link profile of the lossless phases. Default LINK_PROFILES.lan (1-5 ms, no faults). */
  readonly link?: Partial<LinkProfile>;
  /** Checks that do not apply to this strategy (e.g. `detect` for an administered view). */
  readonly skip?: readonly MembershipCheck[];
  /** Whether a restarted member must come back with a higher incarnation. Default true. */
  readonly incarnations?: boolean;
  /** Longest virtual time to converge or to spread a join or a leave. Default 100 protocol periods. */
  readonly convergeLimitMs?: number;
  /** Length of the lossy run, in protocol periods. Default 300. */
  readonly lossPeriods?: number;
  /**
   * How the claim checks (forged-claim, refute, absurd, own-incarnation)
   * make a claim about a member in this strategy's messages, or why it has
   * none: required, so no strategy leaves the claim rules out unsaid.
   */
  readonly claims: MembershipClaims;
}

/** Default nodes per cluster: enough for indirect probes and confirmations, small enough to be quick. */
const DEFAULT_NODES = 8;
const DEFAULT_LOSS_PERIODS = 300;
const DEFAULT_CONVERGE_PERIODS = 100;
/** One UDP datagram minus the udp transport's header, as the udp transport allows. */
const UDP_MESSAGE_BYTES = 1192;
/** Polling granularity of waits, as a fraction of the protocol period. */
const STEPS_PER_PERIOD = 10;

interface World {
  readonly cluster: SimCluster;
  readonly bounds: MembershipBounds;
  readonly seed: number;
  /** Observers' views by id. */
  views(): Map<string, Map<string, Member>>;
  /** Running nodes that appear in member lists. */
  listedRunning(): string[];
  /** A node the suite may crash, picked with the seed. */
  victim(): string;
  /** Waits until every running node sees every listed running node alive. */
  converge(): Promise<number>;
  /** Waits until every running node other than `subject` sees it in `states` (absent counts when `absentOk`). */
  seenBy(subject: string, states: readonly MemberState[], limitMs: number, absentOk?: boolean): Promise<number>;
  readonly step: number;
  readonly convergeLimitMs: number;
}

/**
 * The contract tests every Membership strategy runs unchanged, in the
 * simulator (virtual clock, seeded random, in-memory network), so they are
 * fast and replay from the seed they print:
 *
 * - converge: after start and join through the seeds, every member sees
 *   every other alive, and `members()` lists self, sorted by id;
 * - detect: a crashed member (no goodbye) is seen dead, or forgotten, by
 *   every live member within `bounds.detectionMs`;
 * - loss: at `bounds.toleratedLoss` packet loss on every link, no live
 *   member is declared dead over a long run;
 * - restart: a crashed member rebuilt with the same id rejoins and is alive
 *   everywhere, with a higher incarnation;
 * - leave: after `leave()` every other member sees it `left`;
 * - lifecycle: a second `start()` schedules nothing, `stop()` twice is
 *   harmless, and stopped nodes leave no timer behind;
 * - events: replaying a node's events gives its member list, `previous` is
 *   right, and an unsubscribed listener hears nothing;
 * - forged-claim, refute, absurd, own-incarnation: the claim rules (see
 *   membership-claims.ts), through `options.claims`.
 *
 * Call it from an ava test file:
 * `runMembershipConformance(test, { registry, plugin: '<name>', options })`.
 */
export function runMembershipConformance(test: TestFn, options: MembershipConformanceOptions): void {
  const prefix = options.title ?? `membership '${options.plugin}'`;
  const skip = new Set(options.skip ?? []);
  const baseSeed = options.seed ?? 1;
  const nodes = options.nodes ?? DEFAULT_NODES;
  const essential = options.essential ?? (() => false);
  const listed = options.listed ?? (() => true);
  const expectIncarnation = options.incarnations ?? true;

  const world = async (
    t: ExecutionContext,
    check: MembershipCheck,
    beforeStart?: (cluster: SimCluster) => void,
  ): Promise<World> => {
    const seed = baseSeed + MEMBERSHIP_CHECKS.indexOf(check);
    t.log(`${prefix}: ${check} runs with seed ${seed}`);
    let specs: readonly SimNodeSpec[] = [];
    const cluster = await SimCluster.create({
      registry: options.registry,
      nodes,
      seed,
      transport: options.transport ?? { maxMessageBytes: UDP_MESSAGE_BYTES },
      ...(options.link ? { link: options.link } : {}),
      config: (spec) => {
        const extra = options.configure?.(spec, specs) ?? {};
        return {
          membership: { name: options.plugin, options: options.options ?? {} },
          ...extra,
          node: { ...(extra['node'] as object | undefined) },
        };
      },
    }).catch((err: unknown) => {
      throw new Error(`${prefix}: cannot build the cluster (seed ${seed}): ${(err as Error).message}`, { cause: err });
    });
    specs = cluster.specs;
    t.teardown(() => cluster.dispose());
    beforeStart?.(cluster);
    await cluster.start();
    const seeds = options.seeds?.(cluster.specs) ?? [cluster.specs[0]!.address];
    await cluster.join(undefined, seeds);
    const bounds = cluster.membership(cluster.ids[0]!).bounds;
    const step = Math.max(1, Math.round(bounds.periodMs / STEPS_PER_PERIOD));
    const convergeLimitMs = options.convergeLimitMs ?? DEFAULT_CONVERGE_PERIODS * bounds.periodMs;
    const views = (): Map<string, Map<string, Member>> => {
      const out = new Map<string, Map<string, Member>>();
      for (const id of cluster.runningIds()) {
        out.set(
          id,
          new Map(
            cluster
              .membership(id)
              .members()
              .map((m) => [m.id, m]),
          ),
        );
      }
      return out;
    };
    const listedRunning = (): string[] => cluster.runningIds().filter((id) => listed(cluster.spec(id)));
    return {
      cluster,
      bounds,
      seed,
      step,
      convergeLimitMs,
      views,
      listedRunning,
      victim: () => {
        const candidates = cluster.specs.filter((s) => cluster.isRunning(s.id) && !essential(s) && listed(s));
        if (candidates.length === 0) throw new Error(`${prefix}: every node is essential; nothing to crash`);
        return candidates[cluster.random.int(candidates.length)]!.id;
      },
      converge: () =>
        cluster.waitFor(
          () => {
            const expected = listedRunning();
            for (const [observer, view] of views()) {
              for (const id of expected) if (id !== observer && view.get(id)?.state !== 'alive') return false;
            }
            return true;
          },
          convergeLimitMs,
          step,
        ),
      seenBy: (subject, states, limitMs, absentOk = false) =>
        cluster.waitFor(
          () => {
            for (const [observer, view] of views()) {
              if (observer === subject) continue;
              const member = view.get(subject);
              if (member === undefined ? !absentOk : !states.includes(member.state)) return false;
            }
            return true;
          },
          limitMs,
          step,
        ),
    };
  };

  const register = (check: MembershipCheck, title: string, body: (t: ExecutionContext) => Promise<void>): void => {
    if (skip.has(check)) return;
    test.serial(`${prefix}: ${title}`, body);
  };

  register('converge', 'converges from the seeds: every member sees every other alive', async (t) => {
    const w = await world(t, 'converge');
    const took = await w.converge();
    t.log(`converged in ${took} virtual ms`);
    for (const id of w.cluster.runningIds()) {
      const membership = w.cluster.membership(id);
      const list = membership.members();
      const ids = list.map((m) => m.id);
      t.deepEqual(ids, [...ids].sort(), `members() of ${id} is not sorted by id (seed ${w.seed})`);
      t.is(new Set(ids).size, ids.length, `members() of ${id} lists an id twice (seed ${w.seed})`);
      if (listed(w.cluster.spec(id))) {
        t.true(ids.includes(id), `members() of ${id} does not list itself (seed ${w.seed})`);
        t.is(membership.self.id, id);
        t.is(membership.self.state, 'alive');
        t.is(membership.self.address, w.cluster.spec(id).address, `self.address must be the transport URI`);
      }
    }
    const bounds = w.bounds;
    t.true(bounds.periodMs > 0, 'bounds.periodMs must be > 0');
    t.true(bounds.detectionMs > 0, 'bounds.detectionMs must be > 0');
    t.true(bounds.toleratedLoss >= 0 && bounds.toleratedLoss < 1, 'bounds.toleratedLoss must be in [0, 1)');
  });

  register('detect', 'sees a crashed member dead at every live member within bounds.detectionMs', async (t) => {
    const w = await world(t, 'detect');
    await w.converge();
    const victim = w.victim();
    const crashedAt = w.cluster.clock.now();
    const seenDeadAt = new Map<string, number>();
    w.cluster.watch((observer, event) => {
      if (event.member.id === victim && event.member.state === 'dead' && !seenDeadAt.has(observer.id)) {
        seenDeadAt.set(observer.id, w.cluster.clock.now() - crashedAt);
      }
    });
    await w.cluster.crash(victim);
    const took = await w.seenBy(victim, ['dead'], w.bounds.detectionMs, true);
    t.log(`${victim} crashed; seen dead everywhere after ${took} ms (bound ${w.bounds.detectionMs} ms)`);
    t.true(took <= w.bounds.detectionMs);
    for (const [observer, view] of w.views()) {
      t.not(view.get(victim)?.state, 'left', `${observer} took a crash for a leave (seed ${w.seed})`);
    }
  });

  register(
    'heal',
    'a member cut off until it is held dead is alive everywhere within bounds.healMs of the heal',
    async (t) => {
      const w = await world(t, 'heal');
      await w.converge();
      if (!Number.isFinite(w.bounds.healMs) || !Number.isFinite(w.bounds.detectionMs)) {
        t.log(`bounds.healMs is ${w.bounds.healMs}: nobody is declared dead, or the strategy does not heal by itself`);
        t.pass();
        return;
      }
      const victim = w.victim();
      const others = w.cluster.runningIds().filter((id) => id !== victim);
      w.cluster.network.partition(
        [w.cluster.spec(victim).address],
        others.map((id) => w.cluster.spec(id).address),
      );
      await w.seenBy(victim, ['dead'], w.bounds.detectionMs, true);
      w.cluster.network.heal();
      const healedAt = w.cluster.clock.now();
      await w.cluster.waitFor(
        () =>
          [...w.views()].every(([observer, view]) =>
            w.cluster
              .runningIds()
              .every((id) => id === observer || !listed(w.cluster.spec(id)) || view.get(id)?.state === 'alive'),
          ),
        w.bounds.healMs,
        Math.max(1, Math.floor(w.bounds.periodMs / STEPS_PER_PERIOD)),
      );
      const took = w.cluster.clock.now() - healedAt;
      t.log(
        `${victim} cut off until held dead; every member alive everywhere ${took} ms after the heal (bound ${w.bounds.healMs} ms)`,
      );
      t.true(took <= w.bounds.healMs);
    },
  );

  register('loss', 'declares no live member dead at bounds.toleratedLoss packet loss over a long run', async (t) => {
    const w = await world(t, 'loss');
    await w.converge();
    const falsePositives: string[] = [];
    w.cluster.watch((observer, event) => {
      const { member } = event;
      if ((member.state === 'dead' || member.state === 'left') && w.cluster.isRunning(member.id)) {
        falsePositives.push(`${observer.id} saw ${member.id} ${member.state} at ${w.cluster.clock.now()}`);
      }
    });
    const loss = w.bounds.toleratedLoss;
    w.cluster.network.setDefaults({ loss });
    const periods = options.lossPeriods ?? DEFAULT_LOSS_PERIODS;
    await w.cluster.advance(periods * w.bounds.periodMs);
    w.cluster.network.setDefaults({ loss: 0 });
    t.deepEqual(falsePositives, [], `false positives at ${loss} loss (seed ${w.seed})`);
    await w.converge();
    t.pass();
  });

  register('restart', 'a restarted member rejoins and is alive everywhere with a higher incarnation', async (t) => {
    const w = await world(t, 'restart');
    await w.converge();
    const victim = w.victim();
    const before = Math.max(...[...w.views().values()].map((v) => v.get(victim)?.incarnation ?? 0));
    await w.cluster.crash(victim);
    let last = before;
    if (!skip.has('detect')) {
      await w.seenBy(victim, ['dead'], w.bounds.detectionMs, true);
      for (const view of w.views().values()) last = Math.max(last, view.get(victim)?.incarnation ?? 0);
    }
    await w.cluster.restart(victim);
    const own = w.cluster.spec(victim).address;
    const seeds = (options.seeds?.(w.cluster.specs) ?? [w.cluster.specs[0]!.address]).filter((s) => s !== own);
    const fallback = w.cluster.runningIds().find((id) => id !== victim)!;
    await w.cluster.join([victim], seeds.length > 0 ? seeds : [w.cluster.spec(fallback).address]);
    const took = await w.converge();
    t.log(`${victim} alive everywhere ${took} ms after its rejoin`);
    for (const [observer, view] of w.views()) {
      if (observer === victim) continue;
      const member = view.get(victim)!;
      if (expectIncarnation) {
        t.true(
          member.incarnation > last,
          `${observer} sees ${victim} at incarnation ${member.incarnation}, not above ${last} (seed ${w.seed})`,
        );
      } else {
        t.true(member.incarnation >= before);
      }
    }
  });

  register('leave', 'a graceful leave is seen as left by every other member', async (t) => {
    const w = await world(t, 'leave');
    await w.converge();
    const victim = w.victim();
    const sawDead: string[] = [];
    w.cluster.watch((observer, event) => {
      if (event.member.id === victim && event.member.state === 'dead') sawDead.push(observer.id);
    });
    await w.cluster.leave(victim);
    const took = await w.seenBy(victim, ['left'], w.convergeLimitMs);
    t.log(`${victim} left; seen left everywhere after ${took} ms`);
    await w.cluster.advance(3 * w.bounds.periodMs);
    for (const [observer, view] of w.views()) {
      const state = view.get(victim)?.state;
      t.true(state === 'left' || state === undefined, `${observer} sees ${victim} ${state} after it left`);
    }
    t.deepEqual(sawDead, [], `members saw a leaving node dead (seed ${w.seed})`);
  });

  register(
    'lifecycle',
    'a second start schedules nothing, stop is idempotent and leaves no timer behind',
    async (t) => {
      const w = await world(t, 'lifecycle');
      await w.converge();
      const { cluster } = w;
      const id = cluster.ids.find((i) => !essential(cluster.spec(i))) ?? cluster.ids[0]!;
      const membership = cluster.membership(id);
      const pending = cluster.clock.pending();
      await cluster.settle(Promise.resolve(membership.start?.()));
      t.is(cluster.clock.pending(), pending, `a second start() set timers (seed ${w.seed})`);
      await w.converge();
      await membership.stop?.();
      await membership.stop?.();
      await cluster.stop(id);
      await cluster.dispose();
      // Long enough for every packet in flight and any timer a stopped node might have left (a strategy
      // without failure detection declares an infinite detectionMs).
      const drainMs = 10 * w.bounds.periodMs + (Number.isFinite(w.bounds.detectionMs) ? w.bounds.detectionMs : 0);
      await cluster.clock.runUntilIdleAsync(drainMs);
      t.is(cluster.clock.pending(), 0, `timers still pending after every node stopped (seed ${w.seed})`);
    },
  );

  register(
    'events',
    'events replay to the member list, carry the previous state and stop when unsubscribed',
    async (t) => {
      const log = new Map<string, MembershipEvent[]>();
      let unsubscribedHeard = 0;
      let unsubscribe = (): void => undefined;
      const w = await world(t, 'events', (cluster) => {
        cluster.watch((observer, event) => {
          let events = log.get(observer.id);
          if (!events) log.set(observer.id, (events = []));
          events.push(event);
        });
        unsubscribe = cluster.membership(cluster.ids[1] ?? cluster.ids[0]!).on(() => {
          unsubscribedHeard++;
        });
      });
      const { cluster } = w;
      await w.converge();
      const victim = w.victim();
      const heardBefore = unsubscribedHeard;
      unsubscribe();
      await cluster.crash(victim);
      if (!skip.has('detect')) await w.seenBy(victim, ['dead'], w.bounds.detectionMs, true);
      else await cluster.advance(10 * w.bounds.periodMs);
      t.is(unsubscribedHeard, heardBefore, `an unsubscribed listener was called (seed ${w.seed})`);
      for (const observer of cluster.runningIds()) {
        const events = log.get(observer) ?? [];
        const last = new Map<string, Member>();
        for (const { member, previous } of events) {
          const before = last.get(member.id);
          t.is(previous, before?.state, `${observer}: wrong previous state for ${member.id} (seed ${w.seed})`);
          if (before) {
            t.false(
              before.state === member.state &&
                before.incarnation === member.incarnation &&
                before.address === member.address &&
                JSON.stringify(before.meta) === JSON.stringify(member.meta),
              `${observer}: an event for ${member.id} without a change (seed ${w.seed})`,
            );
          }
          last.set(member.id, member);
        }
        for (const member of cluster.membership(observer).members()) {
          if (member.id === observer) continue;
          const replayed = last.get(member.id);
          t.truthy(replayed, `${observer} lists ${member.id} but no event announced it (seed ${w.seed})`);
          t.is(replayed?.state, member.state, `${observer}: events and members() disagree on ${member.id}`);
          t.is(replayed?.incarnation, member.incarnation);
        }
      }
    },
  );

  registerClaimChecks({
    claims: options.claims,
    world: (t, check: MembershipClaimCheck) => world(t, check),
    register,
    essential,
    listed,
  });
}
