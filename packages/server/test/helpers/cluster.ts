import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PluginRegistry, resolveConfig, silentLogger } from '@kvmesh/core';
import type { Member, Membership, Placement } from '@kvmesh/core';
import { builtinPlugins } from '@kvmesh/plugins';
import { SERVER_CONFIG_EXTENSIONS } from '../../src/settings.js';
import { KVMESH_BIN, startCli } from './cli.js';
import type { StartedNode, Teardowns } from './cli.js';
import { http } from './http.js';
import type { TestRequest, TestResponse } from './http.js';

/**
 * Helpers for end-to-end tests of whole clusters: real `kvmesh start` (or
 * `kvmesh up`) processes on loopback addresses, every one stopped when the
 * test ends, and the few HTTP calls such tests make over and over.
 */

/** The repository's `configs/` folder, where the topology files users copy live. */
export const CONFIGS_DIR = fileURLToPath(new URL('../../../../../configs/', import.meta.url));

/** Longest wait for one HTTP answer: a node on a loaded two-core machine may stall for a while, never this long. */
export const REQUEST_TIMEOUT_MS = 10_000;

/** `count` loopback hosts from 127.0.0.`first` upward: each test file takes its own range. */
export function loopbackHosts(first: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `127.0.0.${first + i}`);
}

