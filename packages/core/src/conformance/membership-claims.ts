import type { ExecutionContext } from 'ava';
import type { Member, MembershipBounds, MemberState } from '../contracts/membership.js';
import type { SimCluster, SimNodeSpec } from '../sim/cluster.js';

/** The claim checks of the membership suite, by name (for `skip`). */
export const MEMBERSHIP_CLAIM_CHECKS = ['forged-claim', 'refute', 'absurd', 'own-incarnation'] as const;
export type MembershipClaimCheck = (typeof MEMBERSHIP_CLAIM_CHECKS)[number];

/** One claim about a member, made by a node that is not that member. */
export interface ForgedClaim {
  /** Id of the running node whose Rpc sends the claim (a member speaking about someone else). */
  readonly from: string;
  /** Id of the running node meant to hear it. */
  readonly to: string;
  /** Id of the member the claim is about. */
  readonly subject: string;
  /** What the claim says the subject is. */
  readonly state: MemberState;
  /** At which incarnation. */
  readonly incarnation: number;
}

/**
 * How the suite makes a claim about a member in the strategy's own wire
 * format, or why the strategy has none. Every conformance run answers it, so
 * no claim check is ever left out unsaid.
 */
export type MembershipClaims =
  | {
      /** The states this strategy's messages can claim about a member other than their sender. */
      readonly states: readonly MemberState[];
      /**
       * Sends, through `claim.from`'s Rpc, the message of this strategy that
       * makes `claim`: to `claim.to`, or to where the strategy's claims go (a
       * controller). Fire and forget; the suite advances virtual time after.
       */
      forge(cluster: SimCluster, claim: ForgedClaim): void;
    }
  | {
      /** Why no message of this strategy claims anything about a member other than its sender. */
      readonly none: string;
    };

/** What the claim checks need of the suite's simulated world. */
export interface ClaimWorld {
  readonly cluster: SimCluster;
  readonly bounds: MembershipBounds;
  readonly seed: number;
  readonly step: number;
  readonly convergeLimitMs: number;
  views(): Map<string, Map<string, Member>>;
  victim(): string;
  converge(): Promise<number>;
}

export interface ClaimSuite {
  readonly claims: MembershipClaims;
  readonly world: (t: ExecutionContext, check: MembershipClaimCheck) => Promise<ClaimWorld>;
  readonly register: (check: MembershipClaimCheck, title: string, body: (t: ExecutionContext) => Promise<void>) => void;
  readonly essential: (spec: SimNodeSpec) => boolean;
  readonly listed: (spec: SimNodeSpec) => boolean;
}

/**
 * No incarnation moves this far in one run: 2^32 refutations, 136 years of
 * second timestamps, 49 days of millisecond ones. A member seen this far
 * above where it started took a forged number.
 */
const ABSURD_RAISE = 2 ** 32;
/** How far above the known incarnation the own-incarnation check claims: more than any refutation in a run. */
const CLAIM_LEAD = 1_000;
const NEGATIVE: readonly MemberState[] = ['suspect', 'dead', 'left'];

/** Follows one member: every incarnation anyone held it at, against the highest it gave itself. */
class SubjectWatch {
  readonly subject: string;
  /** Events where an observer held the subject above any incarnation the subject itself had. */
  readonly overtaken: string[] = [];
  /** Every time an observer held the subject not alive. */
  readonly doubts: string[] = [];
  /** Highest incarnation seen anywhere, the subject's own included. */
  highest: number;
  own: number;
  readonly #cluster: SimCluster;

  constructor(cluster: SimCluster, subject: string) {
    this.#cluster = cluster;
    this.subject = subject;
    this.own = cluster.membership(subject).self.incarnation;
    this.highest = this.own;
    cluster.watch((observer, { member }) => {
      if (member.id !== subject) return;
      this.#sampleOwn();
      this.highest = Math.max(this.highest, member.incarnation);
      if (observer.id === subject) return;
      if (member.state !== 'alive') this.doubts.push(`${observer.id}: ${member.state}@${member.incarnation}`);
      if (member.incarnation > this.own) {
        this.overtaken.push(
          `${observer.id} held ${subject} ${member.state} at ${member.incarnation} above its own ${this.own}`,
        );
      }
    });
  }

