import { AsyncLocalStorage } from 'node:async_hooks';
import { silentLogger } from '../contracts/logger.js';
import type { ReplicaSet } from '../contracts/placement.js';
import { KvError } from '../errors.js';
import type { PluginRegistry } from '../kernel/registry.js';
import type { PlacementSimulation, SimulatedMember } from '../plugin.js';
import { CopyModel } from './copy-model.js';
import { runChurn } from './placement-churn.js';
import { NO_STORAGE, PROVIDED, PlacementNodes, SIM_TRANSPORT } from './placement-nodes.js';
import type { LookupContext, SimNode } from './placement-nodes.js';
import type { ChurnFigures, LookupFigures, PlacementSimOptions, PlacementSimResult } from './placement-sim-types.js';
import { SeededRandom } from './seeded-random.js';
import { lookupFigures } from './sim-figures.js';
import { SimNetwork } from './sim-network.js';
import { VirtualClock } from './virtual-clock.js';

export type { ChurnFigures, LookupFigures, PlacementSimOptions, PlacementSimResult } from './placement-sim-types.js';

const DEFAULT_LOOKUPS = 2000;
const DEFAULT_PROBES = 200;
const DEFAULT_KEYS = 1000;
/** Virtual time per step while promises are pending. */
const STEP_MS = 10;
/** Probes in a row that all succeed and name the same replicas as the one before: the nodes settled. */
const SETTLED_PROBES = 2;
/**
 * Share of probe keys whose replicas may still differ from the probe before:
 * past the primary, lists that a burst of joins left stale are corrected one
 * node per period, and the last few stragglers would otherwise hold a large
 * ring in settling for ten more periods.
 */
const SETTLED_CHANGES = 0.01;
/** Maintenance periods between two bootstrap waves. */
const WAVE_PERIODS = 1;
const SIM_PORT = 7946;

/**
 * Runs a routed placement plugin on N simulated nodes and measures its
 * lookups. It builds, per node, only what the placement needs (a
 * SimTransport endpoint, an RpcService over it, the shared virtual clock, a
 * fork of the seeded random, the message registry), never a whole node.
 *
 * 1. Bootstrap: nodes start in waves of doubling size (1, 1, 2, 4, ...), each
 *    with the options the manifest's `simulation.options` gives it (e.g. a
 *    node of an earlier wave to join through); between waves one period
 *    passes. Then time runs, period by period, until probes of the same keys
 *    all succeed and name the same replicas (99% of them) twice in a row
 *    (`settleMs`).
 * 2. Steady state: `lookups` lookups from random nodes for random keys. A
 *    lookup succeeds when `locate` resolves and the primary it names answers
 *    `admit(key, 'read', epoch)` with own: no knowledge of the strategy
 *    needed. Hops come from `ReplicaSet.hops`; messages are counted on each
 *    node's Rpc while inside a lookup.
 * 3. Churn (`churn` > 0): `keys` keys are placed on the replicas their lookup
 *    names that admit them (as a write lands); then that fraction of nodes fails at once. Lookups right after
 *    give the fraction failed; probes every period give the repair time;
 *    lookups after it give the repaired figures. The keys' copies follow the
 *    ownership changes the nodes announce, as core's mover would copy them
 *    (an old owner named in `from` copies to the new owners in `to` once they
 *    admit the key, and drops its copy when it is not in `to`): a key is lost
 *    when no copy survived, under-replicated when a current replica has none.
 *
 * Everything runs on virtual time from one seed, so a run replays exactly.
 * This backs `kvmesh sim placement`.
 * @throws KvError KVMESH_ERR_CONFIG_INVALID for a placement that needs what the simulator cannot give
 *   (a membership, storage), or invalid options; Error naming the seed when the nodes never settle.
 */
export async function simulatePlacement(options: PlacementSimOptions): Promise<PlacementSimResult> {
  const wallStart = performance.now();
  const cpuStart = process.cpuUsage();
  if (!Number.isInteger(options.nodes) || options.nodes < 1) {
    throw new RangeError(`the placement simulator needs an integer number of nodes >= 1 (found ${options.nodes})`);
  }
  const churn = options.churn ?? 0;
  if (!(churn >= 0 && churn < 1)) throw new RangeError(`churn must be a fraction in [0, 1) (found ${churn})`);
  const seed = options.seed ?? 1;
  const registry = options.registry.clone();
  if (!registry.has('transport', 'sim')) registry.add(SIM_TRANSPORT, 'simulator');
  if (!registry.has('storage', 'none')) registry.add(NO_STORAGE, 'simulator');
  const manifest = registry.get('placement', options.plugin);
  const missing = manifest.needs.filter((need) => !PROVIDED.has(need));
  if (missing.length > 0) {
    throw new KvError(
      'KVMESH_ERR_CONFIG_INVALID',
      `placement '${options.plugin}' needs ${missing.join(', ')}: the placement simulator runs placements that find their peers themselves (routed ones), with ${[...PROVIDED].join(', ')}`,
    );
  }
  const hint = manifest.simulation as PlacementSimulation | undefined;
  const codecName = options.codec ?? (registry.has('codec', 'protobuf') ? 'protobuf' : undefined);
  const sim = new Simulation(options, registry, hint, codecName, seed);
  try {
    return await sim.run(churn, wallStart, cpuStart);
  } finally {
    await sim.dispose();
  }
}

