import type { AsyncLocalStorage } from 'node:async_hooks';
import { validateConfig } from '../config/validate.js';
import type { KvmeshConfig } from '../config/validate.js';
import type { Codec } from '../contracts/codec.js';
import type { Logger } from '../contracts/logger.js';
import type { OwnershipChange, Placement } from '../contracts/placement.js';
import type { CallOptions, MessageListener, MessageRegistry, RequestHandler, Rpc } from '../contracts/rpc.js';
import { KvError } from '../errors.js';
import type { PluginRegistry } from '../kernel/registry.js';
import { definePlugin } from '../plugin.js';
import type { CodecSet, Components, NodeInfo, PlacementSimulation, SimulatedMember } from '../plugin.js';
import { createMessageRegistry } from '../rpc/messages.js';
import { RpcService } from '../rpc/rpc-service.js';
import { PlacementCodec } from './placement-codec.js';
import type { PlacementCodecFigures } from './placement-codec.js';
import type { ComponentName } from '../tokens.js';
import type { PlacementSimOptions } from './placement-sim-types.js';
import type { SeededRandom } from './seeded-random.js';
import type { SimNetwork } from './sim-network.js';
import type { SimTransport } from './sim-transport.js';
import type { VirtualClock } from './virtual-clock.js';

/** Components the simulator can give a placement; one that needs more (membership, storage...) is refused. */
export const PROVIDED: ReadonlySet<ComponentName> = new Set<ComponentName>([
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

/** Maintenance period of a plugin whose manifest gives no hint. */
const DEFAULT_PERIOD_MS = 1000;

export const SIM_TRANSPORT = definePlugin({
  family: 'transport',
  name: 'sim',
  description: 'Simulated endpoint; the placement simulator provides it.',
  optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
  needs: [],
  create: () => () => {
    throw new KvError('KVMESH_ERR_PLUGIN_FAILED', 'the sim transport exists only inside a simulator');
  },
});

export const NO_STORAGE = definePlugin({
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
export interface LookupContext {
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

export interface SimNode {
  readonly member: SimulatedMember;
  readonly transport: SimTransport;
  readonly rpc: RpcService;
  readonly placement: Placement;
  running: boolean;
}

/** What the node factory shares with the whole run. */
export interface PlacementNodesOptions {
  readonly options: PlacementSimOptions;
  readonly registry: PluginRegistry;
  readonly hint: PlacementSimulation | undefined;
  readonly codecName: string | undefined;
  readonly members: readonly SimulatedMember[];
  readonly network: SimNetwork;
  readonly clock: VirtualClock;
  /** The run's random: each node takes a fork of it, in the order the nodes are built. */
  readonly random: SeededRandom;
  readonly logger: Logger;
  readonly context: AsyncLocalStorage<LookupContext>;
}

/**
 * Builds the simulated nodes of a placement run: per node only what the
 * placement needs (a SimTransport endpoint, an RpcService over it, the
 * shared virtual clock, a fork of the seeded random, the message registry
 * and codecs, shared by all), never a whole node.
 */
export class PlacementNodes {
  readonly #o: PlacementNodesOptions;
  #messages: MessageRegistry | undefined;
  #codecs: CodecSet | undefined;
  #sampled: PlacementCodec | undefined;
  #codecName = '';
  #periodMs = DEFAULT_PERIOD_MS;
  #built = 0;

  constructor(options: PlacementNodesOptions) {
    this.#o = options;
  }

  /** The plugin's maintenance period (manifest hint), known once the first node is built. */
  get periodMs(): number {
    return this.#periodMs;
  }

  /** How the messages travelled so far (all through the codec when no sampling codec was built). */
  get codecFigures(): PlacementCodecFigures {
    return this.#sampled?.figures ?? { name: this.#codecName, throughCodec: null, canonical: 0 };
  }

  /**
   * Builds one node's components and its placement (not started); `onChange`
   * hears the ownership changes it announces from then on.
   */
  async build(
    member: SimulatedMember,
    contact: SimulatedMember | undefined,
    onChange: (node: SimNode, change: OwnershipChange) => void,
  ): Promise<SimNode> {
    const given = this.#o.options.options ?? {};
    const pluginOptions = this.#o.hint?.options?.(member, this.#o.members, given, contact) ?? given;
    const config: KvmeshConfig = validateConfig(
      {
        node: { id: member.id, address: member.hostPort, dataDir: `/nonexistent/${member.id}` },
        transport: { name: 'sim' },
        storage: { name: 'none' },
        ...(this.#o.codecName ? { codec: { name: this.#o.codecName } } : {}),
        placement: { name: this.#o.options.plugin, options: pluginOptions },
      },
      this.#o.registry,
      { file: `simulated node ${member.id}` },
    );
    if (this.#built++ === 0) this.#periodMs = this.#o.hint?.periodMs?.(config.placement!.options) ?? DEFAULT_PERIOD_MS;
    this.#messages ??= createMessageRegistry();
    this.#codecs ??= await this.#codecSet(config, this.#messages);
    const transport = this.#o.network.endpoint(member.address, this.#o.options.transport);
    const clock = this.#o.clock;
    const logger = this.#o.logger.child({ node: member.id });
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
      random: this.#o.random.fork(),
      logger: logger.child({ component: 'placement' }),
      messages: this.#messages,
      codec: this.#codecs.primary,
      codecs: this.#codecs,
      transport,
      rpc: new CountingRpc(rpc, this.#o.context),
      config,
    };
    const manifest = this.#o.registry.get('placement', this.#o.options.plugin);
    const placement = (await manifest.create(config.placement!.options)(components as Components)) as Placement;
    const node: SimNode = { member, transport, rpc, placement, running: false };
    placement.onOwnershipChange?.((change) => onChange(node, change));
    return node;
  }

  async #codecSet(config: KvmeshConfig, messages: MessageRegistry): Promise<CodecSet> {
    const all: Codec[] = [];
    let primary: Codec | undefined;
    for (const { manifest } of this.#o.registry.entries('codec')) {
      const isPrimary = manifest.name === config.codec.name;
      const options = isPrimary
        ? config.codec.options
        : validateConfig({ node: { address: 'x:1' }, codec: { name: manifest.name } }, this.#o.registry).codec.options;
      const codec = (await manifest.create(options)({ messages, logger: this.#o.logger } as Components)) as Codec;
      all.push(codec);
      if (isPrimary) primary = codec;
    }
    if (primary === undefined)
      throw new KvError('KVMESH_ERR_PLUGIN_UNKNOWN', `codec '${config.codec.name}' is not registered`);
    this.#codecName = primary.name;
    const o = this.#o.options;
    if (o.everyMessageThroughCodec !== true && !((o.link?.duplicate ?? 0) > 0)) {
      const sampled = new PlacementCodec(primary, messages);
      this.#sampled = sampled;
      all[all.indexOf(primary)] = sampled;
      primary = sampled;
    }
    const byTag = new Map(all.map((c) => [c.tag, c]));
    return { primary, all, byTag: (tag) => byTag.get(tag) };
  }
}
