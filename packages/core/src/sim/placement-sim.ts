import { AsyncLocalStorage } from 'node:async_hooks';
import { validateConfig } from '../config/validate.js';
import type { KvmeshConfig } from '../config/validate.js';
import type { Codec } from '../contracts/codec.js';
import type { Logger } from '../contracts/logger.js';
import { silentLogger } from '../contracts/logger.js';
import type { OwnershipChange, Placement, ReplicaSet } from '../contracts/placement.js';
import type { CallOptions, MessageListener, MessageRegistry, RequestHandler, Rpc } from '../contracts/rpc.js';
import { KvError } from '../errors.js';
import type { PluginRegistry } from '../kernel/registry.js';
import { definePlugin } from '../plugin.js';
import type { CodecSet, Components, NodeInfo, PlacementSimulation, SimulatedMember } from '../plugin.js';
import { createMessageRegistry } from '../rpc/messages.js';
import { RpcService } from '../rpc/rpc-service.js';
import type { ComponentName } from '../tokens.js';
import type { LinkProfile } from './link-profile.js';
import { SeededRandom } from './seeded-random.js';
import { SimNetwork } from './sim-network.js';
import type { SimTransport, SimTransportOptions } from './sim-transport.js';
import { VirtualClock } from './virtual-clock.js';

/**
 * What to simulate: N instances of a placement plugin that finds its peers
 * itself (a routed placement), each with only the components it needs, on
 * one simulated network, virtual clock and seed.
 */
export interface PlacementSimOptions {
  /** Holds the placement plugin and the codecs. */
  readonly registry: PluginRegistry;
  /** Placement plugin name. */
  readonly plugin: string;
  /** Its options on every node (the manifest's `simulation.options` adds per-node ones, such as whom to join through). */
  readonly options?: Record<string, unknown>;
  /** Nodes N. */
  readonly nodes: number;
  /** Seed of every random draw; the same seed replays the same run. Default 1. */
  readonly seed?: number;
  /** Fraction of the nodes (0..1) that fail at once after the steady-state measurement. Default 0: none. */
  readonly churn?: number;
  /** Lookups per measurement (steady state, right after the failures, after the repair). Default 2000. */
  readonly lookups?: number;
  /** Lookups per progress sample while the nodes settle or repair. Default 200. */
  readonly probeLookups?: number;
  /** Keys whose copies are followed through the failures (churn runs only). Default 1000. */
  readonly keys?: number;
  /** Codec plugin of every node. Default: protobuf when registered, else the config default. */
  readonly codec?: string;
  /** Profile of every link. Default LINK_PROFILES.lan (1-5 ms, no loss). */
  readonly link?: Partial<LinkProfile>;
  /** Frame limits of every endpoint. Default: the simulated transport's (16 MiB requests). */
  readonly transport?: SimTransportOptions;
  /** Longest settling, and longest repair, in maintenance periods. Default 40 + 4·log2 N. */
  readonly maxPeriods?: number;
  /** Logger of every node. Default: silent. */
  readonly logger?: Logger;
}

/** Lookup figures of one measurement. */
export interface LookupFigures {
  readonly lookups: number;
  /** Lookups whose named primary, asked `admit(key, 'read')`, answered own. */
  readonly successRate: number;
  /** Routing hops (`ReplicaSet.hops`) of the successful lookups. */
  readonly hopsMean: number;
  readonly hopsP50: number;
  readonly hopsP99: number;
  readonly hopsMax: number;
  /** Network packets (requests, responses, one-way messages) the lookups themselves sent, per lookup. */
  readonly messagesPerLookup: number;
}

/** What a churn run adds: the failures, their effect and the repair. */
export interface ChurnFigures {
  /** Nodes that failed at once (no goodbye). */
  readonly nodesFailed: number;
  /** Fraction of lookups that failed right after the failures, before any repair. */
  readonly lookupsFailedAfterCrash: number;
  /** Virtual ms from the failures until a whole probe of lookups succeeded again; null when it never did. */
  readonly repairMs: number | null;
  /** The lookups after the repair. */
  readonly afterRepair: LookupFigures;
  /**
   * Keys followed: each written, before the failures, to the replicas its
   * primary names that admit it, and acknowledged (a write quorum of them).
   */
  readonly keys: number;
  /** Keys none of whose copies survived (every holder failed before handing it on). */
  readonly keysLost: number;
  /**
   * Keys all of whose replicas were among the failed nodes: lost whatever the
   * placement does. `keysLost` above this counts keys the placement lost.
   */
  readonly keysWithEveryReplicaFailed: number;
  /**
   * Keys, not lost, whose current replicas (as the key's primary names them,
   * where writes and repairs run) do not all hold a copy when the run ends.
   */
  readonly keysUnderReplicated: number;
  /** Virtual ms from the failures until every surviving key was on all its current replicas; null when it never was. */
  readonly replicationRepairMs: number | null;
}