/** A fresh temporary folder, removed when the test ends (after its processes were killed). */
export async function tempDir(t: Teardowns, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `kvmesh-${prefix}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A topology file of `configs/`, parsed, for a test to adapt (the file itself is never changed). */
export async function readTopology(name: string): Promise<Record<string, any>> {
  return JSON.parse(await readFile(join(CONFIGS_DIR, name), 'utf8')) as Record<string, any>;
}

/**
 * A port free on every host, picked at random in 20000-40000 (the same port
 * on every host, as `kvmesh up` lays a cluster out): free for TCP, and for
 * UDP too when `udp` is set.
 */
export async function freePort(hosts: readonly string[], udp = false): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const free = await Promise.all(hosts.map((host) => portFree(host, port, udp)));
    if (free.every(Boolean)) return port;
    if (attempt === 20) throw new Error(`no free port found on ${hosts.join(', ')}`);
  }
}

async function portFree(host: string, port: number, udp: boolean): Promise<boolean> {
  const tcp = createServer();
  const tcpOk = await new Promise<boolean>((resolve) => {
    tcp.once('error', () => resolve(false));
    tcp.listen(port, host, () => resolve(true));
  });
  if (!tcpOk) return false;
  await new Promise<void>((resolve) => tcp.close(() => resolve()));
  if (!udp) return true;
  const socket = createSocket('udp4');
  const udpOk = await new Promise<boolean>((resolve) => {
    socket.once('error', () => resolve(false));
    socket.bind(port, host, () => resolve(true));
  });
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return udpOk;
}

export interface ProcessClusterOptions {
  /** The config every node starts from (already adapted by the test). */
  readonly configFile: string;
  /** Node ids, in order; node i runs on hosts[i]. */
  readonly ids: readonly string[];
  readonly hosts: readonly string[];
  readonly port: number;
  /** Folder of the data directories, one per node (`<dir>/<id>`), kept across restarts. */
  readonly dir: string;
  /** `host:port` every node joins through (`--join`); none when the config's membership needs no seeds. */
  readonly join?: readonly string[];
}

/**
 * Nodes started one by one with `kvmesh start` (helpers/cli.ts), so a test
 * can start, kill and restart each one. Every process is SIGKILLed when the
 * test ends, pass or fail (startCli's teardown).
 */
export class ProcessCluster {
  readonly options: ProcessClusterOptions;
  readonly #nodes = new Map<string, StartedNode>();

  constructor(options: ProcessClusterOptions) {
    this.options = options;
  }

  get ids(): readonly string[] {
    return this.options.ids;
  }

  /** `host:port` of node `id`. */
  address(id: string): string {
    return `${this.options.hosts[this.#index(id)]}:${this.options.port}`;
  }

  /** Node `id` as a static view names it: `id@host:port`. */
  member(id: string): string {
    return `${id}@${this.address(id)}`;
  }

  /** The API base URL of node `id` (started at least once). */
  url(id: string): string {
    const node = this.#nodes.get(id);
    if (node === undefined) throw new Error(`node ${id} was never started`);
    return node.url;
  }

  node(id: string): StartedNode | undefined {
    return this.#nodes.get(id);
  }

  isRunning(id: string): boolean {
    const child = this.#nodes.get(id)?.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** Ids of the nodes whose process runs now. */
  running(): string[] {
    return this.ids.filter((id) => this.isRunning(id));
  }

  /**
   * Starts (or restarts, on the same data directory) node `id`; resolves once it serves.
   * `configFile` replaces the cluster's config for this node (a node that starts with its own view).
   */
  async start(
    t: Teardowns,
    id: string,
    options: { configFile?: string; args?: readonly string[] } = {},
  ): Promise<StartedNode> {
    const o = this.options;
    const node = await startCli(t, [
      '--config',
      options.configFile ?? o.configFile,
      '--id',
      id,
      '--address',
      this.address(id),
      ...(o.join !== undefined && o.join.length > 0 ? ['--join', o.join.join(',')] : []),
      '--data-dir',
      join(o.dir, id),
      ...(options.args ?? []),
    ]);
    this.#nodes.set(id, node);
    return node;
  }

  /** Sends `signal` to node `id` and resolves once its process ended, with its exit code or signal. */
  async stop(id: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | string> {
    const node = this.#nodes.get(id);
    if (node === undefined) throw new Error(`node ${id} was never started`);
    if (this.isRunning(id)) node.child.kill(signal);
    return node.exited;
  }

  #index(id: string): number {
    const i = this.options.ids.indexOf(id);
    if (i < 0) throw new Error(`unknown node ${id}`);
    return i;
  }
}

/** One node as `kvmesh up --json` reports it once it is ready. */
export interface UpNode {
  readonly id: string;
  readonly role: string;
  readonly url: string;
  readonly address: string;
  readonly pid: number;
  readonly dataDir: string;
  readonly log: string;
}

export interface UpCluster {
  readonly nodes: readonly UpNode[];
  /** How long `up` took until every node was ready, in ms. */
  readonly readyMs: number;
  /** Stops the cluster as a user does (SIGTERM to `up`); resolves to up's exit code or signal. */
  stop(): Promise<number | string>;
}

/**
 * Runs `kvmesh up CONFIG --json ...args` and resolves once it printed
 * `{"ready":true}`. When the test ends `up` gets SIGTERM (it stops its
 * nodes), and whatever still runs a little later is SIGKILLed: `up` itself
 * and every node it reported, by pid.
 */
export function startUp(
  t: Teardowns,
  configFile: string,
  args: readonly string[],
  timeoutMs = 60_000,
): Promise<UpCluster> {
  const startedAt = Date.now();
  const child = spawn(process.execPath, [KVMESH_BIN, 'up', configFile, '--json', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const nodes: UpNode[] = [];
  const stop = async (): Promise<number | string> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  t.teardown(async () => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    const code = await stop();
    clearTimeout(timer);
    // A clean exit means `up` saw every node exit; otherwise some may still run.
    if (code === 0) return;
    for (const node of nodes) {
      try {
        process.kill(node.pid, 'SIGKILL');
      } catch {
        // Already gone, as it should be.
      }
    }
  });
  let stdout = '';
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`kvmesh up was not ready within ${timeoutMs} ms:\n${stderr}`)),
      timeoutMs,
    );
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      const lines = stdout.split('\n');
      stdout = lines.pop()!;
      for (const line of lines) {
        let record: UpNode & { ready?: boolean; error?: string };
        try {
          record = JSON.parse(line) as typeof record;
        } catch {
          continue; // --json prints JSON lines only; anything else is not ours to read.
        }
        if (record.ready === true) {
          clearTimeout(timer);
          resolve({ nodes, readyMs: Date.now() - startedAt, stop });
        } else if (record.ready === false) {
          clearTimeout(timer);
          reject(new Error(`kvmesh up failed: ${record.error}\n${stderr}`));
        } else {
          nodes.push(record);
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`kvmesh up exited (${code}) before it was ready:\n${stderr}`));
    });
  });
}