class Simulation {
  readonly clock = new VirtualClock();
  readonly random: SeededRandom;
  readonly network: SimNetwork;
  readonly #o: PlacementSimOptions;
  readonly #seed: number;
  readonly #members: readonly SimulatedMember[];
  readonly #nodes: SimNode[] = [];
  readonly #byId = new Map<string, SimNode>();
  readonly #context = new AsyncLocalStorage<LookupContext>();
  readonly #factory: PlacementNodes;
  readonly #copies: CopyModel;

  constructor(
    options: PlacementSimOptions,
    registry: PluginRegistry,
    hint: PlacementSimulation | undefined,
    codecName: string | undefined,
    seed: number,
  ) {
    this.#o = options;
    this.#seed = seed;
    this.random = new SeededRandom(seed);
    this.network = new SimNetwork({
      clock: this.clock,
      random: this.random.fork(),
      ...(options.link ? { defaults: options.link } : {}),
    });
    this.#members = Object.freeze(
      Array.from({ length: options.nodes }, (_, index) => {
        const id = `n${index + 1}`;
        const hostPort = `${id}:${SIM_PORT}`;
        return Object.freeze({ index, id, hostPort, address: `sim://${hostPort}` });
      }),
    );
    this.#factory = new PlacementNodes({
      options,
      registry,
      hint,
      codecName,
      members: this.#members,
      network: this.network,
      clock: this.clock,
      random: this.random,
      logger: options.logger ?? silentLogger,
      context: this.#context,
    });
    this.#copies = new CopyModel((id) => this.#byId.get(id));
  }

  async run(churn: number, wallStart: number, cpuStart: NodeJS.CpuUsage): Promise<PlacementSimResult> {
    const o = this.#o;
    const n = o.nodes;
    const maxPeriods = o.maxPeriods ?? 40 + 4 * Math.ceil(Math.log2(n + 1));
    const lookups = o.lookups ?? DEFAULT_LOOKUPS;
    const probes = Math.min(o.probeLookups ?? DEFAULT_PROBES, lookups);
    const t0 = this.clock.now();

    // 1. Bootstrap in waves: 1, 1, 2, 4, ...; every node of a wave joins through a node of an earlier one.
    let started = 0;
    for (let size = 1; started < n; size = started) {
      const wave = this.#members.slice(started, Math.min(n, started + size));
      const earlier = this.#members.slice(0, started);
      const built: SimNode[] = [];
      for (const member of wave) {
        const contact = earlier.length === 0 ? undefined : earlier[this.random.int(earlier.length)]!;
        built.push(await this.#build(member, contact));
      }
      await this.#drive(Promise.all(built.map((node) => this.#start(node))), maxPeriods * this.#periodMs);
      started += wave.length;
      await this.clock.advanceAsync(WAVE_PERIODS * this.#periodMs);
    }
    const settleMs = await this.#settle(probes, maxPeriods);
    const steady = await this.#measure(lookups);

    // 3. Churn.
    let failure: ChurnFigures | null = null;
    if (churn > 0) {
      failure = await runChurn(
        {
          clock: this.clock,
          random: this.random,
          nodes: this.#nodes,
          node: (id) => this.#byId.get(id),
          copies: this.#copies,
          periodMs: this.#periodMs,
          lookups: (count, keys) => this.#lookups(count, keys),
          drive: (promise) => this.#drive(promise, 600_000),
        },
        { churn, keys: o.keys ?? DEFAULT_KEYS, lookups, probes, maxPeriods },
      );
    }

    return {
      plugin: o.plugin,
      nodes: n,
      seed: this.#seed,
      churn,
      periodMs: this.#periodMs,
      ...steady,
      settleMs,
      failure,
      virtualMs: this.clock.now() - t0,
      wallMs: Math.round(performance.now() - wallStart),
      cpuMs: cpuMsSince(cpuStart),
      codec: this.#factory.codecFigures,
    };
  }

  async dispose(): Promise<void> {
    for (const node of this.#nodes) {
      if (!node.running) continue;
      node.running = false;
      await node.transport.stop();
      await Promise.resolve(node.placement.stop?.()).catch(() => undefined);
      node.rpc.stop();
    }
  }

  /** Builds a node and registers it (its ownership changes move the followed keys' copies). */
  async #build(member: SimulatedMember, contact: SimulatedMember | undefined): Promise<SimNode> {
    const node = await this.#factory.build(member, contact, (from, change) => this.#copies.onChange(from, change));
    this.#nodes.push(node);
    this.#byId.set(member.id, node);
    return node;
  }

  get #periodMs(): number {
    return this.#factory.periodMs;
  }

  async #start(node: SimNode): Promise<void> {
    await node.transport.start();
    node.running = true;
    await node.placement.start?.();
  }

  /** Awaits `promise` while moving virtual time in small steps. */
  async #drive<T>(promise: Promise<T>, limitMs: number): Promise<T> {
    let done = false;
    const tracked = promise.finally(() => {
      done = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    const start = this.clock.now();
    while (!done) {
      if (this.clock.now() - start >= limitMs) {
        tracked.catch(() => undefined);
        throw new Error(`the simulation did not finish a step within ${limitMs} virtual ms (seed ${this.#seed})`);
      }
      await this.clock.advanceAsync(STEP_MS);
    }
    return tracked;
  }

  /**
   * Periods pass until the answers stop changing: probes of the same keys
   * (from random nodes) all succeed and name the same replicas as the probe
   * before (all but SETTLED_CHANGES of them), SETTLED_PROBES times in a row. Replicas past the primary are what
   * settles last: news of a join travels along the lists one node per period.
   * Routing tables may still improve afterwards (a finger refreshed per
   * period), so the hops measured next are those of a ring that has just
   * settled, not of one left alone for long.
   * @returns the virtual ms since the first start.
   */
  async #settle(probes: number, maxPeriods: number): Promise<number> {
    const keys = Array.from({ length: probes }, () => String(this.random.int(2 ** 31)));
    let stable = 0;
    let previous: string[] | undefined;
    for (let period = 0; period < maxPeriods; period++) {
      const probe = await this.#lookups(probes, keys);
      const answers = probe.sets.map((set) => set?.replicas.map((m) => m.id).join(',') ?? '');
      const changed = previous === undefined ? answers.length : answers.filter((a, i) => a !== previous![i]).length;
      previous = answers;
      if (probe.successRate === 1 && changed <= SETTLED_CHANGES * answers.length) {
        if (++stable >= SETTLED_PROBES) return this.clock.now() - this.clock.startMs;
      } else {
        stable = 0;
      }
      await this.clock.advanceAsync(this.#periodMs);
    }
    throw new Error(
      `placement '${this.#o.plugin}' at N = ${this.#o.nodes} did not settle within ${maxPeriods} periods (seed ${this.#seed})`,
    );
  }

  async #measure(count: number): Promise<LookupFigures> {
    const { sets: _sets, ...figures } = await this.#lookups(count);
    return figures;
  }

  /** `count` lookups at once, from random running nodes, for random keys. */
  async #lookups(
    count: number,
    keys?: readonly string[],
  ): Promise<LookupFigures & { sets: (ReplicaSet | undefined)[] }> {
    const running = this.#nodes.filter((n) => n.running);
    const contexts: LookupContext[] = [];
    const tasks: Promise<ReplicaSet | undefined>[] = [];
    const asked: string[] = [];
    for (let i = 0; i < count; i++) {
      const origin = running[this.random.int(running.length)]!;
      const key = keys?.[i] ?? String(this.random.int(2 ** 31));
      asked.push(key);
      const context: LookupContext = { packets: 0 };
      contexts.push(context);
      tasks.push(
        this.#context.run(context, () =>
          origin.placement.locate(key, { intent: 'read' }).then(
            (set) => set,
            () => undefined,
          ),
        ),
      );
    }
    let sets: (ReplicaSet | undefined)[];
    try {
      sets = await this.#drive(Promise.all(tasks), 600_000);
    } finally {
      // Off until the next batch: while any storage is enabled every promise in the process pays for
      // its context, and only what these lookups send is counted (their sums are read below, now).
      this.#context.disable();
    }
    const succeeded = sets.map((set, i) => {
      if (set === undefined) return false;
      const primary = this.#byId.get(set.replicas[0]?.id ?? '');
      return (
        primary !== undefined && primary.running && primary.placement.admit(asked[i]!, 'read', set.epoch).kind === 'own'
      );
    });
    const packets = contexts.reduce((sum, c) => sum + c.packets, 0);
    return { ...lookupFigures(sets, succeeded, packets), sets };
  }
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return Math.round((used.user + used.system) / 1000);
}
