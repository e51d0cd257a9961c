import type { ExecutionContext, TestFn } from 'ava';
import type { Clock } from '../contracts/clock.js';
import type { Logger } from '../contracts/logger.js';
import { silentLogger } from '../contracts/logger.js';
import type { Membership, ViewParameters } from '../contracts/membership.js';
import type { Move, Placement, ReplicaSet } from '../contracts/placement.js';
import type { Random } from '../contracts/random.js';
import type { Rpc } from '../contracts/rpc.js';
import type { NodeInfo } from '../plugin.js';
import { SeededRandom } from '../sim/seeded-random.js';
import { VirtualClock } from '../sim/virtual-clock.js';
import { PlacementWorld } from './placement-world.js';
import { checkViewParameters } from './placement-parameters.js';
import { drawingProblems } from './placement-drawing.js';
import { checkRoutes } from './placement-routes.js';
import type { RoutesKeyHash } from './placement-routes.js';

export type { RoutesKeyHash } from './placement-routes.js';

export { PlacementWorld, type WorldMemberSpec } from './placement-world.js';

/** The checks of the suite, by name (for `skip`). */
export const PLACEMENT_CHECKS = [
  'deterministic',
  'replicas',
  'dead',
  'leave',
  'admit',
  'plan',
  'balance',
  'join',
  'epoch',
  'empty',
  'lifecycle',
  'parameters',
  'routes',
  'drawing',
] as const;
export type PlacementCheck = (typeof PLACEMENT_CHECKS)[number];

/** What the factory of the placement under test receives: one node's components. */
export interface PlacementConformanceComponents {
  readonly node: NodeInfo;
  readonly membership: Membership;
  readonly rpc: Rpc;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
}

/** What a placement strategy promises about itself; the suite holds it to each figure. */
export interface PlacementBounds {
  /** Replicas of a key when there are at least this many data members (else every data member). */
  readonly replicationFactor: number;
  /**
   * Largest max/mean of key copies per data member, by data member count.
   * Default `{ 10: 1.15, 100: 1.25 }`; an empty object skips the assertion (figures are still logged).
   */
  readonly balance?: Readonly<Record<number, number>>;
  /**
   * When one member joins N, the fraction of key copies that land on a new
   * member is at most `joinMoved / (N + 1)`. Undefined: measured and logged only.
   */
  readonly joinMoved?: number;
  /** When one of N members leaves, the fraction of key copies that move is at most `leaveMoved / N`. Undefined: logged only. */
  readonly leaveMoved?: number;
}

export interface PlacementConformanceOptions {
  /** Names the strategy in every test title: `placement '<name>': ...`. */
  readonly name: string;
  /**
   * Builds a new, not yet started placement for one node. The suite calls it
   * once per node it simulates, with a membership it scripts (a
   * PlacementWorld): storage members, a member without a role (counts as
   * storage) and a `frontend` member, which must never be a replica.
   */
  readonly create: (components: PlacementConformanceComponents) => Placement | Promise<Placement>;
  readonly bounds: PlacementBounds;
  /** Keys of the balance and movement checks. Default 100,000. */
  readonly keys?: number;
  /** Checks that do not apply (e.g. a placement that ignores the member list). */
  readonly skip?: readonly PlacementCheck[];
  /**
   * View parameters the placement takes (`checkViewParameters`), each a set
   * it must accept at 10 data members and place by: the `parameters` check
   * plans a change to each and back. Omitted or empty: it takes none, and
   * the check holds it to refusing them.
   */
  readonly parameters?: readonly ViewParameters[];
  /**
   * The key hashes a routing table may name beyond `sha1` and `md5` (which
   * core computes), e.g. xxhash32, so the `routes` check can compare keys.
   * Omitted: such a table's shape is checked, its keys are not.
   */
  readonly keyHash?: RoutesKeyHash;
}

