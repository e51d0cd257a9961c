import 'reflect-metadata';
import { isAbsolute, resolve } from 'node:path';
import { container as rootContainer } from 'tsyringe';
import type { DependencyContainer } from 'tsyringe';
import type { PluginCatalog } from '../config/catalog.js';
import type { KvmeshConfig } from '../config/validate.js';
import type { Lifecycle } from '../contracts/lifecycle.js';
import type { Logger } from '../contracts/logger.js';
import { silentLogger } from '../contracts/logger.js';
import { KvError, wrapError } from '../errors.js';
import type { Components, NodeInfo } from '../plugin.js';
import { coreDefinitions, pluginDefinitions } from './definitions.js';
import { dependencyOrder } from './graph.js';
import type { ComponentDefinition } from './graph.js';

export type NodeState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface CreateNodeOptions {
  readonly config: KvmeshConfig;
  /** Where the configured plugins are looked up: a `PluginRegistry`, or what `loadConfig` answered. */
  readonly registry: PluginCatalog;
  /**
   * Ready-made components that replace what the kernel would build: a
   * virtual clock, a seeded random, a simulated transport, a logger.
   * Provided components with lifecycle hooks are started and stopped like built ones.
   */
  readonly provide?: Partial<Components>;
  /** Host components (KV service, API server...) ordered and started after what they need. */
  readonly extras?: readonly ComponentDefinition[];
  /** Folder the config came from (NodeInfo.configDir). Default: the working directory. */
  readonly configDir?: string;
  /** Folder relative data directories resolve against. Default: the working directory. */
  readonly cwd?: string;
  /**
   * Without cluster secrets, take no internal frame while the node has no
   * peers: its `join` names no address (a seed that lists itself counts as
   * one), its membership, if any, lists no member but itself, and it sent
   * no frame to another node yet. The server
   * sets it for every node it runs. Default false: a simulation's harness
   * wires its nodes' peers itself.
   */
  readonly closedWithoutPeers?: boolean;
  /**
   * Longest wait, in real time, for one component's `stop()` (default
   * COMPONENT_STOP_TIMEOUT_MS); a stop still pending then is given up on.
   */
  readonly componentStopTimeoutMs?: number;
}

interface Built {
  readonly definition: ComponentDefinition;
  readonly instance: unknown;
}

/**
 * One kvmesh node: its own tsyringe child container holding every component,
 * so any number of nodes can live in one process (the simulator runs
 * thousands). Build with `createNode`, then `start()` and `stop()`.
 */
export class KvNode {
  readonly container: DependencyContainer;
  readonly info: NodeInfo;
  readonly #built: readonly Built[];
  readonly #logger: Logger;
  #state: NodeState = 'created';
  #started: Built[] = [];
  #stopping: Promise<void> | undefined;

  readonly #stopTimeoutMs: number;

  constructor(
    container: DependencyContainer,
    info: NodeInfo,
    built: readonly Built[],
    logger: Logger,
    stopTimeoutMs: number = COMPONENT_STOP_TIMEOUT_MS,
  ) {
    this.container = container;
    this.info = info;
    this.#built = built;
    this.#logger = logger;
    this.#stopTimeoutMs = stopTimeoutMs;
  }

  get state(): NodeState {
    return this.#state;
  }

  /** Component names in start order. */
  get components(): string[] {
    return this.#built.map((b) => b.definition.name);
  }

  /** A component by token (`TOKENS.membership`) or name (`'membership'`). */
  get<T>(tokenOrName: symbol | string): T {
    if (typeof tokenOrName === 'string') {
      const found = this.#built.find((b) => b.definition.name === tokenOrName);
      if (!found) throw new KvError('KVMESH_ERR_KERNEL_DEPENDENCY', `this node has no component '${tokenOrName}'`);
      return found.instance as T;
    }
    return this.container.resolve<T>(tokenOrName);
  }

  /** Whether a component by that name was built. */
  has(name: string): boolean {
    return this.#built.some((b) => b.definition.name === name);
  }

  /**
   * Starts every component after the ones it needs. On a failure, what
   * already started is stopped again (reverse order) and the error names the
   * component: `membership '<name>': ...`.
   * @throws KvError KVMESH_ERR_KERNEL_STATE unless the node is new.
   */
  async start(): Promise<void> {
    if (this.#state !== 'created') {
      throw new KvError('KVMESH_ERR_KERNEL_STATE', `cannot start a node that is ${this.#state}; build a new one`);
    }
    this.#state = 'starting';
    for (const built of this.#built) {
      try {
        await (built.instance as Lifecycle | undefined)?.start?.();
        this.#started.push(built);
      } catch (err) {
        this.#state = 'failed';
        await this.#stopStarted();
        throw wrapError(built.definition.label, err);
      }
    }
    this.#state = 'running';
    this.#logger.info({ id: this.info.id, address: this.info.address }, 'node started');
  }

