import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, fstatSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { ConfigProblem, PluginRegistry } from '@kvmesh/core';
import { LOG_LEVELS } from '../log-levels.js';
import type { UpSettings } from '../settings.js';
import { CliError, EXIT } from './exit-codes.js';
import { LogFollower, lastLines, readableLine } from './node-log.js';
import { launchParent, watchParent } from './parent-watch.js';
import { DEFAULT_HOST_BASE, UP_ENV } from './up-env.js';
import type { UpNodePlan, UpPlan } from './up-plan.js';

// The kernel and the plugins load inside the action (to read the config), so the other commands start fast.

/** The launcher every node runs, the same binary as `up` itself: packages/server/bin/kvmesh.js. */
/** Variables a node reads its cluster secrets from (CLUSTER_SECRET_ENV and CLUSTER_SECRET_FILE_ENV in @kvmesh/core, not loaded here). */
const CLUSTER_SECRET_VARIABLE = 'KVMESH_CLUSTER_SECRET';
const CLUSTER_SECRET_FILE_VARIABLE = 'KVMESH_CLUSTER_SECRET_FILE';
/** The file in the data folder holding the secret of the current run. */
export const UP_SECRET_FILE = 'cluster.secret';

/**
 * Writes the secret of one `kvmesh up` run to `<dataDir>/cluster.secret`
 * (readable by its owner only) and returns the file's path, which every
 * node gets as KVMESH_CLUSTER_SECRET_FILE, so the local cluster's internal
 * frames are sealed and a node restarted by hand from `--json`'s argv still
 * has it. The secret is the caller's KVMESH_CLUSTER_SECRET when set (the
 * nodes read that first anyway), else 32 new random bytes; it is never
 * printed or logged, only its file's path is.
 */