/** The figures of one run; plain JSON. */
export interface PlacementSimResult extends LookupFigures {
  readonly plugin: string;
  readonly nodes: number;
  readonly seed: number;
  readonly churn: number;
  /** The plugin's maintenance period (manifest hint). */
  readonly periodMs: number;
  /** Virtual ms from the first start until the nodes settled (every probe lookup succeeds and hops stopped falling). */
  readonly settleMs: number;
  /** Only for churn runs. */
  readonly failure: ChurnFigures | null;
  /** Virtual ms of the whole run. */
  readonly virtualMs: number;
  /** Wall-clock ms of the whole run. */
  readonly wallMs: number;
}

/** Components the simulator can give a placement; one that needs more (membership, storage...) is refused. */
const PROVIDED: ReadonlySet<ComponentName> = new Set<ComponentName>([
  'node',
  'clock',
  'random',
  'logger',
  'messages',
  'codec',
  'codecs',
  'transport',
  'rpc',
  'config',
]);

const DEFAULT_PERIOD_MS = 1000;
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

const SIM_TRANSPORT = definePlugin({
  family: 'transport',
  name: 'sim',
  description: 'Simulated endpoint; the placement simulator provides it.',
  optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
  needs: [],
  create: () => () => {
    throw new KvError('KVMESH_ERR_PLUGIN_FAILED', 'the sim transport exists only inside a simulator');
  },
});

const NO_STORAGE = definePlugin({
  family: 'storage',
  name: 'none',
  description: 'Holds nothing; the placement simulator builds no storage.',
  optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
  needs: [],
  create: () => () => {
    throw new KvError('KVMESH_ERR_PLUGIN_FAILED', 'the placement simulator builds no storage');
  },
});

/** Counts the requests and messages a lookup sends, however deep in the placement they go. */
interface LookupContext {
  packets: number;
}

/** An Rpc that counts what is sent inside a lookup (AsyncLocalStorage follows the lookup's promise chain). */
class CountingRpc implements Rpc {
  constructor(
    private readonly inner: Rpc,
    private readonly context: AsyncLocalStorage<LookupContext>,
  ) {}

  get address(): string {
    return this.inner.address;
  }

  request<P = any>(to: string, type: string, payload: unknown, options?: CallOptions) {
    const counting = this.context.getStore();
    if (counting !== undefined) counting.packets += 2;
    return this.inner.request<P>(to, type, payload, options);
  }

  send(to: string, type: string, payload: unknown): void {
    const counting = this.context.getStore();
    if (counting !== undefined) counting.packets += 1;
    this.inner.send(to, type, payload);
  }

  handle(type: string, handler: RequestHandler): void {
    this.inner.handle(type, handler);
  }

  on(type: string, listener: MessageListener): () => void {
    return this.inner.on(type, listener);
  }
}

interface SimNode {
  readonly member: SimulatedMember;
  readonly transport: SimTransport;
  readonly rpc: RpcService;
  readonly placement: Placement;
  running: boolean;
}

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
    return await sim.run(churn, wallStart);
  } finally {
    await sim.dispose();
  }
}

class Simulation {
  readonly clock = new VirtualClock();
  readonly random: SeededRandom;
  readonly network: SimNetwork;
  readonly #o: PlacementSimOptions;
  readonly #registry: PluginRegistry;
  readonly #hint: PlacementSimulation | undefined;
  readonly #codecName: string | undefined;
  readonly #seed: number;
  readonly #members: readonly SimulatedMember[];
  readonly #nodes: SimNode[] = [];
  readonly #byId = new Map<string, SimNode>();
  readonly #context = new AsyncLocalStorage<LookupContext>();
  readonly #logger: Logger;
  #messages: MessageRegistry | undefined;
  #codecs: CodecSet | undefined;
  #periodMs = DEFAULT_PERIOD_MS;
  readonly #copies: CopyModel;

