import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../config/validate.js';
import type { Logger } from '../contracts/logger.js';
import { silentLogger } from '../contracts/logger.js';
import type { Clock } from '../contracts/clock.js';
import type { Member, Membership, MembershipEvent } from '../contracts/membership.js';
import type { MessageRegistry } from '../contracts/rpc.js';
import type { Storage } from '../contracts/storage.js';
import { KvError } from '../errors.js';
import type { ComponentDefinition } from '../kernel/graph.js';
import { createNode } from '../kernel/node.js';
import type { KvNode } from '../kernel/node.js';
import type { PluginRegistry } from '../kernel/registry.js';
import { definePlugin } from '../plugin.js';
import type { CodecSet, JsonSchema } from '../plugin.js';
import { TOKENS } from '../tokens.js';
import type { LinkProfile } from './link-profile.js';
import { SeededRandom } from './seeded-random.js';
import { SimNetwork } from './sim-network.js';
import type { SimTraceEvent } from './sim-network.js';
import type { SimTransport, SimTransportOptions } from './sim-transport.js';
import type { SkewedClock } from './skewed-clock.js';
import { VirtualClock } from './virtual-clock.js';

/** Port every simulated node announces (memberlist's default port; any would do). */
const SIM_PORT = 7946;
/** Virtual time `settle` lets pass per step while a promise is pending. */
const SETTLE_STEP_MS = 10;
/** Virtual time after which `settle` gives up: one hour. */
const SETTLE_LIMIT_MS = 3_600_000;

/** Names of one simulated node. */
export interface SimNodeSpec {
  /** Position in the cluster, 0-based. */
  readonly index: number;
  /** Node id: `n1`, `n2`, ... */
  readonly id: string;
  /** The config's `node.address`: `n1:7946`. */
  readonly hostPort: string;
  /** Its transport URI, `sim://` + hostPort, as a real transport makes `udp://` + hostPort. */
  readonly address: string;
}

export interface SimClusterOptions {
  /** Plugins the node configs may name (membership, codec...). */
  readonly registry: PluginRegistry;
  /** Number of nodes (built, not started, by `create`). */
  readonly nodes: number;
  /**
   * Raw config sections of a node, merged over the harness defaults: `node`
   * (id, address, dataDir; keys given here win), `transport` (`sim`, a
   * placeholder: the harness always provides the SimTransport) and `storage`
   * (`none`, a placeholder that holds nothing). Called again on every restart;
   * `all` is every node of the cluster (for a configured view).
   */
  readonly config: (spec: SimNodeSpec, all: readonly SimNodeSpec[]) => Record<string, unknown>;
  /** Seed of every random draw (network and nodes). Default 1. */
  readonly seed?: number;
  /** Profile of every link (over LINK_PROFILES.lan). Change it later through `network.setDefaults`. */
  readonly link?: Partial<LinkProfile>;
  /** Frame limits of every endpoint; `{ maxMessageBytes: 1192, maxFrameBytes: 1192 }` mimics the udp transport. */
  readonly transport?: SimTransportOptions;
  /** Logger of every node. Default: silent. */
  readonly logger?: Logger;
  /** Receives every packet event of the network (see SimNetwork), for byte counts and traces. */
  readonly trace?: (event: SimTraceEvent) => void;
  /** Root of the nodes' data directories. Default: a fresh temporary folder, removed by `dispose`. */
  readonly dataDir?: string;
  /**
   * Gives every node a clock of its own that is off from the virtual time
   * (see `VirtualClock.skewed`): a function answering each node's skew, or
   * bounds from which each node's offset and drift are drawn uniformly from
   * the seed. A node keeps its skew across restarts (it is its machine's).
   * Timers of every node still run on the one virtual clock. Default: every
   * node reads `clock` itself.
   */
  readonly clockSkew?: ((spec: SimNodeSpec) => ClockSkew) | ClockSkewBounds;
  /** Host components every node builds after what they need (the KV service: `kvServiceDefinition()`). Default none. */
  readonly extras?: readonly ComponentDefinition[];
  /** Config sections those components read, with their schemas (`{ kv: kvConfigSchema }`). Default none. */
  readonly extensions?: Readonly<Record<string, JsonSchema>>;
  /**
   * Real ms a node's start or stop may take on real I/O (a plugin reading
   * its state file) before virtual time moves for it. Virtual time that
   * passes while a file is read depends on how fast the disk answers, so a
   * run whose nodes do real I/O replays exactly only when it is given time.
   * Default 0: virtual time moves at once (nodes that do no I/O).
   */
  readonly realIoMs?: number;
}