function writeRunSecret(dataDir: string): string {
  const given = process.env[CLUSTER_SECRET_VARIABLE];
  const secret = given !== undefined && given !== '' ? given : randomBytes(32).toString('base64url');
  const file = resolve(dataDir, UP_SECRET_FILE);
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

export const KVMESH_LAUNCHER = fileURLToPath(new URL('../../../bin/kvmesh.js', import.meta.url));

export const DEFAULT_UP_DATA_DIR = './data/up';
/** Longest wait for every node to answer GET /v1/ready. */
const DEFAULT_READY_TIMEOUT_S = 60;
/** After SIGTERM, how long a node gets before SIGKILL: its drain (api.drainTimeoutMs, 10 s) plus a leave (5 s). */
const DEFAULT_STOP_TIMEOUT_S = 20;
/** How often a starting node's readiness is asked. */
const READY_POLL_MS = 100;
/** Deadline of one readiness request. */
const READY_REQUEST_MS = 1_000;
/** Lines of a failed node's log shown. */
const FAILURE_LINES = 15;
/** Deadline of the request for a ready node's facades (its OpenAPI document). */
const FACADES_REQUEST_MS = 2_000;

export interface UpOptions {
  readonly nodes?: number;
  /** `--role-count ROLE=N`, as given (repeatable). */
  readonly roleCount?: readonly string[];
  /** The flags the config's `up.roles[].flag` may declare, as given: name (without `--`) → value. */
  readonly roleFlags?: ReadonlyMap<string, string>;
  readonly port?: number;
  readonly hostBase: string;
  readonly dataDir: string;
  readonly json?: boolean;
  readonly verbose?: boolean;
  readonly logLevel?: string;
  /** Seconds. */
  readonly readyTimeout: number;
  /** Seconds. */
  readonly stopTimeout: number;
}

/** What `--json` prints for a node once it is ready. */
export interface UpNodeRecord {
  readonly id: string;
  readonly role: string;
  readonly url: string;
  readonly address: string;
  readonly pid: number;
  readonly dataDir: string;
  readonly log: string;
  /** The KVMESH_* variables the node's config may use; `argv` sets the same. */
  readonly env: Readonly<Record<string, string>>;
  /** Restarts this node by hand, as is: `env K=V ... node kvmesh.js start ...`. */
  readonly argv: readonly string[];
  /** The facades the node serves besides the native API, where each answers and its curl lines; absent when none. */
  readonly facades?: readonly UpFacade[];
}

/** A facade of a ready node, as its OpenAPI document lists it (`x-kvmesh-facades`). */
export interface UpFacade {
  readonly name: string;
  readonly url: string;
  readonly examples: readonly string[];
}

/** `kvmesh up CONFIG`: a local cluster of `kvmesh start` processes, stopped together. */
export function upCommand(): Command {
  return (
    new Command('up')
      .description(
        'Start a local cluster: N `kvmesh start` processes on 127.0.0.2, 127.0.0.3, ... with the roles the config declares; Ctrl-C stops them all',
      )
      .argument('<config>', 'config file (its "up" section declares roles; every node also gets KVMESH_* variables)')
      .option('-n, --nodes <n>', 'number of nodes (default: up.nodes, the sum of up.roles, or 3)', positiveInt)
      .option(
        '--role-count <role=n>',
        'nodes of one role of up.roles, instead of its "nodes" (repeatable; the others keep theirs)',
        (value: string, previous: string[]) => [...previous, value],
        [] as string[],
      )
      .option(
        '-p, --port <port>',
        "every node's port; with up.layout ports n1's, the others count up (default: the port of the config's node.address)",
        port,
      )
      .option('--host-base <ipv4>', 'address of n1; the next nodes get the next addresses', DEFAULT_HOST_BASE)
      .option('-d, --data-dir <dir>', 'folder of the data directories, one per node (<dir>/<id>)', DEFAULT_UP_DATA_DIR)
      .option('--json', 'print one JSON line per ready node, then {"ready":true}; nothing else on stdout')
      .option('-v, --verbose', "stream every node's log to stderr, each line prefixed with its id")
      .addOption(
        new Option('--log-level <level>', 'log level of every node (overrides log.level)').choices([...LOG_LEVELS]),
      )
      .option('--ready-timeout <s>', 'longest wait for every node to be ready', positiveInt, DEFAULT_READY_TIMEOUT_S)
      .option(
        '--stop-timeout <s>',
        'after SIGTERM, seconds a node gets before SIGKILL',
        positiveInt,
        DEFAULT_STOP_TIMEOUT_S,
      )
      // The config may declare flags of its own (up.roles[].flag): they are read once the file is.
      .allowUnknownOption()
      .allowExcessArguments()
      .addHelpText(
        'after',
        '\nA config may declare a flag per role in up.roles[].flag: "flag": "frontends" makes --frontends N the same as\n--role-count <that role>=N.',
      )
      .action(async (_config: string, options: UpOptions, command: Command) => {
        const { config, flags } = splitUpArguments(command.args);
        process.exitCode = await runUp(config, { ...options, roleFlags: flags });
      })
  );
}

/** Options of `up` itself: a flag a config declares must not be one of them. */
const UP_OPTION_NAMES = new Set([
  'nodes',
  'role-count',
  'port',
  'host-base',
  'data-dir',
  'json',
  'verbose',
  'log-level',
  'ready-timeout',
  'stop-timeout',
  'help',
]);

/**
 * What commander left of `up`'s arguments once it took its own options: the
 * one config path and the options it did not know (`--frontends 3`,
 * `--frontends=3`), which only the config can declare.
 * @throws CliError (usage) for a short option, a flag without a value or given twice, or not one config path.
 */
export function splitUpArguments(args: readonly string[]): { config: string; flags: Map<string, string> } {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      let value = eq < 0 ? undefined : arg.slice(eq + 1);
      if (value === undefined) {
        const next = args[i + 1];
        if (next === undefined || next.startsWith('-'))
          throw new CliError(`option '--${name}' needs a value`, EXIT.usage);
        value = next;
        i++;
      }
      if (flags.has(name)) throw new CliError(`option '--${name}' is given twice`, EXIT.usage);
      flags.set(name, value);
    } else if (arg.startsWith('-') && arg !== '-') {
      throw new CliError(`unknown option '${arg}'`, EXIT.usage);
    } else {
      positional.push(arg);
    }
  }
  if (positional.length !== 1) {
    throw new CliError(
      positional.length === 0
        ? "missing required argument 'config'"
        : `one config file, not ${positional.length}: ${positional.join(' ')}`,
      EXIT.usage,
    );
  }
  return { config: positional[0]!, flags };
}