/** `http` with a deadline: a node that never answers fails the request instead of hanging the test. */
export function request(
  base: string,
  path: string,
  init: TestRequest = {},
  timeoutMs = REQUEST_TIMEOUT_MS,
): Promise<TestResponse> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${init.method ?? 'GET'} ${base}${path}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  return Promise.race([http(base, path, init), deadline]).finally(() => clearTimeout(timer));
}

/** The path of key `key` in the native API. */
export function keyPath(key: string): string {
  return `/v1/kv/${encodeURIComponent(key)}`;
}

/** PUT `value` at `key` through node `base`; resolves to the answer (any status), rejects on a network failure. */
export function putValue(base: string, key: string, value: string): Promise<TestResponse> {
  return request(base, keyPath(key), { method: 'PUT', body: value, headers: { 'content-type': 'text/plain' } });
}

/** What a GET of one key answered: its status and, for a 200, the value. */
export interface ReadResult {
  readonly status: number;
  readonly value: string | undefined;
}

/** GET `key` through node `base`. */
export async function getValue(base: string, key: string): Promise<ReadResult> {
  const res = await request(base, keyPath(key));
  return { status: res.status, value: res.status === 200 ? res.body.toString('utf8') : undefined };
}

/** What `GET /v1/cluster` answers. */
export interface ClusterJson {
  self: { id: string; address: string };
  members: { id: string; address: string; state: string }[];
  placement: Record<string, any>;
  [extra: string]: unknown;
}

export async function clusterOf(base: string): Promise<ClusterJson> {
  const res = await request(base, '/v1/cluster');
  if (res.status !== 200) throw new Error(`GET ${base}/v1/cluster answered ${res.status}`);
  return res.json<ClusterJson>();
}

/** One sample of `GET /metrics` by metric name (labels ignored: the first sample wins). */
export async function metric(base: string, name: string): Promise<number | undefined> {
  const text = (await request(base, '/metrics')).body.toString('utf8');
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** The sum of every sample of `name` whose labels include `labels` (e.g. `kind="sent"`). */
export async function metricSum(base: string, name: string, labels = ''): Promise<number> {
  const text = (await request(base, '/metrics')).body.toString('utf8');
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels !== '' && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Live keys in node `base`'s own storage (`kvmesh_keys`): what it holds, not what it can answer. */
export async function storedKeys(base: string): Promise<number> {
  const count = await metric(base, 'kvmesh_keys');
  if (count === undefined || Number.isNaN(count)) throw new Error(`${base}/metrics has no kvmesh_keys`);
  return count;
}

/** Runs `work` over `items` with at most `limit` at a time; resolves once all are done (rejects on the first failure). */
export async function inParallel<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** A seeded generator (mulberry32) in [0, 1): a failing run is replayed from the seed it logged. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * The placement a config's nodes run, built by its own plugin over the
 * given member ids (all alive), so a test can tell where each key must be
 * stored. Options get the same defaults the nodes apply.
 */
export async function placementOf(
  config: Record<string, unknown>,
  file: string,
  memberIds: readonly string[],
): Promise<Placement> {
  const registry = new PluginRegistry(builtinPlugins);
  const loaded = await resolveConfig(structuredClone(config), {
    registry,
    file,
    dir: CONFIGS_DIR,
    extensions: SERVER_CONFIG_EXTENSIONS,
    env: {},
  });
  const section = loaded.config.placement as { name: string; options: unknown };
  const manifest = registry.get('placement', section.name);
  const members: Member[] = [...memberIds]
    .sort()
    .map((id) => Object.freeze({ id, address: `test://${id}`, state: 'alive', incarnation: 0, meta: {} }));
  const membership: Membership = {
    name: 'fixed',
    self: members[0]!,
    members: () => members,
    on: () => () => {},
    join: async () => {},
    leave: async () => {},
    start: async () => {},
    stop: async () => {},
    bounds: {
      detectionMs: Number.POSITIVE_INFINITY,
      toleratedLoss: 0,
      periodMs: 1_000,
      healMs: Number.POSITIVE_INFINITY,
    },
  } as unknown as Membership;
  const node = { id: members[0]!.id, address: '127.0.0.1:1', role: 'storage', dataDir: '', configDir: CONFIGS_DIR };
  const create = manifest.create as (options: unknown) => (components: Record<string, unknown>) => unknown;
  const placement = (await create(section.options)({ node, membership, logger: silentLogger })) as Placement;
  await placement.start?.();
  return placement;
}

/** For each member id, how many of `keys` the placement stores on it. */
export async function expectedCounts(placement: Placement, keys: Iterable<string>): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const key of keys) {
    const set = await placement.locate(key, { intent: 'read' });
    for (const m of set.replicas) counts.set(m.id, (counts.get(m.id) ?? 0) + 1);
  }
  return counts;
}

