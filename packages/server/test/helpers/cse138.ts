import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { CONFIGS_DIR, request } from './cluster.js';
import { KVMESH_BIN } from './cli.js';
import type { TestResponse } from './http.js';
import { waitFor } from './http.js';

// Processes and requests of the CSE138 topology's end-to-end test (topology-cse138.test.ts).

/** configs/cse138.json exactly as a user starts it: only ADDRESS, VIEW and REPL_FACTOR differ between nodes. */
export const CSE138_CONFIG = join(CONFIGS_DIR, 'cse138.json');
export const KEYS = 100;
export const CLIENTS = 8;
/** A few processes starting at once on two busy cores. */
const START_TIMEOUT_MS = 30_000;
/** The view change answers once the reshard settled; generous for a loaded machine. */
export const VIEW_CHANGE_TIMEOUT_MS = 60_000;
const JSON_HEADERS = { 'content-type': 'application/json' };

/** Where a node answers: its `host:port` and API base URL. */
export interface Cse138Endpoint {
  readonly address: string;
  readonly url: string;
}

export interface Cse138Node extends Cse138Endpoint {
  /** SIGKILLs the process; resolves once it exited. */
  kill(): Promise<void>;
}

export interface NodeSetup {
  readonly address: string;
  readonly view: readonly string[];
  readonly replFactor?: number;
  /** `--data-dir`; without it the node derives its directory from ADDRESS, under `cwd`. */
  readonly dataDir?: string;
  readonly cwd?: string;
  /**
   * The path that must answer 200: `/v1/ready` by default; `/kvs/key-count`
   * for a node that starts with a view the others do not have yet (it is not
   * ready before the view change sends it its keys, and its health answers
   * 200 before it runs).
   */
  readonly until?: string;
}

/**
 * `ADDRESS=... VIEW=... [REPL_FACTOR=...] kvmesh start --config configs/cse138.json`;
 * resolves once the node answers GET /v1/ready (or `until`). Killed when the test ends.
 */
export async function startNode(t: ExecutionContext, setup: NodeSetup): Promise<Cse138Node> {
  const args = [
    KVMESH_BIN,
    'start',
    '--config',
    CSE138_CONFIG,
    ...(setup.dataDir ? ['--data-dir', setup.dataDir] : []),
  ];
  // Only what the test sets: none of the variables the config reads comes from the caller's environment.
  const { REPL_FACTOR: _factor, KVMESH_MEMBERS: _members, ...inherited } = process.env;
  const env: NodeJS.ProcessEnv = {
    ...inherited,
    ADDRESS: setup.address,
    VIEW: setup.view.join(','),
    ...(setup.replFactor !== undefined ? { REPL_FACTOR: String(setup.replFactor) } : {}),
  };
  const child = spawn(process.execPath, args, { cwd: setup.cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const url = `http://${setup.address}`;
  const path = setup.until ?? '/v1/ready';
  await waitFor(
    `${setup.address} to answer ${path}`,
    async () => {
      if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}): ${stderr}`);
      return (await request(url, path, {}, 1_000)).status === 200;
    },
    START_TIMEOUT_MS,
    50,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${stderr}`);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    address: setup.address,
    url,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A request with a JSON body, sized as clients such as Python's requests send it. */
export function send(
  node: Cse138Endpoint,
  method: string,
  path: string,
  body: unknown,
  timeoutMs?: number,
): Promise<TestResponse> {
  const bytes = Buffer.from(JSON.stringify(body));
  const headers = { ...JSON_HEADERS, 'content-length': bytes.length };
  return request(node.url, path, { method, headers, body: bytes }, timeoutMs);
}

export function put(node: Cse138Endpoint, key: string, body: unknown): Promise<TestResponse> {
  return send(node, 'PUT', `/kvs/keys/${key}`, body);
}

export function get(node: Cse138Endpoint, path: string, context?: unknown): Promise<TestResponse> {
  return context === undefined ? request(node.url, path) : send(node, 'GET', path, { 'causal-context': context });
}

/** The body without its causal context, which every data answer carries (checked to be an object). */
export function withoutContext(t: ExecutionContext, answer: TestResponse): Record<string, unknown> {
  const { 'causal-context': context, ...rest } = answer.json<Record<string, unknown>>();
  t.true(typeof context === 'object' && context !== null && !Array.isArray(context), 'a causal-context object');
  return rest;
}

export async function keyCount(node: Cse138Endpoint): Promise<Record<string, unknown>> {
  const answer = await request(node.url, '/kvs/key-count');
  if (answer.status !== 200) throw new Error(`key-count of ${node.address}: ${answer.status}`);
  return answer.json<Record<string, unknown>>();
}

export const keysOf = (prefix: string): string[] => Array.from({ length: KEYS }, (_, i) => `${prefix}${i}`);
