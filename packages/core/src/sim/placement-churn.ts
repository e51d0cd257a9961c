import type { ReplicaSet } from '../contracts/placement.js';
import type { CopyModel } from './copy-model.js';
import type { SimNode } from './placement-nodes.js';
import type { ChurnFigures, LookupFigures } from './placement-sim-types.js';
import type { SeededRandom } from './seeded-random.js';
import { round } from './sim-figures.js';
import type { VirtualClock } from './virtual-clock.js';

/** What the churn phase uses of its run. */
export interface ChurnHost {
  readonly clock: VirtualClock;
  readonly random: SeededRandom;
  readonly nodes: readonly SimNode[];
  node(id: string): SimNode | undefined;
  readonly copies: CopyModel;
  readonly periodMs: number;
  /** `count` lookups at once from random running nodes (for `keys` when given, else random ones). */
  lookups(count: number, keys?: readonly string[]): Promise<LookupFigures & { sets: (ReplicaSet | undefined)[] }>;
  /** Awaits `promise` while moving virtual time. */
  drive<T>(promise: Promise<T>): Promise<T>;
}

export interface ChurnPhase {
  /** Fraction of the nodes that fail at once. */
  readonly churn: number;
  /** Keys followed through the failures. */
  readonly keys: number;
  readonly lookups: number;
  readonly probes: number;
  /** Longest repair, in periods. */
  readonly maxPeriods: number;
}

async function measure(host: ChurnHost, count: number): Promise<LookupFigures> {
  const { sets: _sets, ...figures } = await host.lookups(count);
  return figures;
}

/**
 * The replica set each key's primary (named by `sets`) gives for it itself:
 * where a write lands, since core runs every write at the key's primary,
 * which locates the key again. Undefined where the primary is gone or fails.
 */
async function primarySets(
  host: ChurnHost,
  keys: readonly string[],
  sets: readonly (ReplicaSet | undefined)[],
): Promise<(ReplicaSet | undefined)[]> {
  const tasks = keys.map((key, i) => {
    const primary = host.node(sets[i]?.replicas[0]?.id ?? '');
    if (primary === undefined || !primary.running) return Promise.resolve(undefined);
    return primary.placement.locate(key, { intent: 'write' }).then(
      (set) => set,
      () => undefined,
    );
  });
  return host.drive(Promise.all(tasks));
}

/**
 * Phase 3 of a placement run: `keys` keys are written where their primary's
 * own answer puts them (kept when a write quorum admitted them), then
 * `churn` of the nodes fail at once (no goodbye); lookups right after,
 * probes every period until one fully succeeds (the repair), lookups after
 * it, and where the keys' copies stand give the figures.
 */
export async function runChurn(host: ChurnHost, phase: ChurnPhase): Promise<ChurnFigures> {
  const { churn, lookups, probes, maxPeriods } = phase;
  const keyCount = phase.keys;
  const keys = Array.from({ length: keyCount }, () => String(host.random.int(2 ** 31)));
  const placed = await host.lookups(keyCount, keys);
  // A write runs at the key's primary and lands on the replicas of its own answer that admit it.
  const written = await primarySets(host, keys, placed.sets);
  written.forEach((set, i) => {
    if (set === undefined) return;
    const key = keys[i]!;
    const admitted = set.replicas
      .map((m) => host.node(m.id))
      .filter((n): n is SimNode => n !== undefined && n.placement.admit(key, 'write', set.epoch).kind === 'own');
    // Acknowledged only with a write quorum of them; an unacknowledged write is not followed.
    if (admitted.length >= Math.max(1, set.writeQuorum))
      host.copies.place(
        key,
        admitted.map((n) => n.member.id),
      );
  });
  const victims = host.random.shuffle(host.nodes).slice(0, Math.floor(churn * host.nodes.length));
  const failing = new Set(victims.map((v) => v.member.id));
  const doomed = keys.filter((k) => host.copies.has(k) && host.copies.holders(k).every((id) => failing.has(id)));
  for (const victim of victims) {
    victim.running = false;
    await victim.transport.stop();
  }
  await Promise.all(victims.map((v) => Promise.resolve(v.placement.stop?.()).catch(() => undefined)));
  for (const victim of victims) victim.rpc.stop();
  const crashedAt = host.clock.now();
  const right = await host.lookups(lookups);
  let repairMs: number | null = null;
  let replicationRepairMs: number | null = null;
  let short: readonly string[] = keys;
  for (let period = 0; period < maxPeriods; period++) {
    host.copies.retry();
    if (repairMs === null) {
      const probe = await host.lookups(probes);
      if (probe.successRate === 1) repairMs = host.clock.now() - crashedAt;
    }
    if (repairMs !== null) {
      short = (await replication(host, short)).short;
      if (short.length === 0) {
        replicationRepairMs = host.clock.now() - crashedAt;
        break;
      }
    }
    await host.clock.advanceAsync(host.periodMs);
  }
  const after = await measure(host, lookups);
  const final = await replication(host, keys);
  return {
    nodesFailed: victims.length,
    lookupsFailedAfterCrash: round(1 - right.successRate, 4),
    repairMs,
    afterRepair: after,
    keys: host.copies.size,
    keysLost: final.lost,
    keysWithEveryReplicaFailed: doomed.length,
    keysUnderReplicated: final.underReplicated,
    replicationRepairMs,
  };
}

/** Where the followed keys stand: lost (no copy on a running node), or missing on a current replica (`short`). */
async function replication(
  host: ChurnHost,
  keys: readonly string[],
): Promise<{ lost: number; underReplicated: number; short: string[] }> {
  const tracked = keys.filter((k) => host.copies.has(k));
  const located = await host.lookups(tracked.length, tracked);
  const sets = await primarySets(host, tracked, located.sets);
  let lost = 0;
  const short: string[] = [];
  tracked.forEach((key, i) => {
    const holders = host.copies.holders(key).filter((id) => host.node(id)?.running === true);
    if (holders.length === 0) {
      lost++;
      return;
    }
    const set = sets[i];
    if (set === undefined || set.replicas.some((m) => host.node(m.id)?.running && !holders.includes(m.id))) {
      short.push(key);
    }
  });
  return { lost, underReplicated: short.length, short };
}