/** How far one node's clock is off the virtual time. */
export interface ClockSkew {
  /** Added to what the node reads, in ms: positive runs ahead, negative lags. */
  readonly offsetMs: number;
  /** Rate error in parts per million: the clock gains `driftPpm` µs per virtual second (negative: loses). Default 0. */
  readonly driftPpm?: number;
}

/** Each node's offset is drawn from [-maxOffsetMs, maxOffsetMs] (whole ms), its drift from [-maxDriftPpm, maxDriftPpm]. */
export interface ClockSkewBounds {
  readonly maxOffsetMs: number;
  /** Default 0: no drift. */
  readonly maxDriftPpm?: number;
}

/** Receives every membership event of every node, including nodes built later by `restart`. */
export type SimClusterListener = (observer: SimNodeSpec, event: MembershipEvent) => void;

/** Placeholder manifests for the sections the harness fills itself. */
const SIM_TRANSPORT_PLUGIN = definePlugin({
  family: 'transport',
  name: 'sim',
  description: 'Simulated endpoint; only a SimCluster (which provides the transport) can use it.',
  optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
  needs: [],
  create: () => () => {
    throw new KvError('KVMESH_ERR_PLUGIN_FAILED', 'the sim transport exists only inside a SimCluster');
  },
});

const NO_STORAGE_PLUGIN = definePlugin({
  family: 'storage',
  name: 'none',
  description: 'Holds nothing; for simulated nodes that only run membership.',
  optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
  needs: [],
  create: () => () => noStorage,
});

const closed = (): Promise<never> =>
  Promise.reject(new KvError('KVMESH_ERR_STORAGE_CLOSED', 'this simulated node runs without storage'));

const noStorage: Storage = {
  name: 'none',
  get: closed,
  put: closed,
  count: closed,
  sizeBytes: closed,
  scan: closed,
  collectTombstones: closed,
  putBatch: closed,
  purge: closed,
  hints: { add: closed, targets: closed, list: closed, remove: closed, count: closed },
} as unknown as Storage;

interface Slot {
  readonly spec: SimNodeSpec;
  node: KvNode;
  transport: SimTransport;
  running: boolean;
  /** How many times the node was built (1 + restarts). */
  generation: number;
  unwatch: Array<() => void>;
}

/**
 * N kvmesh nodes in one process on one SimNetwork, driven by one
 * VirtualClock and reproducible from one seed. Nodes are real `createNode`
 * nodes (each in its own container) whose clock, random and transport are
 * simulated, so the plugin code that runs is the production code.
 *
 * Build with `SimCluster.create`, then `start()`, `join()`, and move time
 * with `advance` / `waitFor`. Methods are not re-entrant: await each before
 * calling the next.
 */
export class SimCluster {
  readonly clock: VirtualClock;
  readonly network: SimNetwork;
  /** Root generator; every node gets a fork. */
  readonly random: SeededRandom;
  readonly seed: number;
  readonly specs: readonly SimNodeSpec[];
  readonly #options: SimClusterOptions;
  /** Each node's own clock, by id, when `clockSkew` is set. */
  readonly #clocks = new Map<string, SkewedClock>();
  readonly #registry: PluginRegistry;
  readonly #slots = new Map<string, Slot>();
  readonly #listeners = new Set<SimClusterListener>();
  readonly #dataDir: string;
  readonly #ownsDataDir: boolean;
  /** Shared by every node: the message types and codecs are the same everywhere, and building them is the slow part of a node. */
  #messages: MessageRegistry | undefined;
  readonly #codecs = new Map<string, CodecSet>();