  /**
   * Stops started components in reverse start order. Idempotent and safe to
   * call concurrently: every call resolves when the node has stopped. A
   * component that fails to stop is logged and the others still stop; the
   * first failure is thrown at the end.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    if (this.#state === 'created') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopping';
    const failure = await this.#stopStarted();
    this.#state = 'stopped';
    this.#logger.info({ id: this.info.id }, 'node stopped');
    if (failure) throw failure;
  }

  async #stopStarted(): Promise<KvError | undefined> {
    let first: KvError | undefined;
    for (const built of this.#started.reverse()) {
      try {
        await this.#stopOne(built);
      } catch (err) {
        const wrapped = wrapError(built.definition.label, err);
        this.#logger.error({ err: wrapped.message }, 'component failed to stop');
        first ??= wrapped;
      }
    }
    this.#started = [];
    return first;
  }

  /**
   * Stops one component, within the stop timeout (real time, so that a
   * simulation, whose clock runs as fast as it is driven, gives up only on
   * a stop that hangs): one that takes longer is given up on (it fails the
   * stop, naming itself) so that the others still stop and the process can
   * exit; one that took over SLOW_STOP_MS is named in a warning.
   */
  async #stopOne(built: Built): Promise<void> {
    const stop = (built.instance as Lifecycle | undefined)?.stop;
    if (stop === undefined) return;
    const limitMs = this.#stopTimeoutMs;
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new KvError(
              'KVMESH_ERR_KERNEL_STATE',
              `did not stop within ${limitMs} ms; given up on so that the node can stop`,
            ),
          ),
        limitMs,
      );
    });
    try {
      await Promise.race([stop.call(built.instance), late]);
    } finally {
      clearTimeout(timer);
      const tookMs = Math.round(performance.now() - started);
      if (tookMs > SLOW_STOP_MS) {
        this.#logger.warn({ component: built.definition.label, tookMs }, 'component was slow to stop');
      }
    }
  }
}

/** Longest wait for one component's `stop()`. */
export const COMPONENT_STOP_TIMEOUT_MS = 5_000;
/** A component whose `stop()` takes longer is named in a warning. */
const SLOW_STOP_MS = 1_000;

/**
 * Builds (does not start) a node from a validated config: every configured
 * plugin, the core services (messages, codecs, rpc) and the host's extras,
 * each in a child container of its own node.
 * @throws KvError KVMESH_ERR_KERNEL_DEPENDENCY, or a plugin's error wrapped with its family and name.
 */
export async function createNode(options: CreateNodeOptions): Promise<KvNode> {
  const { config, registry } = options;
  const cwd = options.cwd ?? process.cwd();
  const info: NodeInfo = Object.freeze({
    id: config.node.id,
    address: config.node.address,
    role: config.node.role,
    dataDir: isAbsolute(config.node.dataDir) ? config.node.dataDir : resolve(cwd, config.node.dataDir),
    configDir: options.configDir ?? cwd,
  });
  const provided = options.provide ?? {};
  const logger = (provided.logger ?? silentLogger).child({ node: info.id });
  const definitions = [
    ...coreDefinitions({ info, config, logger, provided, closedWithoutPeers: options.closedWithoutPeers ?? false }),
    ...pluginDefinitions(config, registry, provided),
    ...(options.extras ?? []),
  ];
  const container = rootContainer.createChildContainer();
  const components: Record<string, unknown> = {};
  const built: Built[] = [];
  for (const definition of dependencyOrder(definitions)) {
    const view: Record<string, unknown> = {};
    for (const need of definition.needs) view[need] = components[need];
    for (const need of definition.optionalNeeds ?? []) if (need in components) view[need] = components[need];
    if ('logger' in view) view['logger'] = logger.child({ component: definition.name });
    let instance: unknown;
    try {
      instance = await definition.build(Object.freeze(view));
    } catch (err) {
      // Nothing was started yet, and building must not hold resources (that is start's job).
      throw wrapError(definition.label, err);
    }
    components[definition.name] = instance;
    container.register(definition.token, { useValue: instance });
    built.push({ definition, instance });
  }
  return new KvNode(container, info, built, logger, options.componentStopTimeoutMs);
}