/**
 * Nodes per role from `--role-count ROLE=N` and the flags the `up` section
 * declares (`up.roles[].flag`).
 * @throws CliError (usage) for a malformed count, a flag the config does not declare, or a role counted twice.
 */
export function roleCounts(
  settings: UpSettings,
  options: Pick<UpOptions, 'roleCount' | 'roleFlags'>,
): Map<string, number> {
  const counts = new Map<string, number>();
  const add = (role: string, text: string, what: string): void => {
    const n = Number(text);
    if (!/^[0-9]+$/.test(text) || !Number.isInteger(n) || n < 1) {
      throw new CliError(`${what}: expected a positive integer (found '${text}')`, EXIT.usage);
    }
    if (counts.has(role)) throw new CliError(`${what}: role '${role}' is counted twice`, EXIT.usage);
    counts.set(role, n);
  };
  settings.roles.forEach((entry, i) => {
    if (entry.flag !== undefined && UP_OPTION_NAMES.has(entry.flag)) {
      throw new CliError(`/up/roles/${i}/flag: '--${entry.flag}' is an option of kvmesh up already`, EXIT.usage);
    }
  });
  for (const [name, value] of options.roleFlags ?? []) {
    const entry = settings.roles.find((e) => e.flag === name);
    if (entry === undefined) {
      const declared = settings.roles.flatMap((e) => (e.flag !== undefined ? [`--${e.flag}`] : []));
      throw new CliError(
        `unknown option '--${name}'${declared.length > 0 ? ` (this config declares ${declared.join(', ')})` : ''}`,
        EXIT.usage,
      );
    }
    add(entry.role, value, `--${name}`);
  }
  for (const spec of options.roleCount ?? []) {
    const eq = spec.lastIndexOf('=');
    if (eq <= 0) throw new CliError(`--role-count ${spec}: expected ROLE=N`, EXIT.usage);
    add(spec.slice(0, eq), spec.slice(eq + 1), `--role-count ${spec}`);
  }
  return counts;
}

/** Plans, starts and supervises the cluster until a signal; resolves to the exit status. */
export async function runUp(configPath: string, options: UpOptions): Promise<number> {
  const file = resolve(configPath);
  const [{ PluginRegistry }, { builtinPlugins }, { planCluster }] = await Promise.all([
    import('@kvmesh/core'),
    import('@kvmesh/plugins'),
    import('./up-plan.js'),
  ]);
  const registry = new PluginRegistry(builtinPlugins);
  const layout = await readLayout(file, options, registry);
  const plan = planCluster({
    configFile: file,
    settings: layout.settings,
    ...(options.nodes !== undefined ? { nodes: options.nodes } : {}),
    roleCounts: layout.roleCounts,
    // Layout ports: every node on node.address's host, as a user starting them by hand would.
    hostBase: layout.settings.layout === 'ports' ? layout.host : options.hostBase,
    port: layout.port,
    dataDir: resolve(options.dataDir),
    defaultRole: layout.defaultRole,
    ...(options.logLevel !== undefined ? { logLevel: options.logLevel } : {}),
  });
  const urls = await nodeUrls(file, plan, registry);
  const cluster = new LocalCluster(plan, urls, options);
  return cluster.run(clientNode(plan, layout.settings, layout.defaultRole));
}