  private constructor(options: SimClusterOptions) {
    if (!Number.isInteger(options.nodes) || options.nodes < 1) {
      throw new RangeError(`a SimCluster needs an integer number of nodes >= 1 (found ${options.nodes})`);
    }
    this.#options = options;
    this.seed = options.seed ?? 1;
    this.clock = new VirtualClock();
    this.random = new SeededRandom(this.seed);
    this.network = new SimNetwork({
      clock: this.clock,
      random: this.random.fork(),
      ...(options.link ? { defaults: options.link } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.trace ? { trace: options.trace } : {}),
    });
    this.#registry = options.registry.clone();
    if (!this.#registry.has('transport', 'sim')) this.#registry.add(SIM_TRANSPORT_PLUGIN, 'simulator');
    if (!this.#registry.has('storage', 'none')) this.#registry.add(NO_STORAGE_PLUGIN, 'simulator');
    this.#ownsDataDir = options.dataDir === undefined;
    this.#dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'kvmesh-sim-'));
    this.specs = Object.freeze(
      Array.from({ length: options.nodes }, (_, index) => {
        const id = `n${index + 1}`;
        const hostPort = `${id}:${SIM_PORT}`;
        return Object.freeze({ index, id, hostPort, address: `sim://${hostPort}` });
      }),
    );
    const skew = options.clockSkew;
    if (skew !== undefined) {
      if (typeof skew !== 'function') checkSkewBounds(skew);
      // Drawn once per node, from a stream of their own: without clockSkew every other stream is as before.
      const random = typeof skew === 'function' ? undefined : this.random.fork();
      for (const spec of this.specs) {
        const { offsetMs, driftPpm = 0 } = typeof skew === 'function' ? skew(spec) : drawSkew(skew, random!);
        this.#clocks.set(spec.id, this.clock.skewed(offsetMs, driftPpm));
      }
    }
  }

  /** Builds every node (not started). */
  static async create(options: SimClusterOptions): Promise<SimCluster> {
    const cluster = new SimCluster(options);
    try {
      for (const spec of cluster.specs) await cluster.#build(spec);
    } catch (err) {
      cluster.#removeDataDir();
      throw err;
    }
    return cluster;
  }

  get size(): number {
    return this.specs.length;
  }

  /** Ids of every node, in index order. */
  get ids(): string[] {
    return this.specs.map((s) => s.id);
  }

  /** @throws RangeError for an id that is not in the cluster. */
  spec(id: string): SimNodeSpec {
    return this.#slot(id).spec;
  }

  /** The node's current KvNode (the newest after a restart). */
  node(id: string): KvNode {
    return this.#slot(id).node;
  }

  /** The clock the node reads: its own skewed view when `clockSkew` is set, else the shared `clock`. */
  nodeClock(id: string): Clock {
    this.#slot(id);
    return this.#clocks.get(id) ?? this.clock;
  }

  /** How far the node's clock is off the virtual time (zeros without `clockSkew`). */
  clockSkew(id: string): Required<ClockSkew> {
    const clock = this.#clocks.get(this.spec(id).id);
    return { offsetMs: clock?.offsetMs ?? 0, driftPpm: clock?.driftPpm ?? 0 };
  }

  /** The node's current Membership (the newest after a restart). */
  membership(id: string): Membership {
    return this.#slot(id).node.get<Membership>(TOKENS.membership);
  }

  /** How many times the node was built: 1, then +1 per restart. */
  generation(id: string): number {
    return this.#slot(id).generation;
  }

  isRunning(id: string): boolean {
    return this.#slot(id).running;
  }

  /** Ids of started nodes that were not crashed or stopped since, in index order. */
  runningIds(): string[] {
    return this.specs.filter((s) => this.#slots.get(s.id)!.running).map((s) => s.id);
  }

  /** `subject` as `observer` sees it now (undefined when unknown there). */
  view(observer: string, subject: string): Member | undefined {
    return this.membership(observer)
      .members()
      .find((m) => m.id === subject);
  }

  /** Subscribes to the membership events of every node, now and after restarts; returns the unsubscribe function. */
  watch(listener: SimClusterListener): () => void {
    this.#listeners.add(listener);
    for (const slot of this.#slots.values()) this.#subscribe(slot, listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Starts the given nodes (default: every node not running), one after another in index order. */
  async start(ids: readonly string[] = this.ids.filter((id) => !this.isRunning(id))): Promise<void> {
    for (const id of ids) {
      const slot = this.#slot(id);
      if (slot.running) continue;
      await this.#settleNode(slot.node.start());
      slot.running = true;
    }
  }

  /**
   * Calls `membership.join(seeds)` on the given nodes (default: every running
   * node) at once, each without its own address among its seeds (a node
   * whose only seed is itself does not join), and advances time until all
   * resolved.
   * @param seeds transport URIs; default the first node's.
   */
  async join(
    ids: readonly string[] = this.runningIds(),
    seeds: readonly string[] = [this.specs[0]!.address],
  ): Promise<void> {
    const joins: Promise<void>[] = [];
    for (const id of ids) {
      const own = this.spec(id).address;
      const others = seeds.filter((s) => s !== own);
      if (others.length > 0) joins.push(this.membership(id).join(others));
    }
    await this.settle(Promise.all(joins));
  }

  /**
   * Stops a node abruptly: its endpoint stops listening first (nothing more
   * leaves or arrives, nobody is told), then the node stops to free its timers.
   */
  async crash(id: string): Promise<void> {
    const slot = this.#slot(id);
    if (!slot.running) return;
    slot.running = false;
    await slot.transport.stop();
    await this.#settleNode(slot.node.stop());
  }

  /** Graceful departure: `membership.leave()`, then the node stops. */
  async leave(id: string): Promise<void> {
    const slot = this.#slot(id);
    if (!slot.running) return;
    await this.settle(this.membership(id).leave());
    slot.running = false;
    await this.#settleNode(slot.node.stop());
  }

  /** Stops a node the way the kernel does on shutdown, without `leave()`. */
  async stop(id: string): Promise<void> {
    const slot = this.#slot(id);
    if (!slot.running) return;
    slot.running = false;
    await this.#settleNode(slot.node.stop());
  }

  /**
   * Builds the node again from its config (same id and address, a new
   * endpoint, a fresh random stream, empty state) and starts it; call
   * `join` afterwards. A node still running is crashed first.
   */
  async restart(id: string): Promise<void> {
    const slot = this.#slot(id);
    await this.crash(id);
    await this.#build(slot.spec);
    await this.start([id]);
  }

  /** Moves virtual time forward by `ms`, letting promises settle after every timer. */
  async advance(ms: number): Promise<void> {
    await this.clock.advanceAsync(ms);
  }

  /**
   * Advances time in steps of `stepMs` until `predicate` holds, checking it
   * before the first step.
   * @returns the virtual ms that passed.
   * @throws Error naming the seed when `limitMs` passed first.
   */
  async waitFor(predicate: () => boolean, limitMs: number, stepMs = SETTLE_STEP_MS): Promise<number> {
    const start = this.clock.now();
    for (;;) {
      if (predicate()) return this.clock.now() - start;
      const waited = this.clock.now() - start;
      if (waited >= limitMs) {
        throw new Error(`condition not reached within ${limitMs} virtual ms (seed ${this.seed})`);
      }
      await this.advance(Math.min(stepMs, limitMs - waited));
    }
  }

  /**
   * Awaits `promise`, advancing virtual time while it is pending (for calls
   * that wait on simulated messages or timers).
   * @throws Error naming the seed when it is still pending after `limitMs`.
   */
  async settle<T>(promise: Promise<T>, limitMs = SETTLE_LIMIT_MS): Promise<T> {
    let done = false;
    const tracked = promise.finally(() => {
      done = true;
    });
    // Handled here too: a promise that rejects before the first step would otherwise count as unhandled.
    tracked.catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));
    const start = this.clock.now();
    while (!done) {
      if (this.clock.now() - start >= limitMs) {
        tracked.catch(() => undefined);
        throw new Error(`an operation did not finish within ${limitMs} virtual ms (seed ${this.seed})`);
      }
      await this.advance(SETTLE_STEP_MS);
    }
    return tracked;
  }

  /** Stops every running node (without leave) and removes the temporary data folder. Idempotent. */
  async dispose(): Promise<void> {
    for (const id of this.runningIds()) await this.stop(id);
    this.#listeners.clear();
    this.#removeDataDir();
  }

  /** `settle`, after giving real I/O up to `realIoMs` to finish the work without virtual time. */
  async #settleNode(work: Promise<void>): Promise<void> {
    const budget = this.#options.realIoMs ?? 0;
    if (budget > 0) {
      let done = false;
      const tracked = work.finally(() => {
        done = true;
      });
      tracked.catch(() => undefined);
      const start = performance.now();
      while (!done && performance.now() - start < budget) await new Promise((resolve) => setImmediate(resolve));
      work = tracked;
    }
    await this.settle(work);
  }

  #slot(id: string): Slot {
    const slot = this.#slots.get(id);
    if (slot === undefined) throw new RangeError(`no simulated node '${id}' (nodes are ${this.specs[0]!.id}..)`);
    return slot;
  }

  async #build(spec: SimNodeSpec): Promise<void> {
    const raw = this.#options.config(spec, this.specs);
    const node = {
      id: spec.id,
      address: spec.hostPort,
      dataDir: join(this.#dataDir, spec.id),
      ...(raw['node'] as object),
    };
    const config = validateConfig(
      { transport: { name: 'sim' }, storage: { name: 'none' }, ...raw, node },
      this.#registry,
      {
        file: `simulated node ${spec.id}`,
        ...(this.#options.extensions ? { extensions: this.#options.extensions } : {}),
      },
    );
    const codecKey = JSON.stringify(config.codec);
    const transport = this.network.endpoint(spec.address, this.#options.transport);
    const provided = {
      clock: this.#clocks.get(spec.id) ?? this.clock,
      random: this.random.fork(),
      transport,
      logger: this.#options.logger ?? silentLogger,
      ...(this.#messages ? { messages: this.#messages } : {}),
      ...(this.#codecs.has(codecKey) ? { codecs: this.#codecs.get(codecKey)! } : {}),
    };
    const built = await createNode({
      config,
      registry: this.#registry,
      provide: provided,
      ...(this.#options.extras ? { extras: this.#options.extras } : {}),
    });
    this.#messages ??= built.get<MessageRegistry>(TOKENS.messages);
    if (!this.#codecs.has(codecKey)) this.#codecs.set(codecKey, built.get<CodecSet>(TOKENS.codecs));
    const previous = this.#slots.get(spec.id);
    for (const unwatch of previous?.unwatch ?? []) unwatch();
    const slot: Slot = {
      spec,
      node: built,
      transport,
      running: false,
      generation: (previous?.generation ?? 0) + 1,
      unwatch: [],
    };
    this.#slots.set(spec.id, slot);
    for (const listener of this.#listeners) this.#subscribe(slot, listener);
  }

  #subscribe(slot: Slot, listener: SimClusterListener): void {
    if (!slot.node.has('membership')) return;
    const membership = slot.node.get<Membership>(TOKENS.membership);
    const unsubscribe = membership.on((event) => {
      if (this.#listeners.has(listener)) listener(slot.spec, event);
    });
    slot.unwatch.push(unsubscribe);
  }

  #removeDataDir(): void {
    if (this.#ownsDataDir) rmSync(this.#dataDir, { recursive: true, force: true });
  }
}

/** A skew drawn uniformly within `bounds` from `random` (two draws: offset, then drift). */
function drawSkew(bounds: ClockSkewBounds, random: SeededRandom): ClockSkew {
  const { maxOffsetMs, maxDriftPpm = 0 } = bounds;
  // `|| 0` turns a rounded -0 into 0.
  return {
    offsetMs: Math.round((2 * random.next() - 1) * maxOffsetMs) || 0,
    driftPpm: (2 * random.next() - 1) * maxDriftPpm || 0,
  };
}

function checkSkewBounds({ maxOffsetMs, maxDriftPpm = 0 }: ClockSkewBounds): void {
  if (!(maxOffsetMs >= 0 && Number.isFinite(maxOffsetMs) && maxDriftPpm >= 0 && maxDriftPpm < 1_000_000)) {
    throw new RangeError(
      `clockSkew needs a finite maxOffsetMs >= 0 and 0 <= maxDriftPpm < 1e6 (found ${maxOffsetMs}, ${maxDriftPpm})`,
    );
  }
}
