import {
  RpcService,
  SeededRandom,
  SimNetwork,
  VirtualClock,
  createMessageRegistry,
  silentLogger,
  type CodecSet,
  type MessageRegistry,
  type OwnershipChange,
  type SimTransport,
} from '@kvmesh/core';
import { protobufCodec } from '../../src/codec/protobuf/index.js';
import {
  CHORD_DEFAULTS,
  ChordPlacement,
  fingerStart,
  inHalfOpen,
  metricNamed,
  type ChordOptions,
  type Ident,
} from '../../src/placement/chord/index.js';

export interface RingNode {
  readonly id: string;
  readonly address: string;
  readonly placement: ChordPlacement;
  readonly transport: SimTransport;
  readonly rpc: RpcService;
  readonly changes: OwnershipChange[];
  running: boolean;
}

/**
 * Chord placements on one simulated network and virtual clock, built from
 * only what they need, for unit tests. Every method that waits moves virtual
 * time itself.
 */
export class ChordRing {
  readonly clock = new VirtualClock();
  readonly random: SeededRandom;
  readonly network: SimNetwork;
  readonly nodes = new Map<string, RingNode>();
  readonly #messages: MessageRegistry = createMessageRegistry();
  #codecs: CodecSet | undefined;
  readonly #defaults: Partial<ChordOptions>;

  constructor(seed = 1, defaults: Partial<ChordOptions> = {}) {
    this.random = new SeededRandom(seed);
    this.network = new SimNetwork({ clock: this.clock, random: this.random.fork() });
    this.#defaults = defaults;
  }

  get heartbeatMs(): number {
    return this.#defaults.heartbeatMs ?? CHORD_DEFAULTS.heartbeatMs;
  }

  /** Builds node `id` (not started). */
  async build(id: string, options: Partial<ChordOptions> = {}, seeds: readonly string[] = []): Promise<RingNode> {
    this.#codecs ??= await this.#codecSet();
    const address = `sim://${id}:7946`;
    const transport = this.network.endpoint(address);
    const rpc = new RpcService({
      transport,
      codecs: this.#codecs,
      messages: this.#messages,
      clock: this.clock,
      logger: silentLogger,
      timeoutMs: 2000,
    });
    const placement = new ChordPlacement(
      {
        node: { id, address: `${id}:7946`, role: 'storage', dataDir: '/nonexistent', configDir: '/' },
        clock: this.clock,
        random: this.random.fork(),
        logger: silentLogger,
        messages: this.#messages,
        rpc,
        config: { join: [] },
      },
      { ...CHORD_DEFAULTS, ...this.#defaults, ...options, seeds: [...seeds] },
    );
    const node: RingNode = { id, address, placement, transport, rpc, changes: [], running: false };
    placement.onOwnershipChange((change) => node.changes.push(change));
    this.nodes.set(id, node);
    return node;
  }

  /** Builds and starts node `id`, joining through `seed` (a node id) when given. */
  async add(id: string, seed?: string, options: Partial<ChordOptions> = {}): Promise<RingNode> {
    const node = await this.build(id, options, seed === undefined ? [] : [this.nodes.get(seed)!.address]);
    await this.start(node);
    return node;
  }

  async start(node: RingNode): Promise<void> {
    await node.transport.start();
    node.running = true;
    await this.drive(node.placement.start());
  }

  /** A crash: the endpoint stops first (nothing leaves any more), then the timers. */
  async crash(id: string): Promise<void> {
    const node = this.nodes.get(id)!;
    node.running = false;
    await node.transport.stop();
    await this.drive(node.placement.stop());
  }

  /** A graceful leave: the placement says goodbye, then the endpoint stops. */
  async leave(id: string): Promise<void> {
    const node = this.nodes.get(id)!;
    node.running = false;
    await this.drive(node.placement.stop());
    await node.transport.stop();
  }

  async stopAll(): Promise<void> {
    for (const node of this.nodes.values()) if (node.running) await this.crash(node.id);
  }

  running(): RingNode[] {
    return [...this.nodes.values()].filter((n) => n.running);
  }

  async periods(count: number): Promise<void> {
    await this.clock.advanceAsync(count * this.heartbeatMs);
  }

  /** Awaits `promise` while moving virtual time. */
  async drive<T>(promise: Promise<T>): Promise<T> {
    let done = false;
    const tracked = promise.finally(() => {
      done = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    for (let i = 0; !done && i < 100_000; i++) await this.clock.advanceAsync(10);
    return tracked;
  }

  /** The running nodes in ring order (by identifier), as the truth to compare with. */
  order(): { id: string; ident: Ident }[] {
    return this.running()
      .map((n) => ({ id: n.id, ident: n.placement.table!.self.ident }))
      .sort((a, b) => (a.ident < b.ident ? -1 : a.ident > b.ident ? 1 : 0));
  }

  /** The true replicas of `key`: its successor among the running nodes, then the next `count - 1`. */
  replicasOf(key: string, count: number, metric: 'md5' | 'trivial' = 'md5'): string[] {
    return this.replicasAt(metricNamed(metric).keyIdent(key), count);
  }

  replicasAt(target: Ident, count: number): string[] {
    const ring = this.order();
    let i = ring.findIndex((n) => n.ident >= target);
    if (i < 0) i = 0;
    return Array.from({ length: Math.min(count, ring.length) }, (_, k) => ring[(i + k) % ring.length]!.id);
  }

  /** Finger i of the node at `self` as it should be. */
  trueFinger(self: Ident, i: number, bits: number): string {
    return this.replicasAt(fingerStart(self, i, bits), 1)[0]!;
  }

  /** Whether every running node's successor and predecessor are the true ones. */
  ringCorrect(): boolean {
    const ring = this.order();
    return ring.every((n, i) => {
      const table = this.nodes.get(n.id)!.placement.table!;
      if (ring.length === 1) return table.successor === undefined;
      const next = ring[(i + 1) % ring.length]!;
      const prev = ring[(i - 1 + ring.length) % ring.length]!;
      return table.successor?.id === next.id && table.predecessor?.id === prev.id;
    });
  }

  async #codecSet(): Promise<CodecSet> {
    const codec = await protobufCodec.create({ maxMessageBytes: 16 * 1024 * 1024 })({
      messages: this.#messages,
    } as never);
    return { primary: codec, all: [codec], byTag: (tag) => (tag === codec.tag ? codec : undefined) };
  }
}

export { inHalfOpen };