interface Layout {
  readonly settings: UpSettings;
  readonly roleCounts: ReadonlyMap<string, number>;
  readonly port: number;
  /** The host of node.address, as the first node sees it: every node's host in layout `ports`. */
  readonly host: string;
  /** node.role of the config, as a node sees it. */
  readonly defaultRole: string;
}

/**
 * What the plan needs from the file: the `up` section (interpolated with the
 * caller's environment only, as it decides what the KVMESH_* variables hold),
 * then the port and the default role from the whole file loaded as node 1
 * would load it. A node.address taken from KVMESH_NODE_ADDRESS has the port
 * the plan offered, so the two loads agree.
 */
async function readLayout(file: string, options: UpOptions, registry: PluginRegistry): Promise<Layout> {
  const { interpolateEnv, configError, loadConfig, validateConfig } = await import('@kvmesh/core');
  const { SERVER_CONFIG_EXTENSIONS, splitHostPort, upSettings } = await import('../settings.js');
  const { DEFAULT_UP_PORT, planCluster } = await import('./up-plan.js');
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    // loadConfig words a missing file, bad JSON or a document that is no object the way every command does.
    await loadConfig(file, { registry, extensions: SERVER_CONFIG_EXTENSIONS });
    throw new CliError(`${file}: a config is one JSON object`, EXIT.usage);
  }
  const raw = parsed as Record<string, unknown>;
  const problems: ConfigProblem[] = [];
  const up = raw['up'] === undefined ? undefined : interpolateEnv(raw['up'], process.env, problems, '/up');
  if (problems.length > 0) throw configError(file, problems);
  // The section alone, in a document that is otherwise minimal, so its problems carry /up/... paths.
  const checked = validateConfig({ node: { address: '127.0.0.1:1' }, ...(up !== undefined ? { up } : {}) }, registry, {
    file,
    extensions: SERVER_CONFIG_EXTENSIONS,
  });
  const settings = upSettings(checked as unknown as Record<string, unknown>);
  const counts = roleCounts(settings, options);
  const offered = options.port ?? DEFAULT_UP_PORT;
  // Only a placeholder for KVMESH_NODE_ROLE in this first load; the real default is what that load finds.
  const literalRole = (raw['node'] as { role?: unknown } | undefined)?.role;
  const provisional = planCluster({
    configFile: file,
    settings,
    ...(options.nodes !== undefined ? { nodes: options.nodes } : {}),
    roleCounts: counts,
    hostBase: options.hostBase,
    port: offered,
    dataDir: resolve(options.dataDir),
    defaultRole: typeof literalRole === 'string' && !literalRole.includes('${') ? literalRole : 'storage',
  });
  const first = await loadConfig(file, {
    registry,
    extensions: SERVER_CONFIG_EXTENSIONS,
    env: { ...process.env, ...provisional.nodes[0]!.env },
  });
  const { host, port: configured } = splitHostPort(first.config.node.address);
  const chosen = options.port ?? configured;
  if (chosen === 0) {
    throw new CliError(
      `${file}: node.address has port 0; every node of a local cluster needs the same known port: pass --port`,
      EXIT.usage,
    );
  }
  return { settings, roleCounts: counts, port: chosen, host, defaultRole: first.config.node.role };
}

/** Loads the file as each node will (its env, its flags): every node's problems show before anything starts. */
async function nodeUrls(file: string, plan: UpPlan, registry: PluginRegistry): Promise<Map<string, string>> {
  const { isKvError, loadConfig, wrapError } = await import('@kvmesh/core');
  const { SERVER_CONFIG_EXTENSIONS, apiSettings, joinHostPort } = await import('../settings.js');
  const urls = new Map<string, string>();
  for (const node of plan.nodes) {
    try {
      const loaded = await loadConfig(file, {
        registry,
        extensions: SERVER_CONFIG_EXTENSIONS,
        env: { ...process.env, ...node.env },
        overrides: { '/node/id': node.id, '/node/role': node.role, '/node/address': node.address },
      });
      const api = apiSettings(loaded.config);
      urls.set(node.id, `http://${joinHostPort(connectHost(api.host), api.port)}`);
    } catch (err) {
      throw isKvError(err) ? wrapError(node.id, err) : err;
    }
  }
  return urls;
}