/** Writes `config` as JSON into `dir/name` and returns the path. */
export async function writeConfig(dir: string, name: string, config: Record<string, unknown>): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

/** Every write a test issued to one key, in order, and which of them were acknowledged. */
interface KeyHistory {
  readonly values: string[];
  /** Index in `values` of the last write answered 2xx; -1 before the first. */
  lastAck: number;
}

/**
 * The writes a test issued, so reads can be judged: a read that began after
 * a write to its key was acknowledged must return that value or one written
 * after it (a failed write may still have been applied); never an older one,
 * never nothing. Writes to one key must not overlap (each key has one writer).
 */
export class WriteHistory {
  readonly #keys = new Map<string, KeyHistory>();
  /** Keys with at least one acknowledged write, in the order of their first acknowledgement. */
  readonly acknowledged: string[] = [];

  /** Records that a write of `value` to `key` is being sent. */
  begin(key: string, value: string): void {
    let entry = this.#keys.get(key);
    if (entry === undefined) this.#keys.set(key, (entry = { values: [], lastAck: -1 }));
    entry.values.push(value);
  }

  /** Records that the write of `value` to `key` was answered 2xx. */
  ack(key: string, value: string): void {
    const entry = this.#keys.get(key)!;
    if (entry.lastAck < 0) this.acknowledged.push(key);
    entry.lastAck = entry.values.lastIndexOf(value);
  }

  /** The last acknowledged value of `key`. */
  lastAcked(key: string): string | undefined {
    const entry = this.#keys.get(key);
    return entry === undefined || entry.lastAck < 0 ? undefined : entry.values[entry.lastAck];
  }

  /** Every key written (acknowledged or not). */
  keys(): IterableIterator<string> {
    return this.#keys.keys();
  }

  /** Where a read of `key` starting now must land: call before sending it, judge with `judge`. */
  floor(key: string): number {
    return this.#keys.get(key)?.lastAck ?? -1;
  }

  /** Undefined when `read` (begun at `floor`) is allowed, else why not. */
  judge(key: string, floor: number, read: ReadResult): string | undefined {
    const entry = this.#keys.get(key);
    if (read.status === 404) return floor < 0 ? undefined : `404, but ${entry!.values[floor]} was acknowledged`;
    if (read.status !== 200) return `answered ${read.status}`;
    const allowed = entry === undefined ? [] : entry.values.slice(Math.max(floor, 0));
    if (allowed.includes(read.value!)) return undefined;
    return entry?.values.includes(read.value!)
      ? `stale: ${read.value}, but ${entry.values[floor]} was acknowledged`
      : `unknown value ${read.value}`;
  }
}

/** What a load loop did. */
export interface LoadStats {
  attempts: number;
  ok: number;
  /** Failures: time (ms since the epoch), node, what. */
  readonly failures: { atMs: number; node: string; what: string }[];
}

/** A node a load loop may send to: its id and API base URL. */
export interface Target {
  readonly id: string;
  readonly url: string;
}

export interface WriteLoadOptions {
  readonly history: WriteHistory;
  /** The nodes to write through, asked before every write (a killed node leaves the list). */
  readonly targets: () => readonly Target[];
  readonly random: () => number;
  /** Prefix of the keys this load creates. */
  readonly prefix: string;
  /** Concurrent writers; each owns its keys, so writes to one key never overlap. */
  readonly lanes: number;
  /** Share of writes that overwrite a key the lane wrote before instead of creating one. */
  readonly overwriteShare: number;
  /** Keys (already written) that lane `i` may overwrite too: `seedKeys[j]` belongs to lane `j % lanes`. */
  readonly seedKeys?: readonly string[];
}

/**
 * A steady write load until `stop()` is called: each lane creates new keys
 * and overwrites some of its own, through a node picked at random for each
 * write, recording every write in the history (acknowledged on 2xx only).
 */
