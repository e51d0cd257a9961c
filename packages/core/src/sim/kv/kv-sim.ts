import { createHash } from 'node:crypto';
import type { KvService } from '../../contracts/kv.js';
import type { Logger } from '../../contracts/logger.js';
import type { Placement, ReplicaSet } from '../../contracts/placement.js';
import { kvServiceDefinition } from '../../kv/coordinator.js';
import type { CoordinatorKvService } from '../../kv/coordinator.js';
import { formatVersion } from '../../kv/hlc.js';
import { kvConfigSchema } from '../../kv/kv-config.js';
import type { PluginRegistry } from '../../kernel/registry.js';
import type { MembershipSimulation, PlacementSimulation } from '../../plugin.js';
import { TOKENS } from '../../tokens.js';
import { SimCluster } from '../cluster.js';
import type { ClockSkewBounds, SimNodeSpec } from '../cluster.js';
import { LINK_PROFILES } from '../link-profile.js';
import type { SeededRandom } from '../seeded-random.js';
import { checkHistory } from './check-history.js';
import type { KvViolation } from './check-history.js';
import { DEFAULT_FAULT_TIMING, FaultPlanner, KV_FAULT_KINDS } from './faults.js';
import type { KvFault, KvFaultKind, KvFaultTiming } from './faults.js';
import type { FinalRead, KvHistory, ReplicaRecord, ReplicaState } from './history.js';
import { KEPT_STORAGE_PLUGIN, KeptStorages } from './kept-storage.js';
import { CLIENT_TIMEOUT, KvClients, errorCode } from './kv-clients.js';

/** Config sections a simulated node takes from the given document; the simulator owns node, transport, storage and join. */
const RUN_SECTIONS = ['codec', 'membership', 'placement', 'kv', 'limits', 'rpc'] as const;
/** Virtual ms the driver lets pass between looking at the fault schedule. */
const STEP_MS = 10;
/** Longest virtual time to wait for every node to see every other alive, at the start and after the heal. */
const READY_LIMIT_MS = 60_000;
/** Maintenance periods a routed placement (no membership) gets to form its overlay, at the start and after the heal. */
const ROUTED_WARMUP_PERIODS = 10;
/** How often the settle phase compares replicas, in virtual ms. */
const SETTLE_POLL_MS = 1000;
/** Skew of every node's clock when `skew` is among the faults: within the HLC's tolerated drift (60 s) by far. */
const DEFAULT_SKEW: ClockSkewBounds = Object.freeze({ maxOffsetMs: 2000, maxDriftPpm: 500 });
/** Bounds of the longest fault drawn from the membership's detection bound. */
const LONGEST_FAULT_MS = { min: 3000, max: 30_000 } as const;
/** Real ms a node's start or stop may spend on file I/O (a membership's state file) before virtual time moves. */
const REAL_IO_MS = 50;
/** Link profile outside a link-wide fault. */
const QUIET_LINK = LINK_PROFILES.lan;
const TEXT = new TextDecoder();