/** The node the printed curl lines use: `up.clientRole`, else node.role, else n1. */
function clientNode(plan: UpPlan, settings: UpSettings, defaultRole: string): UpNodePlan {
  const wanted = settings.clientRole ?? defaultRole;
  return plan.nodes.find((n) => n.role === wanted) ?? plan.nodes[0]!;
}

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One running `kvmesh start` child. */
class NodeProcess {
  readonly plan: UpNodePlan;
  readonly url: string;
  readonly child: ChildProcess;
  readonly startedAt: number;
  /** Size of the log before this run: the failure report shows only this run's lines. */
  readonly logOffset: number;
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;
  readyAt: number | undefined;
  /** What the node said it serves once ready. */
  facades: readonly UpFacade[] = [];

  constructor(plan: UpNodePlan, url: string, child: ChildProcess, logOffset: number) {
    this.plan = plan;
    this.url = url;
    this.child = child;
    this.logOffset = logOffset;
    this.startedAt = Date.now();
    this.exited = new Promise((resolveExit) => {
      const done = (code: number | null, signal: NodeJS.Signals | null): void => {
        this.exit ??= { code, signal };
        resolveExit(this.exit);
      };
      child.once('exit', done);
      // spawn itself failed (no such executable): there is no process to wait for.
      child.once('error', () => done(null, null));
    });
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      this.child.kill(signal);
    } catch {
      // Already gone between the check and the kill.
    }
  }
}

/** The reason startup ended early. */
class StartAborted extends Error {
  readonly node: NodeProcess | undefined;
  constructor(message: string, node?: NodeProcess) {
    super(message);
    this.node = node;
  }
}

/**
 * Starts the planned nodes (seeds first, then the rest at once), waits for
 * each to be ready, reports, and stops all of them together: on SIGINT,
 * SIGTERM or SIGHUP, when its own parent dies, or when a node fails while
 * starting. Children run in their own process group, so a Ctrl-C in the
 * terminal reaches only `up`, which then stops them in order; they also get
 * KVMESH_PARENT_PID, so they stop by themselves if `up` is SIGKILLed.
 */
class LocalCluster {
  readonly #plan: UpPlan;
  readonly #urls: Map<string, string>;
  readonly #options: UpOptions;
  readonly #nodes: NodeProcess[] = [];
  readonly #followers: LogFollower[] = [];
  #stopping: Promise<number> | undefined;
  #signals = 0;
  #wake: (() => void) | undefined;
  #startedAt = Date.now();
  /** Path of the run's secret file (writeRunSecret), given to every node. */
  readonly #secretFile: string;

  constructor(plan: UpPlan, urls: Map<string, string>, options: UpOptions) {
    this.#plan = plan;
    this.#urls = urls;
    this.#options = options;
    this.#secretFile = writeRunSecret(resolve(options.dataDir));
  }

