import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KEPT_STORAGE_PLUGIN,
  KeptStorages,
  KvError,
  PluginRegistry,
  SeededRandom,
  SimNetwork,
  VirtualClock,
  createNode,
  definePlugin,
  kvConfigSchema,
  kvServiceDefinition,
  silentLogger,
  validateConfig,
} from '@kvmesh/core';
import type { CoordinatorKvService, KvNode, LinkProfile, Logger, Storage, SimTransport } from '@kvmesh/core';
import type { ExecutionContext } from 'ava';
import { builtinPlugins } from '../../src/index.js';
import { kademliaPlacement } from '../../src/placement/kademlia/index.js';
import type { KademliaPlacement } from '../../src/placement/kademlia/index.js';

/** The port every simulated node announces. */
const PORT = 7946;

const SIM_TRANSPORT = definePlugin({
  family: 'transport',
  name: 'sim',
  description: 'Placeholder: the test harness provides each node a SimTransport.',
  optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
  needs: [],
  create: () => () => {
    throw new KvError('KVMESH_ERR_PLUGIN_FAILED', 'the sim transport is provided by the harness');
  },
});

export const UTF8 = new TextEncoder();
export const text = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : new TextDecoder().decode(bytes);

export interface SimKademliaOptions {
  /** Nodes to build (default 3). */
  readonly nodes?: number;
  /** How many of them to start, the first ones (default all). */
  readonly started?: number;
  /** Placement options of every node (over the plugin's defaults). */
  readonly placement?: Record<string, unknown>;
  /** Codec of every node (default protobuf, the KeyShift topology's). */
  readonly codec?: 'protobuf' | 'msgpack' | 'json';
  readonly seed?: number;
  /** Run the KV service on every node (default true). */
  readonly kv?: boolean;
  readonly kvOptions?: Record<string, unknown>;
  readonly link?: Partial<LinkProfile>;
  readonly logger?: Logger;
  /** Keep each node's (memory) storage across its crashes, as a disk would (default: a restart finds it empty). */
  readonly keepStorage?: boolean;
  /** Frame limits of every endpoint (default: large enough for any record). */
  readonly maxFrameBytes?: number;
}

export interface SimKademliaNode {
  readonly id: string;
  readonly address: string;
  node: KvNode;
  transport: SimTransport;
  running: boolean;
  readonly placement: () => KademliaPlacement;
  readonly kv: () => CoordinatorKvService;
  readonly storage: () => Storage;
}

/**
 * Whole kvmesh nodes (kernel, Rpc, codec, memory storage, KV service and the
 * kademlia placement) on one SimNetwork and one VirtualClock, reproducible
 * from a seed. Node i bootstraps through node 1.
 */
export class SimKademlia {
  readonly clock = new VirtualClock();
  readonly network: SimNetwork;
  readonly nodes: SimKademliaNode[] = [];
  readonly seed: number;
  readonly #options: SimKademliaOptions;
  readonly #registry: PluginRegistry;
  readonly #dir: string;
  readonly #random: SeededRandom;
  readonly #kept: KeptStorages;

