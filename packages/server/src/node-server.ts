import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { isAbsolute, resolve } from 'node:path';
import {
  DataDirLock,
  KvError,
  PluginRegistry,
  TOKENS,
  bearerToken,
  createNode,
  isKvError,
  kvServiceDefinition,
  withAdminToken,
  loadConfig,
  nodeFacades,
  resolveConfig,
  wrapError,
} from '@kvmesh/core';
import type {
  Cluster,
  ComponentDefinition,
  HostedHttp,
  CoordinatorKvService,
  KvNode,
  KvService,
  KvServiceStats,
  KvmeshConfig,
  LoadedConfig,
  Logger,
  Membership,
  Placement,
  PluginCatalog,
  Storage,
  Transport,
  ViewParameters,
} from '@kvmesh/core';
import { builtinPlugins } from '@kvmesh/plugins';
import { createApp } from './app.js';
import type { ApiApp } from './app.js';
import { mountFacades, ownPortApp, withFastRoutes } from './facade-mount.js';
import { localSecret } from './local-secret.js';
import type { LocalSecret } from './local-secret.js';
import type { FacadeEndpoint, FacadeServing, MountedFacade } from './facade-mount.js';
import { errorBody } from './http-errors.js';
import { httpServer, listen } from './http-server.js';
import type { RoutesView } from './routes/native.js';
import type { Listener } from './http-server.js';
import { createLogger } from './logger.js';
import { ServerMetrics } from './metrics.js';
import type { MetricSources } from './metrics.js';
import { nodeOpenApiDocument } from './openapi.js';
import type { FacadeDocument } from './openapi.js';
import type { ClusterView } from './routes/native.js';
import { SERVER_CONFIG_EXTENSIONS, apiSettings, joinHostPort, logLevel, splitHostPort } from './settings.js';
import type { ApiSettings } from './settings.js';

export interface NodeServerOptions {
  /** Path of the config file. Either this or `document`. */
  readonly configFile?: string;
  /** An already parsed config (tests, generated configs); relative paths resolve against `dir`. */
  readonly document?: unknown;
  readonly dir?: string;
  /** Values that win over the file, by JSON Pointer (command-line flags). */
  readonly overrides?: Readonly<Record<string, unknown>>;
  /** Environment for `${VAR}`; default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Plugins to choose from; default the built-ins. The config's own `plugins` are added. */
  readonly registry?: PluginRegistry;
  /** Default: a pino logger at the config's `log.level`. */
  readonly logger?: Logger;
  /** More host components (facades, admin services), started after what they need. */
  readonly extras?: readonly ComponentDefinition[];
  /** Adds routes (facades, admin pages) to the app once the node is built, before it starts. */
  readonly configureApp?: (app: ApiApp, node: KvNode) => void;
  /**
   * Take the data directory (`node.dataDir`) for this node alone before
   * anything opens it, across processes (`kvmesh.lock`, see DataDirLock),
   * and free it when the server shut down. `kvmesh start` does. Default
   * false, so that tests may run many nodes of one config side by side.
   */
  readonly lockDataDir?: boolean;
}

/** What a node does before its join answered (GET /v1/ready, KVMESH_ERR_KV_NOT_JOINED). */
const JOINING = 'joining its cluster through the seeds in join';
/** First retry delay of a failed join, doubled up to JOIN_RETRY_MAX_MS. */
const JOIN_RETRY_MS = 250;
const JOIN_RETRY_MAX_MS = 5_000;
type ConnectListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** Longest wait for `membership.leave()` on shutdown: a leave is a courtesy, not a requirement. */
const LEAVE_TIMEOUT_MS = 5_000;
const JSON_TYPE = 'application/json; charset=utf-8';
/** While draining, how often connections that became idle are closed. */
const DRAIN_POLL_MS = 50;

/**
 * One kvmesh node serving HTTP: the kernel node built from a config, the Koa
 * app on the node's address, and the transport's internal endpoint on the
 * same port when the transport can be served by a host server
 * (`Transport.hostHttp`). Build and start with `startNodeServer`.
 */