const DEFAULT_BALANCE: Readonly<Record<number, number>> = Object.freeze({ 10: 1.15, 100: 1.25 });
const DEFAULT_KEYS = 100_000;
/** Keys compared between instances or against a plan: enough to meet every slot of a 100-member ring. */
const SAMPLE_KEYS = 10_000;
/** Data members of the cluster most checks use. */
const CLUSTER = 10;
const FRONTEND = 'f01';
/** The member announcing no role: it must count as storage. */
const ROLELESS = 'm010';

/** Member ids m001, m002...: zero-padded so that id order is numeric order. */
export function placementMemberIds(count: number, prefix = 'm'): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i + 1).padStart(3, '0')}`);
}

/** `count` keys: mostly ASCII, with multi-byte and astral characters mixed in. */
export function placementKeys(count: number): string[] {
  return Array.from({ length: count }, (_, i) =>
    i % 10 === 7 ? `ключ-${i}` : i % 10 === 9 ? `🔑/${i}/é` : `key-${i}`,
  );
}

/**
 * The contract tests every Placement runs unchanged, over scripted member
 * lists (no network, no clock), so each strategy's run takes seconds:
 *
 * - deterministic: two nodes with the same members agree on every key;
 * - replicas: distinct, min(factor, data members) of them, data members only
 *   (never a frontend; a member without a role counts as storage), fallbacks
 *   disjoint from them, quorums within the replica count, a conditional write's
 *   quorum at least the write quorum and a majority of the replicas (two nodes
 *   that each take themselves for a key's primary meet on a replica), current
 *   Member objects;
 * - dead: suspect and dead members stay replicas, flagged with their state;
 * - leave: a member that left, or was forgotten without an event, holds nothing;
 * - admit: every node says `own` exactly for the keys it is a replica of;
 * - plan: for every sampled key the move containing it goes from its replicas
 *   before to its replicas after; unchanged keys are in no move; plan is pure;
 * - balance: max/mean key copies per member within `bounds.balance`;
 * - join: key copies moved when one member joins (and leaves) within the bounds;
 * - epoch: equal on nodes that see the same data members (reached by any history),
 *   changes when data members come or go, not on state changes, is stamped on sets;
 * - empty: no data member means KVMESH_ERR_PLACEMENT_EMPTY, and admit still answers;
 * - lifecycle: start/stop twice are harmless; stop unsubscribes;
 * - parameters: a placement that takes view parameters accepts none and
 *   the declared ones, refuses an unknown one with
 *   KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID, and a change of parameters
 *   alone moves exactly the keys whose replicas change and changes the
 *   epoch; one that takes none ignores them in `plan`;
 * - routes: a routing table, when the placement states one, has its epoch,
 *   names data members only and gives every key the replicas `locate` gives.
 *
 * Call it from an ava test file:
 * `runPlacementConformance(test, { name: 'ring', create: (c) => plugin.create(opts)(c), bounds })`.
 */
export function runPlacementConformance(test: TestFn, options: PlacementConformanceOptions): void {
  const prefix = `placement '${options.name}'`;
  const skip = new Set(options.skip ?? []);
  const bounds = options.bounds;
  const keyCount = options.keys ?? DEFAULT_KEYS;
  let keyCache: string[] | undefined;
  const allKeys = (): string[] => (keyCache ??= placementKeys(Math.max(keyCount, SAMPLE_KEYS)));
  const sample = (count = SAMPLE_KEYS): string[] => allKeys().slice(0, count);
  const check = (name: PlacementCheck, title: string, body: (t: ExecutionContext) => Promise<void>): void => {
    (skip.has(name) ? test.skip : test)(`${prefix}: ${title}`, body);
  };

  /** A started placement on node `id` of `world`, stopped at teardown. */
  const build = async (t: ExecutionContext, world: PlacementWorld, id: string): Promise<Placement> => {
    const placement = await options.create({
      node: world.node(id),
      membership: world.membership(id),
      rpc: world.rpc(id),
      clock: new VirtualClock(),
      random: new SeededRandom(1),
      logger: silentLogger,
    });
    t.teardown(async () => {
      await placement.stop?.();
    });
    await placement.start?.();
    return placement;
  };

  /** A world of `data` storage members (the last without a role) and one frontend. */
  const cluster = (data = CLUSTER): PlacementWorld => {
    const ids = placementMemberIds(data);
    const world = PlacementWorld.of(ids.slice(0, -1));
    world.add(ids.at(-1)!, { role: ids.at(-1) === ROLELESS ? null : 'storage' });
    world.add(FRONTEND, { role: 'frontend' });
    return world;
  };

  const dataIds = (world: PlacementWorld): Set<string> =>
    new Set(
      world
        .members()
        .filter((m) => m.state !== 'left' && (m.meta['role'] ?? 'storage') === 'storage')
        .map((m) => m.id),
    );

  check('deterministic', 'two nodes with the same members place every key alike', async (t) => {
    const a = await build(t, cluster(), 'm001');
    // The same members reached by another history: added in reverse order, one of them leaving and coming back.
    const ids = placementMemberIds(CLUSTER);
    const other = new PlacementWorld();
    other.add(FRONTEND, { role: 'frontend' });
    for (const id of [...ids].reverse()) other.add(id, { role: id === ROLELESS ? null : 'storage' });
    const b = await build(t, other, 'm002');
    other.setState('m003', 'left');
    other.add('m003');
    t.is(a.epoch, b.epoch, 'nodes that see the same data members have the same epoch');
    for (const key of sample()) {
      const [x, y] = [await a.locate(key, { intent: 'read' }), await b.locate(key, { intent: 'write' })];
      if (!sameSet(x, y)) {
        t.fail(`key ${JSON.stringify(key)}: node m001 says ${describeSet(x)}, node m002 says ${describeSet(y)}`);
        return;
      }
    }
    t.pass();
  });

  check('replicas', 'replicas are distinct data members, as many as the factor allows', async (t) => {
    for (const data of [1, 2, bounds.replicationFactor, CLUSTER]) {
      const world = cluster(data);
      const placement = await build(t, world, 'm001');
      const fromFrontend = await build(t, world, FRONTEND);
      const holders = dataIds(world);
      const expected = Math.min(bounds.replicationFactor, holders.size);
      for (const key of sample(2_000)) {
        const set = await placement.locate(key, { intent: 'write' });
        const problem =
          setProblem(set, holders, expected, world) ??
          frontendProblem(set, await fromFrontend.locate(key, { intent: 'read' }));
        if (problem !== undefined) {
          t.fail(`${data} data members, key ${JSON.stringify(key)}: ${problem} (${describeSet(set)})`);
          return;
        }
      }
    }
    t.pass();
  });

  check('dead', 'suspect and dead members stay replicas, flagged with their state', async (t) => {
    const world = cluster();
    const placement = await build(t, world, 'm001');
    const keys = sample(5_000);
    const before = await locateAll(placement, keys);
    world.setState('m002', 'dead');
    world.setState('m003', 'suspect');
    const flagged = await locateAll(placement, keys);
    let seenDead = 0;
    for (const [i, key] of keys.entries()) {
      t.deepEqual(replicaIds(flagged[i]!), replicaIds(before[i]!), `key ${JSON.stringify(key)} moved on a crash`);
      for (const m of flagged[i]!.replicas) {
        const state = world.get(m.id)!.state;
        if (m.state !== state) {
          t.fail(`key ${JSON.stringify(key)}: replica ${m.id} is reported ${m.state}, but it is ${state}`);
          return;
        }
        if (m.state === 'dead') seenDead++;
      }
    }
    t.true(seenDead > 0, 'the dead member is still a replica of some keys');
    world.setState('m002', 'alive');
    const revived = await locateAll(placement, keys);
    t.true(
      revived.every(
        (s, i) =>
          sameList(replicaIds(s), replicaIds(before[i]!)) &&
          s.replicas.every((m) => m.id !== 'm002' || m.state === 'alive'),
      ),
      'a member coming back alive holds the same keys, reported alive',
    );
  });

  check('leave', 'a member that left or was forgotten holds no key', async (t) => {
    const world = cluster();
    const placement = await build(t, world, 'm001');
    const keys = sample(5_000);
    world.setState('m004', 'left');
    world.forget('m005');
    const holders = dataIds(world);
    const expected = Math.min(bounds.replicationFactor, holders.size);
    for (const key of keys) {
      const set = await placement.locate(key, { intent: 'read' });
      const problem = setProblem(set, holders, expected, world);
      if (problem !== undefined) {
        t.fail(`after m004 left and m005 was forgotten, key ${JSON.stringify(key)}: ${problem} (${describeSet(set)})`);
        return;
      }
    }
    t.pass();
  });

  check('admit', 'every node admits exactly the keys it is a replica of', async (t) => {
    const world = cluster();
    const ids = [...placementMemberIds(CLUSTER), FRONTEND];
    const nodes = new Map<string, Placement>();
    for (const id of ids) nodes.set(id, await build(t, world, id));
    const verify = async (stage: string): Promise<boolean> => {
      const locator = nodes.get('m001')!;
      for (const key of sample(2_000)) {
        const set = await locator.locate(key, { intent: 'write' });
        const owners = replicaIds(set);
        for (const [id, placement] of nodes) {
          const admission = placement.admit(key, 'write', set.epoch);
          const own = owners.includes(id);
          const problem =
            own && admission.kind !== 'own'
              ? `is a replica but answers ${admission.kind}`
              : !own && admission.kind === 'own'
                ? 'is no replica but answers own'
                : admission.kind === 'not-owner' && admission.epoch !== placement.epoch
                  ? `answers not-owner at epoch ${admission.epoch}, its placement is at ${placement.epoch}`
                  : admission.kind === 'not-owner' &&
                      admission.owners !== undefined &&
                      !sameList(
                        admission.owners.map((m) => m.id),
                        owners,
                      )
                    ? `names owners ${admission.owners.map((m) => m.id).join(',')}, locate says ${owners.join(',')}`
                    : undefined;
          if (problem !== undefined) {
            t.fail(`${stage}, key ${JSON.stringify(key)}: node ${id} ${problem}`);
            return false;
          }
        }
      }
      return true;
    };
    if (!(await verify('initial view'))) return;
    world.add('m005x');
    nodes.set('m005x', await build(t, world, 'm005x'));
    world.setState('m007', 'left');
    if (!(await verify('after m005x joined and m007 left'))) return;
    t.pass();
  });

  check('plan', 'plan moves every key from its replicas before to its replicas after, and nothing else', async (t) => {
    const ids = placementMemberIds(CLUSTER);
    const base = cluster();
    const placement = await build(t, base, 'm001');
    const epoch = placement.epoch;
    const keys = sample(5_000);
    const located = await locateAll(placement, keys);
    const frontendOnly = (): PlacementWorld => PlacementWorld.of([FRONTEND], { role: 'frontend' });
    // [label, world before, change making the world after]; the world before is the full cluster unless given.
    const scenarios: [string, (() => PlacementWorld) | undefined, (w: PlacementWorld) => void][] = [
      ['one member joins', undefined, (w) => w.add('m005x')],
      ['one member leaves', undefined, (w) => w.setState('m004', 'left')],
      ['one member is forgotten', undefined, (w) => w.forget('m002')],
      ['two join and one leaves', undefined, (w) => (w.add('m000'), w.add('m011'), w.setState(ids[5]!, 'left'))],
      ['a frontend joins', undefined, (w) => w.add('f02', { role: 'frontend' })],
      ['a member crashes', undefined, (w) => w.setState('m003', 'dead')],
      ['half the members leave', undefined, (w) => ids.slice(0, CLUSTER / 2).forEach((id) => w.setState(id, 'left'))],
      ['the first members arrive', frontendOnly, (w) => ids.slice(0, 3).forEach((id) => w.add(id))],
      ['every data member leaves', undefined, (w) => ids.forEach((id) => w.setState(id, 'left'))],
    ];
    const counts: string[] = [];
    for (const [label, start, change] of scenarios) {
      const beforeWorld = (start ?? cluster)();
      const world = (start ?? cluster)();
      change(world);
      const after = world.members();
      const moves = placement.plan(beforeWorld.members(), after);
      counts.push(`${label}: ${moves.length}`);
      const truthBefore = await build(t, beforeWorld, FRONTEND);
      const truthAfter = await build(t, world, FRONTEND);
      const problem = await planProblem(moves, keys, truthBefore, truthAfter);
      if (problem !== undefined) {
        t.fail(`${label}: ${problem}`);
        return;
      }
      t.deepEqual(placement.plan(after, after), [], `${label}: plan(after, after) moves nothing`);
    }
    t.log(`${prefix}: moves per plan: ${counts.join('; ')}`);
    t.is(placement.epoch, epoch, 'plan does not change the placement');
    const again = await locateAll(placement, keys);
    t.true(
      again.every((s, i) => sameSet(s, located[i]!)),
      'plan does not change where keys live',
    );
  });

  const sizes =
    Object.keys(bounds.balance ?? DEFAULT_BALANCE).length > 0
      ? Object.keys(bounds.balance ?? DEFAULT_BALANCE).map(Number)
      : [CLUSTER, 100];
  for (const size of sizes) {
    check('balance', `key copies per member stay within the declared max/mean at ${size} members`, async (t) => {
      const limit = (bounds.balance ?? DEFAULT_BALANCE)[size];
      const world = PlacementWorld.of(placementMemberIds(size));
      const placement = await build(t, world, 'm001');
      const keys = allKeys().slice(0, keyCount);
      const copies = new Map<string, number>();
      const primaries = new Map<string, number>();
      let total = 0;
      for (const key of keys) {
        const set = await placement.locate(key, { intent: 'read' });
        for (const m of set.replicas) copies.set(m.id, (copies.get(m.id) ?? 0) + 1);
        primaries.set(set.replicas[0]!.id, (primaries.get(set.replicas[0]!.id) ?? 0) + 1);
        total += set.replicas.length;
      }
      const ratio = maxOverMean(copies, size, total);
      const primaryRatio = maxOverMean(primaries, size, keys.length);
      t.log(
        `${prefix}: ${size} members, ${keys.length} keys: max/mean key copies ${ratio.toFixed(3)} (primaries ${primaryRatio.toFixed(3)})`,
      );
      t.is(copies.size, size, 'every member holds some keys');
      if (limit !== undefined) t.true(ratio <= limit, `max/mean ${ratio.toFixed(3)} exceeds the declared ${limit}`);
    });
  }

  for (const size of [CLUSTER, 100]) {
    check('join', `few key copies move when one member joins or leaves ${size}`, async (t) => {
      const world = PlacementWorld.of(placementMemberIds(size));
      const placement = await build(t, world, 'm001');
      const keys = allKeys().slice(0, keyCount);
      const before = await locateAll(placement, keys);
      world.add('m005x');
      const joined = await locateAll(placement, keys);
      const joinFraction = movedFraction(before, joined);
      // 1 when only the newcomer gained copies (nothing moved between old members).
      const joinerShare = joined.reduce((n, s) => n + (s.replicas.some((m) => m.id === 'm005x') ? 1 : 0), 0);
      const joinOverhead = (joinFraction * copiesOf(joined)) / Math.max(1, joinerShare);
      world.setState('m005x', 'left');
      world.setState('m003', 'left');
      const left = await locateAll(placement, keys);
      const leaveFraction = movedFraction(before, left);
      t.log(
        `${prefix}: ${size} → ${size + 1} members moves ${(joinFraction * 100).toFixed(2)}% of key copies = ${(joinFraction * (size + 1)).toFixed(3)}/(N+1), ${joinOverhead.toFixed(2)}× what the newcomer holds; ${size} → ${size - 1} moves ${(leaveFraction * 100).toFixed(2)}% = ${(leaveFraction * size).toFixed(3)}/N`,
      );
      if (bounds.joinMoved !== undefined) {
        t.true(
          joinFraction <= bounds.joinMoved / (size + 1),
          `a join moved ${(joinFraction * (size + 1)).toFixed(3)}/(N+1) of key copies, above the declared ${bounds.joinMoved}/(N+1)`,
        );
      }
      if (bounds.leaveMoved !== undefined) {
        t.true(
          leaveFraction <= bounds.leaveMoved / size,
          `a leave moved ${(leaveFraction * size).toFixed(3)}/N of key copies, above the declared ${bounds.leaveMoved}/N`,
        );
      }
      t.pass();
    });
  }

  check(
    'epoch',
    'the epoch names the data members: it changes when they come or go, not on state changes',
    async (t) => {
      const world = cluster();
      const placement = await build(t, world, 'm001');
      const start = placement.epoch;
      let last = start;
      t.true(Number.isInteger(last) && last > 0 && last <= 0xffffffff, 'the epoch is a positive 32-bit integer');
      t.is((await placement.locate('k', { intent: 'read' })).epoch, last, 'replica sets carry the current epoch');
      const seen = new Map<number, string>([[last, 'the start']]);
      const steps: [string, () => void, 'changes' | 'keeps' | 'returns'][] = [
        ['a member joins', () => world.add('m005x'), 'changes'],
        ['a member crashes', () => world.setState('m002', 'dead'), 'keeps'],
        ['it comes back', () => world.setState('m002', 'alive'), 'keeps'],
        ['a frontend joins', () => world.add('f02', { role: 'frontend' }), 'keeps'],
        ['the member that joined leaves', () => world.setState('m005x', 'left'), 'returns'],
        ['a member is forgotten', () => world.forget('m004'), 'changes'],
      ];
      for (const [label, change, expect] of steps) {
        change();
        const now = placement.epoch;
        if (expect === 'keeps') t.is(now, last, `${label}: the epoch stays ${last}`);
        else if (expect === 'changes') t.false(seen.has(now), `${label}: a new epoch (${last} → ${now})`);
        else t.is(now, start, `${label}: back to the members of the start, back to their epoch`);
        t.is((await placement.locate('k', { intent: 'read' })).epoch, now, `${label}: replica sets carry the epoch`);
        seen.set(now, label);
        last = now;
      }
    },
  );

  check('empty', 'with no data member locate fails with PLACEMENT_EMPTY and admit still answers', async (t) => {
    const world = PlacementWorld.of([FRONTEND], { role: 'frontend' });
    const placement = await build(t, world, FRONTEND);
    const err = await t.throwsAsync(placement.locate('k', { intent: 'read' }));
    t.is((err as { code?: string } | undefined)?.code, 'KVMESH_ERR_PLACEMENT_EMPTY');
    t.not(placement.admit('k', 'read', placement.epoch).kind, 'own');
    world.add('m001');
    t.deepEqual(replicaIds(await placement.locate('k', { intent: 'read' })), ['m001']);
  });

  check(
    'parameters',
    'view parameters are checked, refused when unknown, and a change of them alone moves exactly the keys whose replicas change',
    (t) =>
      checkViewParameters(t, {
        parameters: options.parameters ?? [],
        members: CLUSTER,
        world: () => cluster(),
        build: (world, id) => build(t, world, id),
        keys: sample(),
        prefix,
      }),
  );

  check('routes', 'a routing table, when stated, gives every key the replicas locate gives', async (t) => {
    const world = cluster();
    const placement = await build(t, world, 'm001');
    await checkRoutes(t, {
      placement,
      keys: sample(2_000),
      holders: () => dataIds(world),
      change: () => void world.add(placementMemberIds(CLUSTER + 1).at(-1)!),
      keyHash: options.keyHash,
      prefix,
    });
  });

  check('drawing', 'describe() says how the dashboard draws it, naming only members', async (t) => {
    const world = cluster();
    const placement = await build(t, world, 'm001');
    const ids = new Set(world.members().map((m) => m.id));
    t.deepEqual(drawingProblems(placement.describe().drawing, ids), []);
    world.add(placementMemberIds(CLUSTER + 1).at(-1)!);
    t.deepEqual(
      drawingProblems(placement.describe().drawing, new Set(world.members().map((m) => m.id))),
      [],
      'after a view change',
    );
  });

  check('lifecycle', 'start and stop twice are harmless, and stop unsubscribes from membership', async (t) => {
    const world = cluster();
    const placement = await options.create({
      node: world.node('m001'),
      membership: world.membership('m001'),
      rpc: world.rpc('m001'),
      clock: new VirtualClock(),
      random: new SeededRandom(1),
      logger: silentLogger,
    });
    await placement.start?.();
    await placement.start?.();
    t.true(world.listenerCount('m001') <= 1, 'a second start subscribes no second time');
    const set = await placement.locate('k', { intent: 'read' });
    t.true(set.replicas.length > 0);
    t.true(Number.isInteger(set.hops) && set.hops >= 0, 'a replica set says how many routing hops it took');
    t.is(typeof placement.admit('k', 'read', set.epoch).kind, 'string', 'admit answers synchronously');
    t.is(typeof placement.describe(), 'object');
    t.notThrows(() => JSON.stringify(placement.describe()), 'describe is JSON');
    await placement.stop?.();
    await placement.stop?.();
    t.is(world.listenerCount('m001'), 0, 'stop unsubscribed');
  });
}

async function locateAll(placement: Placement, keys: readonly string[]): Promise<ReplicaSet[]> {
  const out: ReplicaSet[] = [];
  for (const key of keys) out.push(await placement.locate(key, { intent: 'read' }));
  return out;
}

function replicaIds(set: ReplicaSet): string[] {
  return set.replicas.map((m) => m.id);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return sameList([...a].sort(), [...b].sort());
}

/** Same replicas (in order), fallbacks and quorums. */
function sameSet(a: ReplicaSet, b: ReplicaSet): boolean {
  return (
    sameList(replicaIds(a), replicaIds(b)) &&
    sameList(
      a.fallbacks.map((m) => m.id),
      b.fallbacks.map((m) => m.id),
    ) &&
    a.writeQuorum === b.writeQuorum &&
    a.conditionalWriteQuorum === b.conditionalWriteQuorum &&
    a.readQuorum === b.readQuorum
  );
}

function describeSet(set: ReplicaSet): string {
  const fallbacks = set.fallbacks.length > 0 ? ` fallbacks [${set.fallbacks.map((m) => m.id).join(',')}]` : '';
  return `replicas [${replicaIds(set).join(',')}]${fallbacks} W=${set.writeQuorum} CW=${set.conditionalWriteQuorum} R=${set.readQuorum}`;
}

/** What is wrong with one replica set, or undefined. */
function setProblem(
  set: ReplicaSet,
  holders: ReadonlySet<string>,
  expected: number,
  world: PlacementWorld,
): string | undefined {
  const ids = replicaIds(set);
  const fallbacks = set.fallbacks.map((m) => m.id);
  if (new Set(ids).size !== ids.length) return 'a replica is listed twice';
  if (ids.length !== expected) return `${ids.length} replicas, expected ${expected}`;
  const stranger = [...ids, ...fallbacks].find((id) => !holders.has(id));
  if (stranger !== undefined) return `${stranger} holds data but is not a data member in the view`;
  if (new Set(fallbacks).size !== fallbacks.length) return 'a fallback is listed twice';
  if (fallbacks.some((id) => ids.includes(id))) return 'a fallback is also a replica';
  if (!(set.writeQuorum >= 1 && set.writeQuorum <= ids.length))
    return `writeQuorum ${set.writeQuorum} out of 1..${ids.length}`;
  if (!(set.readQuorum >= 1 && set.readQuorum <= ids.length))
    return `readQuorum ${set.readQuorum} out of 1..${ids.length}`;
  const conditional = conditionalQuorumProblem(set);
  if (conditional !== undefined) return conditional;
  for (const m of [...set.replicas, ...set.fallbacks]) {
    const current = world.get(m.id);
    if (current !== undefined && m.state !== current.state)
      return `${m.id} is reported ${m.state} but is ${current.state}`;
  }
  return undefined;
}

/**
 * What is wrong with a replica set's `conditionalWriteQuorum`, or undefined:
 * it must lie between the write quorum and the replica count and be a
 * majority of the replicas, so that two nodes that name this set and each
 * take themselves for the key's primary meet on a replica. `routed`: nodes
 * may name different sets for one key at once (a routed placement), so it
 * must be every replica. For the tests of placements that cannot run the
 * whole suite (routed ones) too.
 */
export function conditionalQuorumProblem(set: ReplicaSet, routed = false): string | undefined {
  const n = set.replicas.length;
  const quorum = set.conditionalWriteQuorum;
  if (!Number.isInteger(quorum) || quorum < set.writeQuorum || quorum > n)
    return `conditionalWriteQuorum ${String(quorum)} out of ${set.writeQuorum}..${n} (writeQuorum..replicas)`;
  if (n > 0 && 2 * quorum <= n)
    return `conditionalWriteQuorum ${quorum} is not a majority of ${n} replicas: two primaries could both decide a compare-and-set`;
  if (routed && quorum !== n)
    return `conditionalWriteQuorum ${quorum} of ${n} replicas: nodes of a routed placement may name different sets for one key, whose quorums meet only when every replica is needed`;
  return undefined;
}

/** A frontend's placement must answer like a data member's. */
function frontendProblem(fromData: ReplicaSet, fromFrontend: ReplicaSet): string | undefined {
  return sameSet(fromData, fromFrontend) ? undefined : `the frontend places it at ${describeSet(fromFrontend)}`;
}

/** What is wrong with a plan against where the keys really live before and after, or undefined. */
export async function planProblem(
  moves: readonly Move[],
  keys: readonly string[],
  before: Placement,
  after: Placement,
): Promise<string | undefined> {
  const idle = moves.find((m) => sameMembers(m.from, m.to));
  if (idle !== undefined) return `move '${idle.range}' goes from [${idle.from.join(',')}] to the same members`;
  let changed = 0;
  for (const key of keys) {
    const from = await holders(before, key);
    const to = await holders(after, key);
    const containing = moves.filter((m) => m.contains(key));
    const moved = !sameMembers(from, to);
    if (moved) changed++;
    if (moved && containing.length !== 1) {
      return `key ${JSON.stringify(key)} goes from [${from.join(',')}] to [${to.join(',')}] but ${containing.length} moves contain it`;
    }
    if (!moved && containing.length > 0) {
      return `key ${JSON.stringify(key)} stays on [${from.join(',')}] but move '${containing[0]!.range}' contains it`;
    }
    const move = containing[0];
    if (move !== undefined && !(sameMembers(move.from, from) && sameMembers(move.to, to))) {
      return `key ${JSON.stringify(key)} goes from [${from.join(',')}] to [${to.join(',')}] but its move '${move.range}' says [${move.from.join(',')}] → [${move.to.join(',')}]`;
    }
  }
  if (changed === 0 && moves.length > 0) return `no sampled key changes replicas, yet ${moves.length} moves`;
  return undefined;
}

/** The key's replica ids, none when the view has no data member. */
async function holders(placement: Placement, key: string): Promise<string[]> {
  try {
    return replicaIds(await placement.locate(key, { intent: 'read' }));
  } catch (err) {
    if ((err as { code?: unknown }).code === 'KVMESH_ERR_PLACEMENT_EMPTY') return [];
    throw err;
  }
}

/** Largest per-member count over the mean (members that hold nothing count as 0). */
function maxOverMean(counts: ReadonlyMap<string, number>, members: number, total: number): number {
  return Math.max(...counts.values()) / (total / members);
}

function copiesOf(sets: readonly ReplicaSet[]): number {
  return sets.reduce((n, s) => n + s.replicas.length, 0);
}

/** Fraction of the key copies after that are on a member that did not hold the key before. */
function movedFraction(before: readonly ReplicaSet[], after: readonly ReplicaSet[]): number {
  let moved = 0;
  let total = 0;
  for (let i = 0; i < after.length; i++) {
    const had = new Set(replicaIds(before[i]!));
    for (const m of after[i]!.replicas) if (!had.has(m.id)) moved++;
    total += after[i]!.replicas.length;
  }
  return moved / total;
}