export interface KvSimOptions {
  /** Holds every plugin the config names, and the storage plugin `storage`. */
  readonly registry: PluginRegistry;
  /**
   * A config document with its `${VAR}`s resolved (a validated config will
   * do): its codec, membership, placement, kv, limits and rpc sections run
   * on every node; node, transport, storage and join are the simulator's.
   * The membership and placement plugins' `simulation` hints fill in what
   * each member needs (a configured view, a node to join through, a role).
   */
  readonly config: Readonly<Record<string, unknown>>;
  /** Storage plugin of every node; each node's storage survives its crashes and restarts. */
  readonly storage: string;
  readonly storageOptions?: Readonly<Record<string, unknown>>;
  readonly nodes: number;
  /** Seed of every random draw: the same seed gives the same history, bit for bit. Default 1. */
  readonly seed?: number;
  /** Client operations in all (an increment counts as one). Default 400. */
  readonly ops?: number;
  /** Concurrent clients. Default 4. */
  readonly clients?: number;
  /** Plain keys the clients put, create, cas, delete and get. Default 6. */
  readonly keys?: number;
  /** Counter keys, written only by increments (read, then write the count + 1 with If-Match). Default 2. */
  readonly counters?: number;
  /** Faults to draw from. Default every kind. */
  readonly faults?: readonly KvFaultKind[];
  /**
   * Gaps and lengths of the faults. Default: gaps of 0.1-1 s, faults of
   * 0.3-3 s, and one in three up to twice the membership's detection bound
   * (at least 3 s, at most 30 s), so members get declared dead.
   */
  readonly timing?: KvFaultTiming;
  /**
   * True: clients send nothing to a restarted node until its join answered,
   * as a load balancer that checks `GET /v1/ready` would. Default false:
   * clients pick any running node, and one that is joining refuses them
   * (KVMESH_ERR_KV_NOT_JOINED), as the server's does.
   */
  readonly readyOnly?: boolean;
  /** Bounds of each node's clock offset and drift with the `skew` fault. Default 2 s and 500 ppm. */
  readonly skew?: ClockSkewBounds;
  /** How long a client waits for an answer before it gives up (the write's outcome is then unknown). Default 10 s. */
  readonly opTimeoutMs?: number;
  /** Longest virtual time after the heal for the replicas to agree. Default 300 s. */
  readonly settleLimitMs?: number;
  readonly logger?: Logger;
  /** Real ms after which the run gives up (checked between steps): bounds a sweep. Default none. */
  readonly wallLimitMs?: number;
}

export interface KvSimResult {
  readonly seed: number;
  readonly nodes: number;
  readonly clients: number;
  /** Operations in the history (an increment is two: its read and its write). */
  readonly ops: number;
  readonly acked: number;
  readonly refused: number;
  readonly unknown: number;
  /** The fault schedule as applied. */
  readonly faults: readonly KvFault[];
  readonly history: KvHistory;
  readonly violations: readonly KvViolation[];
  /** SHA-256 (hex) of the fault schedule and the history: equal for equal seeds and options. */
  readonly digest: string;
  /** True when every key's replicas agreed within `settleLimitMs` of the heal. */
  readonly converged: boolean;
  /** Virtual ms from the heal until the replicas agreed (or the limit), at least the strategies' heal time. */
  readonly settleMs: number;
  /** Virtual ms of the client run. */
  readonly runMs: number;
  readonly wallMs: number;
}

interface Hints {
  readonly membership?: MembershipSimulation;
  readonly placement?: PlacementSimulation;
}

/**
 * Runs the real KV service on `nodes` simulated nodes with the config's
 * membership and placement: clients do `ops` operations through random
 * nodes while a seeded fault schedule crashes and restarts nodes,
 * partitions them and spoils links, one fault at a time; then every fault
 * heals, the cluster settles, every replica's storage is read directly and
 * every node reads every key. `checkHistory` judges the history. Everything
 * runs on one virtual clock from one seed, so a run replays exactly.
 * @throws KvError for a config the plugins refuse; Error naming the seed when the cluster never starts.
 */
export async function simulateKv(options: KvSimOptions): Promise<KvSimResult> {
  const wallStart = performance.now();
  const seed = options.seed ?? 1;
  const faultKinds = options.faults ?? KV_FAULT_KINDS;
  const registry = options.registry.clone();
  const kept = new KeptStorages(registry, options.storage);
  registry.add(kept.manifest(), 'simulator');
  const hints = hintsOf(registry, options.config);
  let cluster: SimCluster | undefined;
  try {
    cluster = await SimCluster.create({
      registry,
      nodes: options.nodes,
      seed,
      extras: [kvServiceDefinition()],
      realIoMs: REAL_IO_MS,
      extensions: { kv: kvConfigSchema },
      ...(options.logger ? { logger: options.logger } : {}),
      ...(faultKinds.includes('skew') ? { clockSkew: options.skew ?? DEFAULT_SKEW } : {}),
      config: (spec, all) => nodeConfig(options, hints, spec, all, cluster),
    });
    return await new KvRun(cluster, kept, hints, options, seed, faultKinds, wallStart).run();
  } finally {
    // A node that does not stop cleanly was already reported in the schedule's notes.
    await cluster?.dispose().catch(() => undefined);
    await kept.close();
  }
}