export class NodeServer {
  readonly node: KvNode;
  readonly config: KvmeshConfig;
  readonly logger: Logger;
  /** Base URL of the API, e.g. `http://127.0.0.1:7700`. */
  readonly url: string;
  readonly #server: Server;
  /** The transport's incoming side when this server serves it (Transport.hostHttp). */
  hostedTransport: HostedHttp | undefined;
  readonly #api: ApiSettings;
  #facades: readonly { readonly name: string; readonly url: string }[] = [];
  #facadeEndpoints: readonly FacadeEndpoint[] = [];
  readonly #lock: DataDirLock | undefined;
  #joined: boolean;
  #draining = false;
  #joinTimer: NodeJS.Timeout | undefined;
  #settled = false;
  #shutdown: Promise<void> | undefined;

  constructor(
    node: KvNode,
    config: KvmeshConfig,
    server: Server,
    api: ApiSettings,
    logger: Logger,
    lock?: DataDirLock,
  ) {
    this.node = node;
    this.#lock = lock;
    this.config = config;
    this.#server = server;
    this.#api = api;
    this.logger = logger;
    const bound = server.address();
    const port = bound !== null && typeof bound === 'object' ? bound.port : api.port;
    this.url = `http://${joinHostPort(connectHost(api.host), port)}`;
    this.#joined = config.join.length === 0;
  }

  /** The node runs: data requests are served. */
  get serving(): boolean {
    return this.node.state === 'running';
  }

  /**
   * Serving, joined to the cluster when seeds were given, holding every
   * record moved to it (a node that joins or returns pulls what it owns
   * first), and not shutting down.
   */
  get ready(): boolean {
    return this.serving && this.#joined && this.#settled && !this.#draining;
  }