export function writeLoad(options: WriteLoadOptions): { stats: LoadStats; stop: () => Promise<void> } {
  const stats: LoadStats = { attempts: 0, ok: 0, failures: [] };
  let stopped = false;
  let seq = 0;
  const lane = async (index: number): Promise<void> => {
    const mine = (options.seedKeys ?? []).filter((_, j) => j % options.lanes === index);
    let created = 0;
    while (!stopped) {
      const targets = options.targets();
      if (targets.length === 0) throw new Error('no node to write through');
      const target = targets[Math.floor(options.random() * targets.length)]!;
      const overwrite = mine.length > 0 && options.random() < options.overwriteShare;
      const key = overwrite
        ? mine[Math.floor(options.random() * mine.length)]!
        : `${options.prefix}-${index}-${created++}`;
      const value = `${key}#${++seq}`;
      options.history.begin(key, value);
      stats.attempts++;
      try {
        const res = await putValue(target.url, key, value);
        if (res.status === 200 || res.status === 201) {
          options.history.ack(key, value);
          stats.ok++;
          if (!overwrite) mine.push(key);
        } else {
          stats.failures.push({ atMs: Date.now(), node: target.id, what: `PUT ${key}: ${res.status} ${res.body}` });
        }
      } catch (err) {
        stats.failures.push({ atMs: Date.now(), node: target.id, what: `PUT ${key}: ${(err as Error).message}` });
      }
    }
  };
  const running = Promise.all(Array.from({ length: options.lanes }, (_, i) => lane(i)));
  return {
    stats,
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}

export interface ReadLoadOptions {
  readonly history: WriteHistory;
  readonly targets: () => readonly Target[];
  readonly random: () => number;
  readonly lanes: number;
}

/**
 * Reads acknowledged keys at random through random nodes until `stop()`,
 * judging each answer against the history (`WriteHistory.judge`).
 */
export function readLoad(options: ReadLoadOptions): { stats: LoadStats; stop: () => Promise<void> } {
  const stats: LoadStats = { attempts: 0, ok: 0, failures: [] };
  let stopped = false;
  const lane = async (): Promise<void> => {
    while (!stopped) {
      const keys = options.history.acknowledged;
      const targets = options.targets();
      if (keys.length === 0 || targets.length === 0) throw new Error('nothing to read, or no node to read from');
      const key = keys[Math.floor(options.random() * keys.length)]!;
      const target = targets[Math.floor(options.random() * targets.length)]!;
      const floor = options.history.floor(key);
      stats.attempts++;
      try {
        const problem = options.history.judge(key, floor, await getValue(target.url, key));
        if (problem === undefined) stats.ok++;
        else stats.failures.push({ atMs: Date.now(), node: target.id, what: `GET ${key}: ${problem}` });
      } catch (err) {
        stats.failures.push({ atMs: Date.now(), node: target.id, what: `GET ${key}: ${(err as Error).message}` });
      }
    }
  };
  const running = Promise.all(Array.from({ length: options.lanes }, lane));
  return {
    stats,
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}

/**
 * Reads every key of the history through every target and returns the
 * problems (empty when each answers its last acknowledged value, or a later
 * one whose write failed).
 */
export async function verifyAll(
  history: WriteHistory,
  targets: readonly Target[],
  parallel: number,
): Promise<string[]> {
  const problems: string[] = [];
  const work = [...history.keys()].flatMap((key) => targets.map((target) => [key, target] as const));
  await inParallel(work, parallel, async ([key, target]) => {
    const floor = history.floor(key);
    const problem = history.judge(key, floor, await getValue(target.url, key));
    if (problem !== undefined) problems.push(`${key} via ${target.id}: ${problem}`);
  });
  return problems;
}

/** Every node in `ids` answers ready and lists every id alive. */
export async function allAlive(cluster: ProcessCluster, ids: readonly string[]): Promise<boolean> {
  const answers = await Promise.all(
    ids.map(async (id) => {
      if ((await request(cluster.url(id), '/v1/ready')).status !== 200) return false;
      const view = await clusterOf(cluster.url(id));
      return ids.every((other) => view.members.find((m) => m.id === other)?.state === 'alive');
    }),
  );
  return answers.every(Boolean);
}