  private constructor(options: SimKademliaOptions) {
    this.#options = options;
    this.seed = options.seed ?? 1;
    this.#random = new SeededRandom(this.seed);
    this.network = new SimNetwork({
      clock: this.clock,
      random: this.#random.fork(),
      ...(options.link ? { defaults: options.link } : {}),
    });
    this.#registry = new PluginRegistry([
      ...builtinPlugins.filter((p) => p.name !== 'kademlia'),
      kademliaPlacement,
      SIM_TRANSPORT,
    ]);
    this.#kept = new KeptStorages(this.#registry, 'memory');
    this.#registry.add(this.#kept.manifest(), 'test');
    this.#dir = mkdtempSync(join(tmpdir(), 'kvmesh-kademlia-'));
  }

  /** Builds and starts the nodes; every one is stopped when the test ends. */
  static async start(t: ExecutionContext, options: SimKademliaOptions = {}): Promise<SimKademlia> {
    const sim = new SimKademlia(options);
    t.teardown(() => sim.dispose());
    const count = options.nodes ?? 3;
    for (let i = 0; i < count; i++) {
      const id = `n${i + 1}`;
      sim.nodes.push(await sim.#build(id));
    }
    for (const n of sim.nodes.slice(0, options.started ?? count)) await sim.startNode(n.id);
    return sim;
  }

  node(id: string): SimKademliaNode {
    const found = this.nodes.find((n) => n.id === id);
    if (found === undefined) throw new RangeError(`no node ${id}`);
    return found;
  }

  /** Starts node `id` (building it again after a crash); resolves once its start (and bootstrap) finished. */
  async startNode(id: string): Promise<void> {
    const slot = this.node(id);
    if (slot.running) return;
    if (slot.node.state !== 'created') {
      const fresh = await this.#build(id);
      slot.node = fresh.node;
      slot.transport = fresh.transport;
    }
    await this.settle(slot.node.start());
    slot.running = true;
  }

  /** Stops node `id` abruptly: its endpoint goes silent first, then the node stops. */
  async crash(id: string): Promise<void> {
    const slot = this.node(id);
    if (!slot.running) return;
    slot.running = false;
    await slot.transport.stop();
    await this.settle(slot.node.stop().catch(() => undefined));
  }

  /** Awaits `promise`, advancing virtual time while it is pending. */
  async settle<T>(promise: Promise<T>, limitMs = 600_000, stepMs = 5): Promise<T> {
    let done = false;
    const tracked = promise.finally(() => {
      done = true;
    });
    tracked.catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));
    const start = this.clock.now();
    while (!done) {
      if (this.clock.now() - start >= limitMs)
        throw new Error(`still pending after ${limitMs} virtual ms (seed ${this.seed})`);
      await this.clock.advanceAsync(stepMs);
    }
    return tracked;
  }

  /** Advances virtual time until `condition` holds. */
  async until(condition: () => boolean | Promise<boolean>, limitMs = 600_000, stepMs = 10): Promise<number> {
    const start = this.clock.now();
    for (;;) {
      if (await condition()) return this.clock.now() - start;
      if (this.clock.now() - start >= limitMs)
        throw new Error(`condition not reached in ${limitMs} virtual ms (seed ${this.seed})`);
      await this.clock.advanceAsync(stepMs);
    }
  }

  async advance(ms: number): Promise<void> {
    await this.clock.advanceAsync(ms, 10);
  }

  async put(id: string, key: string, value: string, conditions?: { ifMatch?: string; ifNoneMatch?: '*' }) {
    return this.settle(this.node(id).kv().put(key, UTF8.encode(value), 'text/plain', conditions));
  }

  async get(id: string, key: string): Promise<string | undefined> {
    const { record } = await this.settle(this.node(id).kv().get(key));
    return text(record?.value);
  }

  async count(id: string): Promise<number> {
    return this.node(id).storage().count();
  }

  async dispose(): Promise<void> {
    for (const n of this.nodes) {
      if (!n.running) continue;
      n.running = false;
      await this.settle(n.node.stop().catch(() => undefined)).catch(() => undefined);
    }
    await this.#kept.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async #build(id: string): Promise<SimKademliaNode> {
    const o = this.#options;
    const address = `sim://${id}:${PORT}`;
    const seeds = id === 'n1' ? [] : [`n1:${PORT}`];
    const raw = {
      node: { id, address: `${id}:${PORT}`, dataDir: join(this.#dir, id) },
      transport: { name: 'sim' },
      codec: { name: o.codec ?? 'protobuf' },
      storage: { name: o.keepStorage === true ? KEPT_STORAGE_PLUGIN : 'memory' },
      placement: { name: 'kademlia', options: { seeds, persistOwnership: false, ...o.placement } },
      rpc: { timeoutMs: 1_000 },
      kv: { antiEntropyIntervalMs: 0, ...o.kvOptions },
    };
    const config = validateConfig(raw, this.#registry, { extensions: { kv: kvConfigSchema } });
    const maxFrameBytes = o.maxFrameBytes ?? 4 * 1024 * 1024;
    const transport = this.network.endpoint(address, { maxFrameBytes, maxMessageBytes: maxFrameBytes });
    const node = await createNode({
      config,
      registry: this.#registry,
      provide: { clock: this.clock, random: this.#random.fork(), transport, logger: o.logger ?? silentLogger },
      extras: o.kv === false ? [] : [kvServiceDefinition()],
    });
    const slot: SimKademliaNode = {
      id,
      address,
      node,
      transport,
      running: false,
      placement: () => slot.node.get<KademliaPlacement>('placement'),
      kv: () => slot.node.get<CoordinatorKvService>('kv'),
      storage: () => slot.node.get<Storage>('storage'),
    };
    return slot;
  }
}