  constructor(
    options: PlacementSimOptions,
    registry: PluginRegistry,
    hint: PlacementSimulation | undefined,
    codecName: string | undefined,
    seed: number,
  ) {
    this.#o = options;
    this.#registry = registry;
    this.#hint = hint;
    this.#codecName = codecName;
    this.#seed = seed;
    this.random = new SeededRandom(seed);
    this.network = new SimNetwork({
      clock: this.clock,
      random: this.random.fork(),
      ...(options.link ? { defaults: options.link } : {}),
    });
    this.#logger = options.logger ?? silentLogger;
    this.#members = Object.freeze(
      Array.from({ length: options.nodes }, (_, index) => {
        const id = `n${index + 1}`;
        const hostPort = `${id}:${SIM_PORT}`;
        return Object.freeze({ index, id, hostPort, address: `sim://${hostPort}` });
      }),
    );
    this.#copies = new CopyModel((id) => this.#byId.get(id));
  }

  async run(churn: number, wallStart: number): Promise<PlacementSimResult> {
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
    if (churn > 0) failure = await this.#churn(churn, lookups, probes, maxPeriods);

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

  /** Builds one node's components and its placement (not started). */
  async #build(member: SimulatedMember, contact: SimulatedMember | undefined): Promise<SimNode> {
    const given = this.#o.options ?? {};
    const pluginOptions = this.#hint?.options?.(member, this.#members, given, contact) ?? given;
    const config: KvmeshConfig = validateConfig(
      {
        node: { id: member.id, address: member.hostPort, dataDir: `/nonexistent/${member.id}` },
        transport: { name: 'sim' },
        storage: { name: 'none' },
        ...(this.#codecName ? { codec: { name: this.#codecName } } : {}),
        placement: { name: this.#o.plugin, options: pluginOptions },
      },
      this.#registry,
      { file: `simulated node ${member.id}` },
    );
    if (this.#nodes.length === 0)
      this.#periodMs = this.#hint?.periodMs?.(config.placement!.options) ?? DEFAULT_PERIOD_MS;
    this.#messages ??= createMessageRegistry();
    this.#codecs ??= await this.#codecSet(config, this.#messages);
    const transport = this.network.endpoint(member.address, this.#o.transport);
    const clock = this.clock;
    const logger = this.#logger.child({ node: member.id });
    const rpc = new RpcService({
      transport,
      codecs: this.#codecs,
      messages: this.#messages,
      clock,
      logger,
      timeoutMs: config.rpc.timeoutMs,
    });
    const info: NodeInfo = Object.freeze({
      id: member.id,
      address: member.hostPort,
      role: config.node.role,
      dataDir: config.node.dataDir,
      configDir: '/',
    });
    const components: Partial<Components> = {
      node: info,
      clock,
      random: this.random.fork(),
      logger: logger.child({ component: 'placement' }),
      messages: this.#messages,
      codec: this.#codecs.primary,
      codecs: this.#codecs,
      transport,
      rpc: new CountingRpc(rpc, this.#context),
      config,
    };
    const manifest = this.#registry.get('placement', this.#o.plugin);
    const placement = (await manifest.create(config.placement!.options)(components as Components)) as Placement;
    const node: SimNode = { member, transport, rpc, placement, running: false };
    placement.onOwnershipChange?.((change) => this.#copies.onChange(node, change));
    this.#nodes.push(node);
    this.#byId.set(member.id, node);
    return node;
  }

  async #codecSet(config: KvmeshConfig, messages: MessageRegistry): Promise<CodecSet> {
    const all: Codec[] = [];
    let primary: Codec | undefined;
    for (const { manifest } of this.#registry.entries('codec')) {
      const isPrimary = manifest.name === config.codec.name;
      const options = isPrimary
        ? config.codec.options
        : validateConfig({ node: { address: 'x:1' }, codec: { name: manifest.name } }, this.#registry).codec.options;
      const codec = (await manifest.create(options)({ messages, logger: this.#logger } as Components)) as Codec;
      all.push(codec);
      if (isPrimary) primary = codec;
    }
    if (primary === undefined)
      throw new KvError('KVMESH_ERR_PLUGIN_UNKNOWN', `codec '${config.codec.name}' is not registered`);
    const byTag = new Map(all.map((c) => [c.tag, c]));
    return { primary, all, byTag: (tag) => byTag.get(tag) };
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
    const sets = await this.#drive(Promise.all(tasks), 600_000);
    const hops: number[] = [];
    let ok = 0;
    sets.forEach((set, i) => {
      if (set === undefined) return;
      const primary = this.#byId.get(set.replicas[0]?.id ?? '');
      if (primary === undefined || !primary.running) return;
      if (primary.placement.admit(asked[i]!, 'read', set.epoch).kind !== 'own') return;
      ok++;
      hops.push(set.hops);
    });
    hops.sort((a, b) => a - b);
    const packets = contexts.reduce((sum, c) => sum + c.packets, 0);
    return {
      lookups: count,
      successRate: count === 0 ? 1 : round(ok / count, 4),
      hopsMean: hops.length === 0 ? 0 : round(hops.reduce((a, b) => a + b, 0) / hops.length, 3),
      hopsP50: percentile(hops, 50),
      hopsP99: percentile(hops, 99),
      hopsMax: hops.length === 0 ? 0 : hops[hops.length - 1]!,
      messagesPerLookup: count === 0 ? 0 : round(packets / count, 3),
      sets,
    };
  }

  /**
   * The replica set each key's primary (named by `sets`) gives for it itself:
   * where a write lands, since core runs every write at the key's primary,
   * which locates the key again. Undefined where the primary is gone or fails.
   */
  async #primarySets(
    keys: readonly string[],
    sets: readonly (ReplicaSet | undefined)[],
  ): Promise<(ReplicaSet | undefined)[]> {
    const tasks = keys.map((key, i) => {
      const primary = this.#byId.get(sets[i]?.replicas[0]?.id ?? '');
      if (primary === undefined || !primary.running) return Promise.resolve(undefined);
      return primary.placement.locate(key, { intent: 'write' }).then(
        (set) => set,
        () => undefined,
      );
    });
    return this.#drive(Promise.all(tasks), 600_000);
  }

  async #churn(churn: number, lookups: number, probes: number, maxPeriods: number): Promise<ChurnFigures> {
    const keyCount = this.#o.keys ?? DEFAULT_KEYS;
    const keys = Array.from({ length: keyCount }, () => String(this.random.int(2 ** 31)));
    const placed = await this.#lookups(keyCount, keys);
    // A write runs at the key's primary and lands on the replicas of its own answer that admit it.
    const written = await this.#primarySets(keys, placed.sets);
    written.forEach((set, i) => {
      if (set === undefined) return;
      const key = keys[i]!;
      const admitted = set.replicas
        .map((m) => this.#byId.get(m.id))
        .filter((n): n is SimNode => n !== undefined && n.placement.admit(key, 'write', set.epoch).kind === 'own');
      // Acknowledged only with a write quorum of them; an unacknowledged write is not followed.
      if (admitted.length >= Math.max(1, set.writeQuorum))
        this.#copies.place(
          key,
          admitted.map((n) => n.member.id),
        );
    });
    const victims = this.random.shuffle(this.#nodes).slice(0, Math.floor(churn * this.#nodes.length));
    const failing = new Set(victims.map((v) => v.member.id));
    const doomed = keys.filter((k) => this.#copies.has(k) && this.#copies.holders(k).every((id) => failing.has(id)));
    for (const victim of victims) {
      victim.running = false;
      await victim.transport.stop();
    }
    await Promise.all(victims.map((v) => Promise.resolve(v.placement.stop?.()).catch(() => undefined)));
    for (const victim of victims) victim.rpc.stop();
    const crashedAt = this.clock.now();
    const right = await this.#lookups(lookups);
    let repairMs: number | null = null;
    let replicationRepairMs: number | null = null;
    let short: readonly string[] = keys;
    for (let period = 0; period < maxPeriods; period++) {
      this.#copies.retry();
      if (repairMs === null) {
        const probe = await this.#lookups(probes);
        if (probe.successRate === 1) repairMs = this.clock.now() - crashedAt;
      }
      if (repairMs !== null) {
        short = (await this.#replication(short)).short;
        if (short.length === 0) {
          replicationRepairMs = this.clock.now() - crashedAt;
          break;
        }
      }
      await this.clock.advanceAsync(this.#periodMs);
    }
    const after = await this.#measure(lookups);
    const final = await this.#replication(keys);
    return {
      nodesFailed: victims.length,
      lookupsFailedAfterCrash: round(1 - right.successRate, 4),
      repairMs,
      afterRepair: after,
      keys: this.#copies.size,
      keysLost: final.lost,
      keysWithEveryReplicaFailed: doomed.length,
      keysUnderReplicated: final.underReplicated,
      replicationRepairMs,
    };
  }

  /** Where the followed keys stand: lost (no copy on a running node), or missing on a current replica (`short`). */
  async #replication(keys: readonly string[]): Promise<{ lost: number; underReplicated: number; short: string[] }> {
    const tracked = keys.filter((k) => this.#copies.has(k));
    const located = await this.#lookups(tracked.length, tracked);
    const sets = await this.#primarySets(tracked, located.sets);
    let lost = 0;
    const short: string[] = [];
    tracked.forEach((key, i) => {
      const holders = this.#copies.holders(key).filter((id) => this.#byId.get(id)?.running === true);
      if (holders.length === 0) {
        lost++;
        return;
      }
      const set = sets[i];
      if (set === undefined || set.replicas.some((m) => this.#byId.get(m.id)?.running && !holders.includes(m.id))) {
        short.push(key);
      }
    });
    return { lost, underReplicated: short.length, short };
  }
}

interface PendingCopy {
  readonly key: string;
  readonly from: string;
  readonly to: string;
  /** The sender leaves the range: it drops its copy once every new owner has it. */
  readonly purge: boolean;
}

/**
 * Where copies of the followed keys are, moved as core's data mover would
 * move them on the ownership changes the nodes announce: an announcing node
 * named in a move's `from` that holds a key of it copies it to the new owners
 * (to \ from, or all of `to` when it leaves the range) once they admit it for
 * writing, and drops its copy when it is not in `to` and a new owner has it.
 * Copies a target refuses are tried again every period while the sender runs.
 */
class CopyModel {
  readonly #holders = new Map<string, Set<string>>();
  readonly #byNode = new Map<string, Set<string>>();
  #pending: PendingCopy[] = [];

  constructor(private readonly node: (id: string) => SimNode | undefined) {}

  get size(): number {
    return this.#holders.size;
  }

  has(key: string): boolean {
    return this.#holders.has(key);
  }

  holders(key: string): string[] {
    return [...(this.#holders.get(key) ?? [])];
  }

  place(key: string, ids: readonly string[]): void {
    for (const id of ids) this.#add(key, id);
  }

  onChange(announcer: SimNode, change: OwnershipChange): void {
    if (!announcer.running || this.#holders.size === 0) return;
    const self = announcer.member.id;
    const held = this.#byNode.get(self);
    if (held === undefined || held.size === 0) return;
    const fresh: PendingCopy[] = [];
    for (const move of change.moves) {
      if (!move.from.includes(self)) continue;
      const purge = !move.to.includes(self);
      const targets = purge ? move.to.filter((id) => id !== self) : move.to.filter((id) => !move.from.includes(id));
      for (const key of [...held]) {
        if (!move.contains(key)) continue;
        for (const to of targets) fresh.push({ key, from: self, to, purge });
      }
    }
    // The new copies go at once when their targets admit them; refused ones wait for the next period's retry.
    this.#deliver(fresh);
  }

  /** Tries the copies that were refused again (once per period). */
  retry(): void {
    const pending = this.#pending;
    this.#pending = [];
    this.#deliver(pending);
  }

  /** Delivers the copies whose sender still runs and holds the key and whose target admits it; keeps the others. */
  #deliver(copies: readonly PendingCopy[]): void {
    const left: PendingCopy[] = [];
    const purged: { key: string; from: string }[] = [];
    for (const copy of copies) {
      const from = this.node(copy.from);
      const to = this.node(copy.to);
      if (from === undefined || !from.running || !this.#holders.get(copy.key)?.has(copy.from)) continue;
      if (to === undefined || !to.running) continue;
      if (to.placement.admit(copy.key, 'write', to.placement.epoch).kind !== 'own') {
        left.push(copy);
        continue;
      }
      this.#add(copy.key, copy.to);
      if (copy.purge) purged.push(copy);
    }
    this.#pending.push(...left);
    // An old owner drops its copy once every new owner it sends to has it.
    for (const { key, from } of purged) {
      if (!this.#pending.some((c) => c.key === key && c.from === from)) this.#remove(key, from);
    }
  }

  #add(key: string, id: string): void {
    let holders = this.#holders.get(key);
    if (holders === undefined) this.#holders.set(key, (holders = new Set()));
    holders.add(id);
    let held = this.#byNode.get(id);
    if (held === undefined) this.#byNode.set(id, (held = new Set()));
    held.add(key);
  }

  #remove(key: string, id: string): void {
    this.#holders.get(key)?.delete(id);
    this.#byNode.get(id)?.delete(key);
  }
}

/** Nearest-rank percentile of sorted values; 0 for none. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