  async run(client: UpNodePlan): Promise<number> {
    const onSignal = (signal: NodeJS.Signals): void => {
      this.#signals++;
      if (this.#signals > 1) {
        this.#note(`${signal} again: killing every node now`);
        for (const node of this.#nodes) node.signal('SIGKILL');
        return;
      }
      void this.stop(signal);
    };
    const killAll = (): void => {
      for (const node of this.#nodes) node.signal('SIGKILL');
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.on(s, onSignal);
    // Last resort, synchronous: whatever ends this process, no node outlives it.
    process.on('exit', killAll);
    const unwatch = watchParent(launchParent(), () => void this.stop('parent process gone'));
    // A closed terminal or reader must not crash `up` before it has stopped its nodes.
    const ignore = (): void => {};
    process.stdout.on('error', ignore);
    process.stderr.on('error', ignore);
    try {
      this.#note(
        `${plural(this.#plan.nodes.length, 'node')} from ${display(this.#plan.configFile)}; data and logs under ${display(resolve(this.#options.dataDir))}`,
      );
      const failure = await this.#startAll();
      if (failure !== undefined) return failure;
      this.#printReady(client);
      return await this.#supervise();
    } catch (err) {
      await this.stop('failure');
      throw err;
    } finally {
      unwatch();
      for (const s of signals) process.off(s, onSignal);
      await Promise.all(this.#followers.map((f) => f.stop()));
      killAll();
      process.off('exit', killAll);
      process.stdout.off('error', ignore);
      process.stderr.off('error', ignore);
    }
  }

  /** Stops every running node: SIGTERM, then SIGKILL after --stop-timeout. Resolves to the exit status. */
  stop(reason: string): Promise<number> {
    this.#stopping ??= this.#stopAll(reason);
    this.#wake?.();
    return this.#stopping;
  }

  async #stopAll(reason: string): Promise<number> {
    const running = this.#nodes.filter((n) => n.running);
    if (running.length > 0) this.#note(`${reason}: stopping ${running.map((n) => n.plan.id).join(', ')}`);
    for (const node of running) node.signal('SIGTERM');
    const limitMs = this.#options.stopTimeout * 1000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, limitMs)));
    await Promise.race([Promise.all(running.map((n) => n.exited)), timeout]);
    clearTimeout(timer);
    let clean = true;
    for (const node of running) {
      if (node.running) {
        clean = false;
        this.#note(`${node.plan.id} did not stop within ${this.#options.stopTimeout} s: SIGKILL`);
        node.signal('SIGKILL');
        // What it was doing: the end of its log, since it was started.
        const tail = await lastLines(node.plan.logFile, node.logOffset, FAILURE_LINES).catch(() => []);
        if (tail.length > 0) this.#note(`last lines of ${display(node.plan.logFile)}:`);
        for (const line of tail) this.#note(`  | ${line}`);
      }
    }
    const exits = await Promise.all(running.map((n) => n.exited));
    // The nodes' last words (--verbose) come before the verdict.
    await Promise.all(this.#followers.map((f) => f.stop()));
    if (exits.some((e) => e.code !== 0)) clean = false;
    if (running.length > 0) this.#note(clean ? 'every node stopped cleanly' : 'every node stopped (not all cleanly)');
    return clean ? EXIT.ok : EXIT.runtime;
  }

  /** Resolves to an exit status when startup failed or was stopped, undefined once every node is ready. */
  async #startAll(): Promise<number | undefined> {
    const deadline = Date.now() + this.#options.readyTimeout * 1000;
    const seeds = this.#plan.nodes.filter((n) => n.seed);
    const rest = this.#plan.nodes.filter((n) => !n.seed);
    try {
      for (const group of [seeds, rest]) {
        if (group.length === 0) continue;
        const started = group.map((plan) => this.#spawn(plan, group.length === 1));
        await Promise.all(started.map((node) => this.#untilReady(node, deadline, group.length === 1)));
      }
      return undefined;
    } catch (err) {
      if (!(err instanceof StartAborted)) throw err;
      if (this.#stopping !== undefined) return this.#stopping;
      const tail = err.node ? await lastLines(err.node.plan.logFile, err.node.logOffset, FAILURE_LINES) : [];
      if (err.node) {
        this.#note(`last lines of ${display(err.node.plan.logFile)}:`);
        for (const line of tail) this.#note(`  | ${line}`);
      }
      const status = await this.stop('startup failed');
      if (this.#options.json) this.#out({ ready: false, node: err.node?.plan.id ?? null, error: err.message });
      throw new CliError(err.message, status === EXIT.ok ? EXIT.runtime : status);
    }
  }

  #spawn(plan: UpNodePlan, sameLine: boolean): NodeProcess {
    mkdirSync(plan.dataDir, { recursive: true });
    const fd = openSync(plan.logFile, 'a');
    let child: ChildProcess;
    let offset: number;
    try {
      // The file's size before this run is where this run's lines begin.
      offset = statSize(fd);
      child = spawn(process.execPath, [KVMESH_LAUNCHER, ...plan.args], {
        env: {
          ...process.env,
          ...plan.env,
          [UP_ENV.parentPid]: String(process.pid),
          [CLUSTER_SECRET_FILE_VARIABLE]: this.#secretFile,
        },
        // The log file itself, not a pipe: a node keeps logging (and stopping cleanly) even after `up` is gone.
        stdio: ['ignore', fd, fd],
        // Its own process group: the terminal's Ctrl-C reaches `up` only, which stops the nodes in order.
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    const node = new NodeProcess(plan, this.#urls.get(plan.id)!, child, offset);
    this.#nodes.push(node);
    const what = `starting ${plan.id} (${plan.role}) on ${plan.address} ...`;
    if (sameLine && !this.#options.verbose) process.stderr.write(`${what} `);
    else this.#note(what);
    if (this.#options.verbose) {
      this.#followers.push(
        new LogFollower(plan.logFile, offset, (line) => this.#note(`${plan.id} | ${readableLine(line)}`)),
      );
    }
    void node.exited.then((exit) => this.#onExit(node, exit));
    return node;
  }

  async #untilReady(node: NodeProcess, deadline: number, sameLine: boolean): Promise<void> {
    const inLine = sameLine && !this.#options.verbose;
    for (;;) {
      if (this.#stopping !== undefined) {
        if (inLine) process.stderr.write('stopped\n');
        throw new StartAborted('stopped while starting');
      }
      if (!node.running) {
        if (inLine) process.stderr.write('failed\n');
        throw new StartAborted(
          `${node.plan.id} (${node.plan.role}) on ${node.plan.address} exited with ${exitText(node.exit!)} before it was ready; its log: ${display(node.plan.logFile)}`,
          node,
        );
      }
      if (Date.now() > deadline) {
        if (inLine) process.stderr.write('not ready\n');
        throw new StartAborted(
          `${node.plan.id} (${node.plan.role}) on ${node.plan.address} was not ready within ${this.#options.readyTimeout} s (GET ${node.url}/v1/ready); its log: ${display(node.plan.logFile)}`,
          node,
        );
      }
      if (await isReady(node.url)) break;
      await Promise.race([sleep(READY_POLL_MS), node.exited]);
    }
    node.readyAt = Date.now();
    node.facades = await facadesOf(node.url);
    const took = seconds(node.readyAt - node.startedAt);
    if (inLine) process.stderr.write(`ready in ${took}\n`);
    else this.#note(`${node.plan.id} ready in ${took}`);
    if (this.#options.json) this.#out(this.#record(node));
  }

  #onExit(node: NodeProcess, exit: Exit): void {
    // Exits while starting are reported by #untilReady, exits on stop by #stopAll.
    if (node.readyAt === undefined || this.#stopping !== undefined) return;
    this.#note(`${node.plan.id} exited with ${exitText(exit)}; its log: ${display(node.plan.logFile)}`);
    this.#wake?.();
  }

  /** Runs until a stop, or until no node is left (exit 2). */
  async #supervise(): Promise<number> {
    for (;;) {
      if (this.#stopping !== undefined) return this.#stopping;
      if (this.#nodes.every((n) => !n.running)) {
        this.#note('every node has exited');
        return EXIT.runtime;
      }
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = undefined;
    }
  }

  #printReady(client: UpNodePlan): void {
    if (this.#options.json) {
      this.#out({ ready: true });
      return;
    }
    const rows = this.#nodes.map((n) => [
      n.plan.id,
      n.plan.role,
      n.url,
      String(n.child.pid ?? ''),
      display(n.plan.logFile),
    ]);
    const header = ['ID', 'ROLE', 'URL', 'PID', 'LOG'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]): string => `  ${cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
    const url = this.#urls.get(client.id)!;
    const text = [
      `${plural(this.#nodes.length, 'node')} ready in ${seconds(Date.now() - this.#startedAt)}`,
      line(header),
      ...rows.map(line),
      '',
      `Try (${client.id}):`,
      `  curl -i -X PUT --data-binary 'hello' -H 'Content-Type: text/plain' ${url}/v1/kv/greeting`,
      `  curl -i ${url}/v1/kv/greeting`,
      `  curl -s ${url}/v1/cluster`,
      `  npx kvmesh status --node ${url}`,
      '',
      `Dashboard: ${url}/ui`,
      '',
      ...this.#facadeLines(client),
      `Data stays in ${display(resolve(this.#options.dataDir))} for the next run. Ctrl-C stops every node.`,
      '',
    ];
    process.stdout.write(text.join('\n'));
  }

  /** Each facade of the client node: where it answers and the curl lines it declares. */
  #facadeLines(client: UpNodePlan): string[] {
    const node = this.#nodes.find((n) => n.plan.id === client.id);
    return (node?.facades ?? []).flatMap((f) => [
      `${f.name} facade (${client.id}, ${f.url}):`,
      ...f.examples.map((line) => `  ${line}`),
      '',
    ]);
  }

  #record(node: NodeProcess): UpNodeRecord {
    const env = { ...node.plan.env, [CLUSTER_SECRET_FILE_VARIABLE]: this.#secretFile };
    return {
      id: node.plan.id,
      role: node.plan.role,
      url: node.url,
      address: node.plan.address,
      pid: node.child.pid ?? -1,
      dataDir: node.plan.dataDir,
      log: node.plan.logFile,
      env,
      argv: [
        'env',
        ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
        process.execPath,
        KVMESH_LAUNCHER,
        ...node.plan.args,
      ],
      ...(node.facades.length > 0 ? { facades: node.facades } : {}),
    };
  }

  #out(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value)}\n`);
  }

  /** Progress and reports: stderr, whatever --json says. */
  #note(text: string): void {
    process.stderr.write(`${text}\n`);
  }
}

async function isReady(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/v1/ready`, { signal: AbortSignal.timeout(READY_REQUEST_MS) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * The facades a ready node serves, from its OpenAPI document's
 * `x-kvmesh-facades` (where each answers, with the port it got, and its curl
 * lines): the node itself computed them from its plugins. None when the
 * document cannot be read.
 */
async function facadesOf(url: string): Promise<UpFacade[]> {
  try {
    const res = await fetch(`${url}/v1/openapi.json`, { signal: AbortSignal.timeout(FACADES_REQUEST_MS) });
    const doc = (await res.json()) as Record<string, unknown>;
    const { FACADES_EXTENSION } = await import('../openapi.js');
    const listed = doc[FACADES_EXTENSION];
    if (!Array.isArray(listed)) return [];
    return listed
      .filter(
        (f): f is UpFacade => typeof f?.name === 'string' && typeof f?.url === 'string' && Array.isArray(f?.examples),
      )
      .map((f) => ({ name: f.name, url: f.url, examples: f.examples.filter((l) => typeof l === 'string') }));
  } catch {
    return [];
  }
}

function statSize(fd: number): number {
  try {
    return fstatSync(fd).size;
  } catch {
    return 0;
  }
}

function exitText(exit: Exit): string {
  if (exit.signal !== null) return `signal ${exit.signal}`;
  if (exit.code !== null) return `status ${exit.code}`;
  return 'a spawn failure';
}

/** A path relative to the working directory when it lies inside it. */
function display(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A host to connect to for a bind host: the unspecified addresses become loopback. */
function connectHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65_535) throw new InvalidArgumentError('expected a port, 1-65535');
  return n;
}