function hintsOf(registry: PluginRegistry, config: Readonly<Record<string, unknown>>): Hints {
  const hint = (family: 'membership' | 'placement'): unknown => {
    const name = (config[family] as { name?: unknown } | undefined)?.name;
    return typeof name === 'string' && registry.has(family, name) ? registry.get(family, name).simulation : undefined;
  };
  const membership = hint('membership') as MembershipSimulation | undefined;
  const placement = hint('placement') as PlacementSimulation | undefined;
  return { ...(membership ? { membership } : {}), ...(placement ? { placement } : {}) };
}

/** One node's raw config: the run sections, the hints' per-member options and role, the kept storage. */
function nodeConfig(
  options: KvSimOptions,
  hints: Hints,
  spec: SimNodeSpec,
  all: readonly SimNodeSpec[],
  cluster: SimCluster | undefined,
): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const section of RUN_SECTIONS) {
    if (options.config[section] !== undefined) raw[section] = structuredClone(options.config[section]);
  }
  const membership = raw['membership'] as { name: string; options?: Record<string, unknown> } | undefined;
  if (membership && hints.membership?.options) {
    membership.options = hints.membership.options(spec, all, membership.options ?? {});
  }
  const placement = raw['placement'] as { name: string; options?: Record<string, unknown> } | undefined;
  if (placement && hints.placement?.options) {
    // A node joins through a running one; at the first start, through the first node.
    const running = cluster?.runningIds().filter((id) => id !== spec.id) ?? [];
    const contact = running.length > 0 ? cluster!.spec(running[0]!) : spec.index > 0 ? all[0] : undefined;
    placement.options = hints.placement.options(spec, all, placement.options ?? {}, contact);
  }
  const role = hints.membership?.role?.(spec, all);
  return {
    ...raw,
    node: role !== undefined ? { role } : {},
    storage: { name: KEPT_STORAGE_PLUGIN, options: { ...options.storageOptions } },
  };
}

interface Fault {
  readonly fault: KvFault;
  readonly endsAt: number;
  /** Its position in the schedule, to add the heal's notes. */
  readonly index: number;
}

class KvRun {
  readonly #cluster: SimCluster;
  readonly #kept: KeptStorages;
  readonly #hints: Hints;
  readonly #options: KvSimOptions;
  readonly #seed: number;
  readonly #kinds: readonly KvFaultKind[];
  readonly #wallStart: number;
  readonly #random: SeededRandom;
  readonly #faults: KvFault[] = [];
  readonly #keys: string[];
  readonly #counters: string[];
  readonly #opTimeoutMs: number;
  /** Restarted nodes whose join has not answered yet (clients avoid them with `readyOnly`). */
  readonly #joining = new Set<string>();
  #clients!: KvClients;
  #t0 = 0;

  constructor(
    cluster: SimCluster,
    kept: KeptStorages,
    hints: Hints,
    options: KvSimOptions,
    seed: number,
    kinds: readonly KvFaultKind[],
    wallStart: number,
  ) {
    this.#cluster = cluster;
    this.#kept = kept;
    this.#hints = hints;
    this.#options = options;
    this.#seed = seed;
    this.#kinds = kinds;
    this.#wallStart = wallStart;
    this.#random = cluster.random.fork();
    this.#keys = Array.from({ length: options.keys ?? 6 }, (_, i) => `key-${i}`);
    this.#counters = Array.from({ length: options.counters ?? 2 }, (_, i) => `counter-${i}`);
    this.#opTimeoutMs = options.opTimeoutMs ?? 10_000;
  }