  /** The subject's own incarnation now (and the highest it had). */
  ownNow(): number {
    this.#sampleOwn();
    return this.#cluster.membership(this.subject).self.incarnation;
  }

  #sampleOwn(): void {
    if (!this.#cluster.isRunning(this.subject)) return;
    this.own = Math.max(this.own, this.#cluster.membership(this.subject).self.incarnation);
    this.highest = Math.max(this.highest, this.own);
  }
}

interface Scene {
  readonly w: ClaimWorld;
  readonly subject: string;
  /** A member that is not the subject and not essential: it forges the claims. */
  readonly forger: string;
  /** Another running node (not the subject, the forger when there is no other): it hears them. */
  readonly hearer: string;
  /** The subject's own incarnation before any claim. */
  readonly before: number;
  /** The highest incarnation any member held the subject at before any claim. */
  readonly known: number;
  readonly watch: SubjectWatch;
  /** Virtual time at which the claims were made (when the scene was set). */
  readonly since: number;
  /** Time to be alive everywhere again: bounds.healMs, or the converge limit for a strategy that declares none. */
  readonly recoverMs: number;
  /** Time that must pass without a doubt for a claim to be taken as ignored: a detection, or 10 periods. */
  readonly quietMs: number;
}

/**
 * The claim rules, checked against the Membership contract and the simulated
 * network, through each strategy's `claims` answer:
 *
 * - forged-claim: claims from a member about another (every state the
 *   strategy carries, at the known incarnation) and `reportUnreachable` from
 *   every member evict nobody: the subject is alive everywhere within
 *   `bounds.healMs` and stays so for a detection time;
 * - refute: a member that is told, and whom another member is told, it is
 *   suspect, dead or gone, refutes with a higher incarnation once anyone
 *   held it so, and is alive everywhere at it within `bounds.healMs`;
 * - absurd: claims at 2^53 - 1, to the subject and to another member, move no
 *   view of the subject's incarnation (nor its own) absurdly far;
 * - own-incarnation: claims above the known incarnation never make a member
 *   hold the subject above an incarnation the subject itself had.
 */
export function registerClaimChecks(suite: ClaimSuite): void {
  const { claims, register } = suite;
  if (typeof claims !== 'object' || claims === null || !('forge' in claims || 'none' in claims)) {
    throw new Error('membership conformance: options.claims must say how to forge a claim, or why there is none');
  }
  const forging = 'forge' in claims ? claims : undefined;
  const negative = forging?.states.filter((s) => NEGATIVE.includes(s)) ?? [];

  const scene = async (t: ExecutionContext, check: MembershipClaimCheck): Promise<Scene> => {
    const w = await suite.world(t, check);
    await w.converge();
    const { cluster } = w;
    const subject = w.victim();
    const running = cluster.runningIds().filter((id) => id !== subject);
    const speakers = running.filter((id) => suite.listed(cluster.spec(id)) && !suite.essential(cluster.spec(id)));
    const forger = (speakers.length > 0 ? speakers : running)[0]!;
    const hearer = running.find((id) => id !== forger) ?? forger;
    const views = [...w.views()].filter(([observer]) => observer !== subject);
    const before = cluster.membership(subject).self.incarnation;
    const known = Math.max(before, ...views.map(([, view]) => view.get(subject)?.incarnation ?? 0));
    const { healMs, detectionMs, periodMs } = w.bounds;
    t.log(`claims about ${subject} (own incarnation ${before}) from ${forger}, heard by ${hearer}`);
    return {
      w,
      subject,
      forger,
      hearer,
      before,
      known,
      watch: new SubjectWatch(cluster, subject),
      since: cluster.clock.now(),
      recoverMs: Number.isFinite(healMs) ? healMs : w.convergeLimitMs,
      quietMs: Number.isFinite(detectionMs) ? detectionMs + 2 * periodMs : 10 * periodMs,
    };
  };

  const forge = (s: Scene, to: string, state: MemberState, incarnation: number): void => {
    forging?.forge(s.w.cluster, { from: s.forger, to, subject: s.subject, state, incarnation });
  };

  /** Every running member but the subject sees it alive (above `above`, when given). */
  const aliveEverywhere = (s: Scene, above?: number) => (): boolean => {
    for (const [observer, view] of s.w.views()) {
      if (observer === s.subject) continue;
      const member = view.get(s.subject);
      if (member?.state !== 'alive' || (above !== undefined && member.incarnation <= above)) return false;
    }
    return true;
  };

  /** Waits until the subject is alive everywhere (above `above`), at most `recoverMs` from the claims. */
  const recover = async (t: ExecutionContext, s: Scene, what: string, above?: number): Promise<void> => {
    const left = Math.max(0, s.recoverMs - (s.w.cluster.clock.now() - s.since));
    await s.w.cluster.waitFor(aliveEverywhere(s, above), left, s.w.step).catch((err: unknown) => {
      throw new Error(
        `${s.subject} not alive everywhere${above === undefined ? '' : ` above incarnation ${above}`} ` +
          `within ${s.recoverMs} ms after ${what}; views: ${describe(s)}; doubts: ${s.watch.doubts.join(', ') || 'none'} ` +
          `(seed ${s.w.seed}): ${(err as Error).message}`,
        { cause: err },
      );
    });
    const took = s.w.cluster.clock.now() - s.since;
    t.log(`${s.subject} alive everywhere ${took} ms after ${what} (bound ${s.recoverMs} ms)`);
  };

  const describe = (s: Scene): string =>
    [...s.w.views()]
      .map(([observer, view]) => {
        const m = view.get(s.subject);
        return `${observer}:${m === undefined ? 'absent' : `${m.state}@${m.incarnation}`}`;
      })
      .join(' ');

  /** What holds after every claim check: nobody held the subject above its own incarnation, nobody far off. */
  const settled = (t: ExecutionContext, s: Scene): void => {
    const own = s.watch.ownNow();
    t.deepEqual(s.watch.overtaken, [], `a member raised ${s.subject}'s incarnation for it (seed ${s.w.seed})`);
    t.true(
      s.watch.highest - s.before < ABSURD_RAISE,
      `${s.subject} was held at incarnation ${s.watch.highest}, from ${s.before} (seed ${s.w.seed})`,
    );
    for (const [observer, view] of s.w.views()) {
      const member = view.get(s.subject);
      if (observer === s.subject || member === undefined) continue;
      t.true(member.incarnation <= own, `${observer} holds ${s.subject} at ${member.incarnation} above its own ${own}`);
    }
    t.log(`${s.subject}: incarnation ${s.before} -> ${own}; doubts on the way: ${s.watch.doubts.join(', ') || 'none'}`);
  };

  register('forged-claim', 'a claim from a member about another, or reportUnreachable, evicts nobody', async (t) => {
    const s = await scene(t, 'forged-claim');
    if (forging) {
      for (const state of forging.states) forge(s, s.hearer, state, s.known);
    } else {
      t.log(`no forged message: ${'none' in claims ? claims.none : ''}`);
    }
    let reported = 0;
    for (const id of s.w.cluster.runningIds()) {
      const membership = s.w.cluster.membership(id);
      if (id === s.subject || membership.reportUnreachable === undefined) continue;
      membership.reportUnreachable(s.subject);
      reported++;
    }
    t.log(`${forging?.states.join(', ') ?? 'no'} claims forged; ${reported} members reported ${s.subject} unreachable`);
    await s.w.cluster.advance(s.w.bounds.periodMs);
    await recover(t, s, 'the claims');
    await s.w.cluster.advance(s.quietMs);
    t.true(
      aliveEverywhere(s)(),
      `${s.subject} not alive everywhere ${s.quietMs} ms on: ${describe(s)} (seed ${s.w.seed})`,
    );
    settled(t, s);
  });

  register(
    'refute',
    'a member held suspect, dead or gone refutes and is alive everywhere at a higher incarnation',
    async (t) => {
      if (negative.length === 0) {
        t.log(
          forging
            ? `the strategy's messages claim no suspicion, death or departure about another member (${forging.states.join(', ')})`
            : `not applicable: ${'none' in claims ? claims.none : ''}`,
        );
        t.pass();
        return;
      }
      const s = await scene(t, 'refute');
      for (const state of negative) {
        forge(s, s.subject, state, s.known);
        forge(s, s.hearer, state, s.known);
      }
      await s.w.cluster.advance(s.w.bounds.periodMs);
      // A member somebody held in doubt must refute; one that nobody doubted has nothing to refute.
      const above = (): number | undefined => (s.watch.doubts.length > 0 ? s.before : undefined);
      const left = Math.max(0, s.recoverMs - (s.w.cluster.clock.now() - s.since));
      await s.w.cluster
        .waitFor(() => aliveEverywhere(s, above())(), left, s.w.step)
        .catch((err: unknown) => {
          throw new Error(
            `${s.subject} not alive everywhere above incarnation ${s.before} within ${s.recoverMs} ms of being ` +
              `held ${s.watch.doubts.join(', ')}; views: ${describe(s)} (seed ${s.w.seed})`,
            { cause: err },
          );
        });
      const took = s.w.cluster.clock.now() - s.since;
      await s.w.cluster.advance(s.quietMs);
      t.true(aliveEverywhere(s, above())(), `${s.subject} not alive everywhere on: ${describe(s)} (seed ${s.w.seed})`);
      if (s.watch.doubts.length > 0) {
        t.log(`${s.subject} alive everywhere at a higher incarnation ${took} ms on (bound ${s.recoverMs} ms)`);
        t.true(s.watch.ownNow() > s.before, `${s.subject} did not raise its own incarnation (seed ${s.w.seed})`);
      } else {
        t.log(`no member held ${s.subject} in doubt: nothing to refute`);
      }
      settled(t, s);
    },
  );

  register('absurd', 'claims at incarnation 2^53 - 1 are refused', async (t) => {
    if (!forging) {
      t.log(`not applicable: ${'none' in claims ? claims.none : ''}`);
      t.pass();
      return;
    }
    const s = await scene(t, 'absurd');
    for (const state of forging.states) {
      forge(s, s.hearer, state, Number.MAX_SAFE_INTEGER);
      forge(s, s.subject, state, Number.MAX_SAFE_INTEGER);
    }
    await s.w.cluster.advance(s.w.bounds.periodMs);
    await recover(t, s, `claims at ${Number.MAX_SAFE_INTEGER}`);
    await s.w.cluster.advance(s.quietMs);
    t.true(
      aliveEverywhere(s)(),
      `${s.subject} not alive everywhere ${s.quietMs} ms on: ${describe(s)} (seed ${s.w.seed})`,
    );
    settled(t, s);
  });

  register(
    'own-incarnation',
    'a claim above the known incarnation makes no member hold another above its own',
    async (t) => {
      if (negative.length === 0) {
        t.log(
          forging
            ? `the strategy's messages claim no suspicion, death or departure about another member (${forging.states.join(', ')})`
            : `not applicable: ${'none' in claims ? claims.none : ''}`,
        );
        t.pass();
        return;
      }
      const s = await scene(t, 'own-incarnation');
      for (const state of negative) forge(s, s.hearer, state, s.known + CLAIM_LEAD);
      await s.w.cluster.advance(s.w.bounds.periodMs);
      await recover(t, s, `claims ${CLAIM_LEAD} above its incarnation`);
      await s.w.cluster.advance(s.quietMs);
      settled(t, s);
    },
  );
}
