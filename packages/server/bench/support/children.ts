import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

// Child processes of a bench run: every server runs in its own process, so
// the load generator keeps a core of its own, and every one is stopped when
// the run ends, whatever happened.

export const BIN = fileURLToPath(new URL('../../../bin/kvmesh.js', import.meta.url));
export const BARE = fileURLToPath(new URL('../bare-server.js', import.meta.url));
export const PLAIN_PROXY = fileURLToPath(new URL('../plain-proxy.js', import.meta.url));
export const EXPRESS_MAP = fileURLToPath(new URL('../express-map.js', import.meta.url));
const STARTUP_TIMEOUT_MS = 30_000;
/** A child that does not exit this long after SIGTERM is killed. */
const STOP_TIMEOUT_MS = 10_000;

const children = new Set<ChildProcess>();

/**
 * Spawns `node args...` and resolves with the URL read from the first JSON
 * log line `pick` accepts. The child is told its parent's pid
 * (`KVMESH_PARENT_PID`), so a kvmesh node stops by itself should the bench
 * die without stopping it.
 */
export function startChild(
  args: readonly string[],
  pick: (line: Record<string, unknown>) => string | undefined,
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, KVMESH_PARENT_PID: String(process.pid) },
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} did not start`)), STARTUP_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited with ${code}`));
    });
    createInterface({ input: child.stdout! }).on('line', (text) => {
      try {
        const url = pick(JSON.parse(text) as Record<string, unknown>);
        if (url !== undefined) {
          clearTimeout(timer);
          resolve({ child, url });
        }
      } catch {
        // Not a JSON line.
      }
    });
  });
}

/** The bare node:http server of bare-server.ts on `host`, any free port. */
export async function startBare(host: string): Promise<{ child: ChildProcess; url: string }> {
  return startChild([BARE, host, '0'], (l) => (l['msg'] === 'listening' ? String(l['url']) : undefined));
}

/** The plain Koa proxy of plain-proxy.ts on `host`, any free port, relaying to `upstream`. */
export async function startPlainProxy(upstream: string, host: string): Promise<{ child: ChildProcess; url: string }> {
  return startChild([PLAIN_PROXY, upstream, host, '0'], (l) =>
    l['msg'] === 'listening' ? String(l['url']) : undefined,
  );
}

/** The express app of express-map.ts on `host`, any free port. */
export async function startExpressMap(host: string): Promise<{ child: ChildProcess; url: string }> {
  return startChild([EXPRESS_MAP, host, '0'], (l) => (l['msg'] === 'listening' ? String(l['url']) : undefined));
}

/** `kvmesh start --config config` with `nodeArgs` for node itself (BENCH_NODE_ARGS) and more CLI flags. */
export function startKvmesh(
  config: string,
  nodeArgs: readonly string[] = [],
  flags: readonly string[] = [],
): Promise<{ child: ChildProcess; url: string }> {
  return startChild([...nodeArgs, BIN, 'start', '--config', config, ...flags], (l) =>
    l['msg'] === 'node serving' ? String(l['api']) : undefined,
  );
}

/** The pids of running children, for CPU accounting. */
export function pidsOf(...list: readonly ChildProcess[]): number[] {
  return list.map((child) => child.pid).filter((pid): pid is number => pid !== undefined);
}

/** SIGTERM, then SIGKILL if it is still running after STOP_TIMEOUT_MS. */
export function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Stops every child still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((child) => stop(child)));
}

/** Kills every child still running, at once (the bench is failing). */
export function killAll(): void {
  for (const child of children) child.kill('SIGKILL');
}

/** A TCP port free on every one of `hosts` at the time of the call. */
export async function freePort(hosts: readonly string[]): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await listenOnce(hosts[0]!, 0);
    let free = true;
    for (const host of hosts.slice(1)) {
      if ((await listenOnce(host, port).catch(() => -1)) < 0) {
        free = false;
        break;
      }
    }
    if (free) return port;
  }
  throw new Error(`no port is free on all of ${hosts.join(', ')}`);
}

function listenOnce(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : port;
      server.close(() => resolve(bound));
    });
  });
}