  get #hasMembership(): boolean {
    return this.#cluster.node(this.#cluster.ids[0]!).has('membership');
  }

  async run(): Promise<KvSimResult> {
    const cluster = this.#cluster;
    await cluster.start();
    if (this.#hasMembership) {
      await cluster.join();
      await this.#ready();
    } else {
      await cluster.advance(ROUTED_WARMUP_PERIODS * this.#placementPeriodMs());
    }
    if (this.#kinds.includes('skew')) {
      const skew: Record<string, { offsetMs: number; driftPpm: number }> = {};
      for (const id of cluster.ids) skew[id] = cluster.clockSkew(id);
      this.#faults.push({ kind: 'skew', atMs: 0, durationMs: 0, nodes: [], skew });
    }
    this.#t0 = cluster.clock.now();
    this.#clients = new KvClients(cluster, {
      ...(this.#options.ops !== undefined ? { ops: this.#options.ops } : {}),
      keys: this.#keys,
      counters: this.#counters,
      opTimeoutMs: this.#opTimeoutMs,
      t0: this.#t0,
      readyOnly: this.#options.readyOnly === true,
      joining: (id) => this.#joining.has(id),
    });
    await this.#drive();
    const runMs = cluster.clock.now() - this.#t0;
    if (this.#faults[0]?.kind === 'skew') this.#faults[0] = { ...this.#faults[0], durationMs: runMs };
    const healedAt = cluster.clock.now();
    if (this.#hasMembership) await this.#ready();
    const { converged, replicas } = await this.#settle();
    const settleMs = cluster.clock.now() - healedAt;
    const finals = await this.#finalReads();
    const ops = [...this.#clients.ops].sort((a, b) => a.id - b.id);
    const history: KvHistory = { ops, counters: this.#counters, replicas, finals };
    const violations = checkHistory(history);
    const digest = createHash('sha256')
      .update(JSON.stringify({ faults: this.#faults, history }))
      .digest('hex');
    return {
      seed: this.#seed,
      nodes: cluster.size,
      clients: this.#options.clients ?? 4,
      ops: ops.length,
      acked: ops.filter((op) => op.outcome === 'ok').length,
      refused: ops.filter((op) => op.outcome === 'refused').length,
      unknown: ops.filter((op) => op.outcome === 'unknown').length,
      faults: this.#faults,
      history,
      violations,
      digest,
      converged,
      settleMs,
      runMs,
      wallMs: Math.round(performance.now() - this.#wallStart),
    };
  }

  /** The routed placement's maintenance period (its hint's), 1 s without one. */
  #placementPeriodMs(): number {
    const options = (this.#options.config['placement'] as { options?: Record<string, unknown> } | undefined)?.options;
    return this.#hints.placement?.periodMs?.(options ?? {}) ?? 1000;
  }

  /** How long after the heal the cluster may take to be whole again: the membership's healMs, or some placement periods. */
  #healMs(): number {
    const healMs = this.#hasMembership ? this.#cluster.membership(this.#cluster.ids[0]!).bounds.healMs : 0;
    const routed =
      this.#hints.placement?.periodMs !== undefined ? ROUTED_WARMUP_PERIODS * this.#placementPeriodMs() : 0;
    return Math.max(SETTLE_POLL_MS, Number.isFinite(healMs) ? healMs : 0, routed);
  }

  /** Waits (bounded) until every running node sees every other running node alive. */
  async #ready(): Promise<void> {
    const cluster = this.#cluster;
    const allAlive = (): boolean => {
      const running = cluster.runningIds();
      return running.every((o) => running.every((s) => s === o || cluster.view(o, s)?.state === 'alive'));
    };
    try {
      await cluster.waitFor(allAlive, READY_LIMIT_MS, 100);
    } catch {
      // Some strategies do not list every node (a controller lists the members it keeps); go on.
    }
  }

  /** Runs the clients and the fault schedule until every client did its share, then heals every fault. */
  async #drive(): Promise<void> {
    const cluster = this.#cluster;
    const clock = cluster.clock;
    const planner = new FaultPlanner(this.#random.fork(), this.#kinds, this.#options.timing ?? this.#timing());
    const clientCount = this.#options.clients ?? 4;
    let done = false;
    let failure: unknown;
    const randoms = Array.from({ length: clientCount }, () => this.#random.fork());
    this.#clients.run(randoms).then(
      () => (done = true),
      (err: unknown) => {
        failure = err;
        done = true;
      },
    );
    let current: Fault | undefined;
    let nextAt = planner.active ? clock.now() + planner.gap() : Infinity;
    while (!done) {
      const now = clock.now();
      if (current !== undefined && now >= current.endsAt) {
        this.#noteHeal(current, await this.#heal(current.fault));
        current = undefined;
        nextAt = clock.now() + planner.gap();
      } else if (current === undefined && now >= nextAt) {
        const fault = planner.next(now - this.#t0, cluster.ids, this.#crashable());
        if (fault !== undefined) {
          const index = this.#faults.push(fault) - 1;
          const notes = await this.#apply(fault);
          if (notes.length > 0) this.#faults[index] = { ...fault, notes };
          current = { fault, endsAt: now + fault.durationMs, index };
        } else {
          nextAt = now + planner.gap();
        }
      }
      this.#checkWall();
      await cluster.advance(STEP_MS);
    }
    if (current !== undefined) this.#noteHeal(current, await this.#heal(current.fault));
    if (failure !== undefined) throw failure;
  }

  /** The default timing: faults up to twice the detection bound, so members get declared dead. */
  #timing(): KvFaultTiming {
    if (!this.#hasMembership) return DEFAULT_FAULT_TIMING;
    const detectionMs = this.#cluster.membership(this.#cluster.ids[0]!).bounds.detectionMs;
    const longest = Number.isFinite(detectionMs)
      ? Math.min(LONGEST_FAULT_MS.max, Math.max(LONGEST_FAULT_MS.min, 2 * Math.round(detectionMs)))
      : LONGEST_FAULT_MS.min;
    return { ...DEFAULT_FAULT_TIMING, longMs: { min: DEFAULT_FAULT_TIMING.durationMs.max, max: longest } };
  }

  /** @throws Error naming the seed once the run took longer than `wallLimitMs` of real time. */
  #checkWall(): void {
    const limit = this.#options.wallLimitMs;
    if (limit !== undefined && performance.now() - this.#wallStart > limit) {
      throw new Error(`the run of seed ${this.#seed} took longer than ${limit} real ms; gave up`);
    }
  }

  #noteHeal(current: Fault, notes: readonly string[]): void {
    if (notes.length === 0) return;
    const fault = this.#faults[current.index]!;
    this.#faults[current.index] = { ...fault, notes: [...(fault.notes ?? []), ...notes] };
  }

  #crashable(): string[] {
    const essential = this.#hints.membership?.essential;
    return this.#cluster.specs.filter((s) => !essential?.(s, this.#cluster.specs)).map((s) => s.id);
  }

  /** Applies the fault; answers what went wrong, if anything. */
  async #apply(fault: KvFault): Promise<string[]> {
    const cluster = this.#cluster;
    const network = cluster.network;
    const address = (id: string): string => cluster.spec(id).address;
    const others = (ids: readonly string[]): string[] => cluster.ids.filter((id) => !ids.includes(id)).map(address);
    switch (fault.kind) {
      case 'crash':
        try {
          this.#clients.dropConnections(fault.nodes[0]!);
          await cluster.crash(fault.nodes[0]!);
        } catch (err) {
          return [`stopping the crashed node failed: ${errorCode(err)}`];
        }
        return [];
      case 'isolate':
      case 'partition':
        network.partition(fault.nodes.map(address), others(fault.nodes));
        return [];
      case 'asymmetric': {
        const node = address(fault.nodes[0]!);
        for (const other of others(fault.nodes)) {
          if (fault.direction === 'out') network.setLink(node, other, { loss: 1 });
          else network.setLink(other, node, { loss: 1 });
        }
        return [];
      }
      case 'loss':
        network.setDefaults({ loss: fault.rate! });
        return [];
      case 'duplicate':
        network.setDefaults({ duplicate: fault.rate! });
        return [];
      case 'reorder':
        network.setDefaults({ reorder: fault.rate!, reorderDelayMs: 100 });
        return [];
      default:
        return [];
    }
  }

  /** Heals the fault; answers what went wrong, if anything. */
  async #heal(fault: KvFault): Promise<string[]> {
    const cluster = this.#cluster;
    const network = cluster.network;
    switch (fault.kind) {
      case 'crash': {
        const id = fault.nodes[0]!;
        try {
          await cluster.restart(id);
        } catch (err) {
          return [`the restart failed: ${errorCode(err)}`];
        }
        if (this.#hasMembership) {
          const seeds = cluster
            .runningIds()
            .filter((other) => other !== id)
            .map((other) => cluster.spec(other).address);
          // Not awaited: a join cut off by the next fault may take long, and the schedule goes on meanwhile.
          if (seeds.length > 0) {
            this.#joining.add(id);
            const generation = cluster.generation(id);
            // As `kvmesh start` does: no client operation before the join answered.
            const kv = cluster.node(id).get<CoordinatorKvService>(TOKENS.kv);
            kv.holdClients('joining its cluster');
            cluster
              .membership(id)
              .join(seeds)
              .then(() => kv.holdClients(undefined))
              .catch(() => undefined)
              .finally(() => {
                if (cluster.generation(id) === generation) this.#joining.delete(id);
              });
          }
        }
        return [];
      }
      case 'isolate':
      case 'partition':
        network.heal();
        return [];
      case 'asymmetric':
        network.clearLinks();
        return [];
      default:
        network.setDefaults({
          loss: QUIET_LINK.loss,
          duplicate: QUIET_LINK.duplicate,
          reorder: QUIET_LINK.reorder,
          reorderDelayMs: QUIET_LINK.reorderDelayMs,
        });
        return [];
    }
  }

  /** Polls until every key's replicas agree or the limit passed; answers the last states read. */
  async #settle(): Promise<{ converged: boolean; replicas: ReplicaState[] }> {
    const cluster = this.#cluster;
    const limit = this.#options.settleLimitMs ?? 300_000;
    const start = cluster.clock.now();
    // Every node gets the time its strategies promise to heal in before anything is judged.
    await cluster.advance(Math.min(limit, this.#healMs()));
    for (;;) {
      const replicas = await this.#replicaStates();
      const converged = replicas.every(
        (state) =>
          state.error === undefined &&
          new Set(state.replicas.map((r) => (r.version === null || r.tombstone ? '' : r.version))).size <= 1,
      );
      if (converged || cluster.clock.now() - start >= limit) return { converged, replicas };
      this.#checkWall();
      await cluster.advance(SETTLE_POLL_MS);
    }
  }

  async #replicaStates(): Promise<ReplicaState[]> {
    const cluster = this.#cluster;
    const observer = cluster.node(cluster.runningIds()[0]!);
    const placement = observer.get<Placement>(TOKENS.placement);
    const states: ReplicaState[] = [];
    for (const key of [...this.#keys, ...this.#counters]) {
      let set: ReplicaSet;
      try {
        set = await cluster.settle(this.#bounded(placement.locate(key, { intent: 'read' })));
      } catch (err) {
        states.push({ key, replicas: [], error: errorCode(err) });
        continue;
      }
      const replicas: ReplicaRecord[] = [];
      for (const member of set.replicas) {
        const storage = this.#kept.get(member.id);
        const record = storage ? await cluster.settle(storage.get(key)) : undefined;
        replicas.push({
          node: member.id,
          version: record ? formatVersion(record.version) : null,
          tombstone: record?.tombstone ?? false,
          value: record && !record.tombstone ? TEXT.decode(record.value) : null,
        });
      }
      states.push({ key, replicas });
    }
    return states;
  }

  /** `work`, or a rejection once the client would have given up waiting for it. */
  #bounded<T>(work: Promise<T>): Promise<T> {
    const clock = this.#cluster.clock;
    let timer: { cancel(): void } | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = clock.setTimeout(
        () => reject(Object.assign(new Error('the client gave up waiting'), { code: CLIENT_TIMEOUT })),
        this.#opTimeoutMs,
      );
    });
    work.catch(() => undefined);
    return Promise.race([work, timeout]).finally(() => timer?.cancel());
  }

  async #finalReads(): Promise<FinalRead[]> {
    const cluster = this.#cluster;
    const reads: Array<Promise<FinalRead>> = [];
    for (const key of [...this.#keys, ...this.#counters]) {
      for (const node of cluster.runningIds()) {
        const kv = cluster.node(node).get<KvService>(TOKENS.kv);
        reads.push(
          this.#bounded(kv.get(key)).then(
            ({ record }) => ({
              node,
              key,
              value: record === undefined ? null : TEXT.decode(record.value),
              ...(record ? { version: formatVersion(record.version) } : {}),
            }),
            (err: unknown) => ({ node, key, error: errorCode(err) }),
          ),
        );
      }
    }
    return cluster.settle(Promise.all(reads), this.#opTimeoutMs * 2);
  }
}