  /** What keeps the node from being ready, for `GET /v1/ready`'s answer. */
  notReadyReason(): string {
    if (this.#draining) return 'shutting down';
    if (!this.serving) return 'starting';
    if (!this.#joined) return JOINING;
    if (!this.#settled) return 'receiving the records a view change moved to it; GET /v1/cluster shows the progress';
    return 'ready';
  }

  /**
   * Marks the node ready for data once no move of records to it is pending.
   * Called once the node has joined: before, it is alone in its view and has
   * nothing to wait for, which would make a joining node ready before it
   * pulled what it owns.
   */
  watchSettled(): void {
    const kv = this.#component<CoordinatorKvService>('kv');
    if (kv === undefined) {
      this.#settled = true;
      return;
    }
    kv.settled().then(
      () => {
        this.#settled = true;
        this.logger.debug({}, 'every move to this node is complete');
      },
      (err: unknown) => this.logger.warn({ err: errorText(err) }, 'waiting for moves to this node failed'),
    );
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** The facades this node serves, in config order, and where each answers (its own port, or the node's URL). */
  get facades(): readonly { readonly name: string; readonly url: string }[] {
    return this.#facades;
  }

  /** Records the facades once mounted, and the own ports to drain on shutdown. */
  serveFacades(facades: readonly { name: string; url: string }[], endpoints: readonly FacadeEndpoint[]): void {
    this.#facades = Object.freeze(facades.map((f) => Object.freeze({ name: f.name, url: f.url })));
    this.#facadeEndpoints = endpoints;
  }

  /** The cluster as this node sees it (`GET /v1/cluster`), from the node's `cluster` component. */
  cluster(): ClusterView {
    return this.node.get<Cluster>(TOKENS.cluster).view();
  }

  /**
   * The placement's routing table (`GET /v1/cluster/routes`) with the
   * members it names as the cluster view lists them; undefined when the
   * placement publishes none.
   */
  routes(): RoutesView | undefined {
    const table = this.#component<Placement>('placement')?.routes?.();
    if (table === undefined) return undefined;
    const named = new Set(table.replicaSets.flat());
    return { ...table, members: this.cluster().members.filter((m) => named.has(m.id)) };
  }

  /**
   * An operator's view change (`PUT /v1/cluster/view`): `view` holds
   * `host:port` node addresses, handed through the `cluster` component to
   * `Membership.setView`, which resolves once the view is installed here and
   * sent to the members.
   * @throws KvError KVMESH_ERR_MEMBERSHIP_VIEW_UNSUPPORTED when this node's
   *   membership (or the lack of one) takes no view; KVMESH_ERR_HTTP_NOT_READY
   *   while the node is not running; the membership's KVMESH_ERR_MEMBERSHIP_VIEW_INVALID;
   *   KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID for `parameters` the placement does not take.
   */
  async setView(view: readonly string[], parameters?: ViewParameters): Promise<void> {
    const cluster = this.node.get<Cluster>(TOKENS.cluster);
    if (cluster.administered && !this.serving) {
      throw new KvError('KVMESH_ERR_HTTP_NOT_READY', 'the node is not running; retry when GET /v1/ready answers 200');
    }
    await cluster.setView(view, parameters);
    this.logger.info({ view, ...(parameters === undefined ? {} : { parameters }) }, 'view changed by an operator');
  }

  /**
   * Joins the config's seeds through membership, retrying with backoff until
   * one answers or the server shuts down. Seeds equal to this node's own
   * address are skipped; without membership the seeds are left to the plugins
   * that read them from the config (a routed placement joins its peers itself).
   */
  startJoining(): void {
    const membership = this.#component<Membership>('membership');
    const transport = this.#component<Transport>('transport');
    const own = this.node.info.address;
    const seeds = this.config.join.filter((s) => s !== own);
    if (seeds.length === 0 || membership === undefined) {
      // A routed placement (which reads the seeds from the config) finds its peers itself.
      if (seeds.length > 0)
        this.logger.info({ seeds }, 'no membership to join the seeds: left to the plugins that read them');
      this.#joined = true;
      this.watchSettled();
      return;
    }
    const uris = transport === undefined ? seeds : seeds.map((s) => peerUri(transport, s));
    // Knowing only itself, the node would decide every read and write alone: it takes none until it joined.
    const kv = this.#component<CoordinatorKvService>('kv');
    kv?.holdClients(JOINING);
    let delay = JOIN_RETRY_MS;
    const attempt = (): void => {
      this.#joinTimer = undefined;
      membership.join(uris).then(
        () => {
          kv?.holdClients(undefined);
          this.#joined = true;
          this.logger.info({ seeds: uris, members: membership.members().length }, 'joined the cluster');
          this.watchSettled();
        },
        (err: unknown) => {
          if (this.#shutdown !== undefined) return;
          this.logger.warn({ err: errorText(err), seeds: uris, retryInMs: delay }, 'join failed; retrying');
          this.#joinTimer = setTimeout(attempt, delay);
          delay = Math.min(delay * 2, JOIN_RETRY_MAX_MS);
        },
      );
    };
    attempt();
  }

  /**
   * Graceful stop: readiness goes 503 and responses close their connections,
   * no new connections are accepted, in-flight requests get up to
   * `api.drainTimeoutMs` to finish, then membership leaves, the node stops
   * (storage closes cleanly) and the data directory is freed. Idempotent.
   */
  shutdown(): Promise<void> {
    this.#shutdown ??= this.#stop();
    return this.#shutdown;
  }

  async #stop(): Promise<void> {
    this.#draining = true;
    if (this.#joinTimer !== undefined) clearTimeout(this.#joinTimer);
    this.logger.info({ drainTimeoutMs: this.#api.drainTimeoutMs }, 'shutting down: draining requests');
    await Promise.all([
      drain(this.#server, this.#api.drainTimeoutMs, this.hostedTransport),
      ...this.#facadeEndpoints.map((e) => drain(e.server, this.#api.drainTimeoutMs)),
    ]);
    const membership = this.#component<Membership>('membership');
    if (membership !== undefined && this.serving) {
      await withTimeout(membership.leave(), LEAVE_TIMEOUT_MS).catch((err: unknown) =>
        this.logger.warn({ err: errorText(err) }, 'leaving the cluster failed'),
      );
    }
    try {
      await this.node.stop();
    } finally {
      await this.#lock?.release();
    }
  }

  #component<T>(name: string): T | undefined {
    return this.node.has(name) ? this.node.get<T>(name) : undefined;
  }
}

/**
 * Loads the config, listens on the API address, builds and starts the node.
 * The API answers from the moment it listens: `/v1/health` 200, everything
 * else 503 until the node runs. A `node.address` with port 0 gets the port
 * the API server was given, so every component announces the real address.
 * With `lockDataDir`, the data directory is taken first, before the port.
 * @throws KvError config errors (KVMESH_ERR_CONFIG_*), KVMESH_ERR_DATA_DIR_LOCKED,
 *   KVMESH_ERR_HTTP_LISTEN, or the failing component's error; nothing is
 *   left listening or locked.
 */
export async function startNodeServer(options: NodeServerOptions): Promise<NodeServer> {
  const registry = options.registry ?? new PluginRegistry(builtinPlugins);
  let overrides = options.overrides;
  let loaded = await load(options, registry, overrides);
  const logger = options.logger ?? createLogger({ level: logLevel(loaded.config) });
  let local: LocalSecret | undefined;
  if ((loaded.config.cluster.secrets ?? []).length === 0) {
    local = await localSecret(options.env ?? process.env);
    overrides = { ...overrides, '/cluster/secrets': [local.secret] };
    loaded = await load(options, registry, overrides);
  }
  const api = apiSettings(loaded.config);
  const lock = options.lockDataDir
    ? await DataDirLock.acquire(
        dataDirOf(loaded.config),
        { id: loaded.config.node.id, address: loaded.config.node.address },
        logger.child({ component: 'data-dir' }),
      )
    : undefined;
  let listener: Listener = startingListener;
  const server = httpServer(api, logger, (req, res) => listener(req, res), {
    maxBodyBytes: loaded.config.limits.maxValueBytes,
  });
  // Until the transport takes CONNECTs, a peer opening its frame stream hears "starting", not "no streams here".
  let connect: ConnectListener | undefined;
  server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (connect !== undefined) return connect(req, socket, head);
    socket.on('error', () => undefined);
    socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n');
  });
  const endpoints: FacadeEndpoint[] = [];
  let port: number;
  try {
    port = await listen(server, api.host, api.port);
  } catch (err) {
    await lock?.release();
    throw err;
  }
  try {
    const nodeAddress = splitHostPort(loaded.config.node.address);
    const apiSection = loaded.config['api'] as { port?: number } | undefined;
    if (nodeAddress.port === 0 && apiSection?.port === undefined) {
      loaded = await load(options, registry, { ...overrides, '/node/address': joinHostPort(nodeAddress.host, port) });
      await lock?.setAddress(loaded.config.node.address);
    }
    const config = loaded.config;
    if (local !== undefined) noteLocalSecret(local, config, api, logger);
    const node = await createNode({
      config,
      registry: loaded.registry,
      provide: { logger },
      extras: [kvServiceDefinition(), ...(options.extras ?? [])],
      configDir: loaded.dir,
      closedWithoutPeers: true,
    });
    const nodeServer = new NodeServer(node, config, server, api, logger, lock);
    const metrics = new ServerMetrics(metricSources(node));
    const mounted = mountFacades(nodeFacades(node, config), {
      maxKeyBytes: config.limits.maxKeyBytes,
      maxValueBytes: config.limits.maxValueBytes,
      maxJsonBodyBytes: api.maxJsonBodyBytes,
    });
    const facadeServing: FacadeServing = {
      logger: logger.child({ component: 'facade' }),
      metrics,
      serving: () => nodeServer.serving,
      draining: () => nodeServer.draining,
      lingerMs: FACADE_LINGER_MS,
    };
    for (const facade of mounted.filter((m) => m.facade.port !== undefined)) {
      endpoints.push(await listenFacade(facade, facadeServing, api, logger, loaded.config));
    }
    const documents = facadeDocuments(mounted, endpoints, nodeServer.url, loaded.registry);
    const openapiText = JSON.stringify(nodeOpenApiDocument(documents));
    nodeServer.serveFacades(documents, endpoints);
    const app = createApp({
      kv: node.get<KvService>(TOKENS.kv),
      maxKeyBytes: config.limits.maxKeyBytes,
      maxValueBytes: config.limits.maxValueBytes,
      maxJsonBodyBytes: api.maxJsonBodyBytes,
      metrics,
      facades: mounted.filter((m) => m.facade.port === undefined),
      openapiText,
      logger: logger.child({ component: 'api' }),
      serving: () => nodeServer.serving,
      ready: () => nodeServer.ready,
      notReadyReason: () => nodeServer.notReadyReason(),
      draining: () => nodeServer.draining,
      cluster: () => nodeServer.cluster(),
      routes: () => nodeServer.routes(),
      setView: (view, parameters) => nodeServer.setView(view, parameters),
    });
    options.configureApp?.(app, node);
    // The transport is served by the API server only where peers reach it: at node.address's port.
    const hostsTransport = port === splitHostPort(config.node.address).port;
    listener = adminScoped(
      serveListener(nodeServer, app.listener, hostsTransport, (handler) => (connect = handler)),
      config,
    );
    try {
      await node.start();
    } catch (err) {
      throw explainStartFailure(err, config, port);
    }
    logger.info(
      { id: node.info.id, api: nodeServer.url, ...(documents.length > 0 ? { facades: nodeServer.facades } : {}) },
      'node serving',
    );
    nodeServer.startJoining();
    return nodeServer;
  } catch (err) {
    await Promise.all([drain(server, 0), ...endpoints.map((e) => drain(e.server, 0))]);
    await lock?.release();
    throw err;
  }
}

/** How long a facade connection whose body was refused as too large stays open (as on the API's port). */
const FACADE_LINGER_MS = 1_000;

/**
 * Listens on a facade's own port (`Facade.port`, 0 for any free one) before
 * the node starts; until it runs, requests there are answered 503 in the
 * facade's format.
 * @throws KvError KVMESH_ERR_HTTP_LISTEN naming the facade.
 */
async function listenFacade(
  mounted: MountedFacade,
  serving: FacadeServing,
  api: ApiSettings,
  logger: Logger,
  config: KvmeshConfig,
): Promise<FacadeEndpoint> {
  const app = ownPortApp(mounted, serving);
  const listener = withFastRoutes([mounted], serving, app, app.callback() as Listener, () => true);
  const server = httpServer(api, logger, adminScoped(listener, config), {
    maxBodyBytes: config.limits.maxValueBytes,
  });
  const host = mounted.facade.host ?? api.host;
  try {
    const port = await listen(server, host, mounted.facade.port!);
    return { name: mounted.name, url: `http://${joinHostPort(connectHost(host), port)}`, server };
  } catch (err) {
    throw wrapError(`facade '${mounted.name}'`, err);
  }
}

/** Each facade as the node's OpenAPI document and `kvmesh up` describe it: where it answers, its paths, its curl lines. */
function facadeDocuments(
  mounted: readonly MountedFacade[],
  endpoints: readonly FacadeEndpoint[],
  nodeUrl: string,
  registry: PluginCatalog,
): FacadeDocument[] {
  return mounted.map(({ name, facade }) => {
    const own = endpoints.find((e) => e.name === name);
    const url = own?.url ?? nodeUrl;
    try {
      const openapi = facade.openapi?.();
      return {
        name,
        description: registry.get('facade', name).description,
        url,
        ownPort: own !== undefined,
        ...(openapi ? { openapi } : {}),
        examples: [...(facade.examples?.(url) ?? [])],
      };
    } catch (err) {
      throw wrapError(`facade '${name}'`, err);
    }
  });
}

/** `node.dataDir` as the kernel resolves it (NodeInfo.dataDir): relative to the working directory. */
function dataDirOf(config: KvmeshConfig): string {
  const dir = config.node.dataDir;
  return isAbsolute(dir) ? dir : resolve(process.cwd(), dir);
}

function load(
  options: NodeServerOptions,
  registry: PluginRegistry,
  overrides?: Readonly<Record<string, unknown>>,
): Promise<LoadedConfig> {
  const common = {
    registry,
    extensions: SERVER_CONFIG_EXTENSIONS,
    ...(overrides ? { overrides } : {}),
    ...(options.env ? { env: options.env } : {}),
  };
  if (options.configFile !== undefined) return loadConfig(options.configFile, common);
  const dir = options.dir ?? process.cwd();
  return resolveConfig(structuredClone(options.document), { ...common, file: '<config>', dir });
}

/**
 * The app, behind the transport's incoming side when the transport can be
 * served by this server (`Transport.hostHttp`) and this server listens at
 * the port of `node.address` (`hostsTransport`): it is handed the API's
 * address before the node starts, so it binds nothing, and is offered the
 * requests under its path prefix first, and every `CONNECT` (its own
 * streams; any other `CONNECT` gets 405: the node proxies nothing). With
 * `api.port` elsewhere the transport listens at `node.address` itself, and
 * no internal frame is served on the API's port. Called before `node.start()`.
 */
function serveListener(
  nodeServer: NodeServer,
  app: Listener,
  hostsTransport: boolean,
  onConnect: (handler: ConnectListener) => void,
): Listener {
  const transport = nodeServer.node.has('transport') ? nodeServer.node.get<Transport>(TOKENS.transport) : undefined;
  const hosted = hostsTransport ? transport?.hostHttp?.(nodeServer.node.info.address) : undefined;
  const connect = hosted?.connect;
  onConnect((req, socket, head) => {
    if (connect?.(req, socket, head) === true) return;
    socket.on('error', () => undefined);
    socket.end('HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  if (hosted === undefined) {
    return (req, res) => {
      if (nodeServer.draining) res.shouldKeepAlive = false;
      app(req, res);
    };
  }
  nodeServer.hostedTransport = hosted;
  const prefix = hosted.pathPrefix;
  return (req, res) => {
    if (nodeServer.draining) res.shouldKeepAlive = false;
    if (!req.url!.startsWith(prefix) || !hosted.handle(req, res)) app(req, res);
  };
}

/**
 * With `cluster.adminToken` set, each request is served with the token its
 * `Authorization: Bearer` header brought, which the cluster component checks
 * for admin operations whichever route (native or facade) asks for one.
 */
function adminScoped(listener: Listener, config: KvmeshConfig): Listener {
  if (config.cluster.adminToken === undefined) return listener;
  return (req, res) => withAdminToken(bearerToken(req.headers.authorization), () => listener(req, res));
}

/** Before the node runs: alive, not ready. */
function startingListener(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  const alive = req.url === '/v1/health';
  res.writeHead(alive ? 200 : 503, { 'content-type': JSON_TYPE });
  res.end(
    alive
      ? '{"status":"ok"}'
      : errorBody('KVMESH_ERR_HTTP_NOT_READY', 'the node is starting; retry when GET /v1/ready answers 200'),
  );
}

function metricSources(node: KvNode): MetricSources {
  const sources: MetricSources = {};
  if (node.has('storage')) {
    const storage = node.get<Storage>('storage');
    sources.count = () => storage.count();
    sources.sizeBytes = () => storage.sizeBytes();
    if (typeof storage.metrics === 'function') sources.storage = () => storage.metrics?.() ?? {};
  }
  const kv = node.has('kv') ? node.get<{ stats?: unknown }>('kv') : undefined;
  if (typeof kv?.stats === 'object' && kv.stats !== null) {
    const stats = kv.stats as KvServiceStats;
    sources.kv = () => stats;
    const service = kv as Partial<CoordinatorKvService>;
    if (typeof service.movementStatus === 'function') sources.movement = () => service.movementStatus!();
  }
  if (node.has('cluster')) {
    const cluster = node.get<Cluster>(TOKENS.cluster);
    sources.cluster = () => cluster.view();
  }
  const rpc = node.has('rpc') ? node.get<{ stats?: unknown }>('rpc') : undefined;
  if (typeof rpc?.stats === 'object' && rpc.stats !== null) {
    const stats = rpc.stats as Record<string, number>;
    sources.rpc = () => stats;
  }
  return sources;
}

/**
 * Stops accepting connections and resolves once every open one ended: idle
 * ones are closed as they become idle, the rest after `timeoutMs`. The
 * connections a hosted transport took over (its streams) end first: it
 * ends them gracefully itself. A peer may still turn a keep-alive
 * connection into a stream while the drain runs, and the server's close
 * waits for that one too, so the streams are ended again at every poll.
 */
function drain(server: Server, timeoutMs: number, hosted?: HostedHttp): Promise<void> {
  return new Promise((resolve) => {
    hosted?.drain?.();
    if (!server.listening) {
      server.closeAllConnections();
      resolve();
      return;
    }
    const idle = setInterval(() => {
      server.closeIdleConnections();
      hosted?.drain?.();
    }, DRAIN_POLL_MS);
    const timer = setTimeout(() => {
      hosted?.drain?.();
      server.closeAllConnections();
    }, timeoutMs);
    server.close(() => {
      clearInterval(idle);
      clearTimeout(timer);
      resolve();
    });
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A node whose config names no cluster secret seals its frames with the
 * local secret (see localSecret): say where it is, and warn once, at start,
 * when the node listens beyond loopback, where its peers on other machines
 * hold other secrets until every node is given the same one.
 */
function noteLocalSecret(local: LocalSecret, config: KvmeshConfig, api: ApiSettings, logger: Logger): void {
  logger.info(
    { file: local.file, created: local.created },
    'no cluster secret configured: internal frames are sealed with the local secret, which nodes started by this user on this machine share',
  );
  const hosts = [...new Set([api.host, splitHostPort(config.node.address).host])].filter((h) => !isLoopback(h));
  if (hosts.length === 0) return;
  logger.warn(
    { hosts, file: local.file, docs: 'docs/security.md' },
    'no cluster secret configured: this node listens beyond loopback, but only nodes on this machine share its local secret; give every node the same secret (cluster.secrets, cluster.secretFile or KVMESH_CLUSTER_SECRET), or nodes on other machines cannot talk to it',
  );
}

/** 127.0.0.0/8, ::1 and localhost: reachable from this machine only. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The port the API holds is the likeliest reason a transport cannot listen: say so. */
function explainStartFailure(err: unknown, config: KvmeshConfig, apiPort: number): unknown {
  if (!isKvError(err, 'KVMESH_ERR_TRANSPORT_LISTEN')) return err;
  if (splitHostPort(config.node.address).port !== apiPort) return err;
  return new KvError(
    'KVMESH_ERR_TRANSPORT_LISTEN',
    `${err.message}; the API server already listens on port ${apiPort}: give the API another port (api.port), or use a transport that can be served through the API's port (one with Transport.hostHttp, see docs/api.md)`,
    { cause: err },
  );
}

/**
 * A peer at `host:port` as a URI of this node's transport: its own address's
 * scheme (Transport.address) with the peer's host and port. A seed given as
 * a URI already is passed as it is.
 */
function peerUri(transport: Transport, hostPort: string): string {
  if (hostPort.includes('://')) return hostPort;
  const own = transport.address;
  const end = own.indexOf('://');
  return end < 0 ? hostPort : `${own.slice(0, end)}://${hostPort}`;
}

/** A host to connect to for a bind host: the unspecified addresses become loopback. */
function connectHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
