import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import type { RawRequest, Result } from 'autocannon';

// GET and PUT of 100-byte values against one kvmesh node (lmdb, syncWrites as
// configured by default), next to a bare node:http server answering the same
// bytes. Both servers run in child processes so the load generator has a core
// of its own. Loopback only; every phase is bounded in time.
//
// The two servers are measured in alternating rounds (bare, kvmesh, bare,
// kvmesh...) so that a change in background load over the run hits both
// alike; req/s is the total over all rounds, p50/p99 the median of the rounds.
//
// Environment: BENCH_DURATION_S (default 5, per server and operation),
// BENCH_ROUNDS (5), BENCH_WARMUP_S (1), BENCH_CONNECTIONS (32),
// BENCH_NODE_ARGS (extra node flags for the kvmesh child, e.g.
// "--cpu-prof --cpu-prof-dir=/tmp/kvmesh-prof").

const DURATION_S = Number(process.env['BENCH_DURATION_S'] ?? 5);
const ROUNDS = Math.max(1, Number(process.env['BENCH_ROUNDS'] ?? 5));
const WARMUP_S = Number(process.env['BENCH_WARMUP_S'] ?? 1);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 32);
const NODE_ARGS = (process.env['BENCH_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
const HOST = '127.0.0.1';
const KEYS = 1000;
const VALUE = Buffer.alloc(100, 'v');
const STARTUP_TIMEOUT_MS = 30_000;

const BIN = fileURLToPath(new URL('../../bin/kvmesh.js', import.meta.url));
const BARE = fileURLToPath(new URL('./bare-server.js', import.meta.url));

type Op = 'GET' | 'PUT';

interface Row {
  readonly server: string;
  readonly op: Op;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly failures: number;
}

const children: ChildProcess[] = [];

/** Spawns a server and resolves with its URL, read from the first JSON log line that names one. */
function startChild(args: string[], pick: (line: Record<string, unknown>) => string | undefined): Promise<string> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} did not start`)), STARTUP_TIMEOUT_MS);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (text) => {
      try {
        const url = pick(JSON.parse(text) as Record<string, unknown>);
        if (url !== undefined) {
          clearTimeout(timer);
          resolve(url);
        }
      } catch {
        // Not a JSON line.
      }
    });
  });
}

async function populate(url: string): Promise<void> {
  for (let i = 0; i < KEYS; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, KEYS - i) }, async (_, j) => {
        const res = await fetch(`${url}/v1/kv/bench-${i + j}`, { method: 'PUT', body: VALUE });
        if (res.status !== 201 && res.status !== 200) throw new Error(`populating failed: HTTP ${res.status}`);
        await res.arrayBuffer();
      }),
    );
  }
}

// One prebuilt request per key: autocannon cycles through them without rebuilding any.
function requests(op: Op): RawRequest[] {
  return Array.from({ length: KEYS }, (_, i) => ({
    method: op,
    path: `/v1/kv/bench-${i}`,
    ...(op === 'PUT' ? { body: VALUE, headers: { 'content-type': 'application/octet-stream' } } : {}),
  }));
}

function load(url: string, op: Op, durationS: number): Promise<Result> {
  return autocannon({ url, connections: CONNECTIONS, pipelining: 1, duration: durationS, requests: requests(op) });
}

/** Both servers for one operation, in alternating rounds after a warmup of each. */
async function measure(servers: readonly (readonly [string, string])[], op: Op): Promise<Row[]> {
  const runs = new Map<string, Result[]>(servers.map(([name]) => [name, []]));
  if (WARMUP_S > 0) for (const [, url] of servers) await load(url, op, WARMUP_S);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, url] of servers) runs.get(name)!.push(await load(url, op, DURATION_S / ROUNDS));
  }
  return servers.map(([name]) => {
    const results = runs.get(name)!;
    const total = results.reduce((sum, r) => sum + r.requests.total, 0);
    return {
      server: name,
      op,
      rps: total / DURATION_S,
      p50: median(results.map((r) => r.latency.p50)),
      p99: median(results.map((r) => r.latency.p99)),
      failures: results.reduce((sum, r) => sum + r.non2xx + r.errors + r.timeouts, 0),
    };
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function table(rows: readonly Row[]): string {
  const bare = new Map(rows.filter((r) => r.server === 'node:http').map((r) => [r.op, r.rps]));
  const lines = [['server', 'op', 'req/s', 'p50 ms', 'p99 ms', 'failures', 'ratio']];
  for (const r of rows) {
    const ratio = r.server === 'node:http' ? '1.00' : (r.rps / (bare.get(r.op) ?? NaN)).toFixed(2);
    lines.push([r.server, r.op, r.rps.toFixed(0), r.p50.toFixed(2), r.p99.toFixed(2), String(r.failures), ratio]);
  }
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines
    .map((l) => l.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '))
    .join('\n');
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kvmesh-bench-'));
  try {
    const config = join(dir, 'bench.json');
    await writeFile(
      config,
      JSON.stringify({
        node: { id: 'bench', address: `${HOST}:0`, dataDir: join(dir, 'data') },
        storage: { name: 'lmdb' },
        placement: { name: 'single' },
        transport: { name: 'http' },
        codec: { name: 'json' },
        log: { level: 'info' },
      }),
    );
    const bareUrl = await startChild([BARE, HOST, '0'], (l) =>
      l['msg'] === 'listening' ? String(l['url']) : undefined,
    );
    const kvUrl = await startChild([...NODE_ARGS, BIN, 'start', '--config', config], (l) =>
      l['msg'] === 'node serving' ? String(l['api']) : undefined,
    );
    await populate(kvUrl);
    process.stdout.write(
      `kvmesh bench: ${CONNECTIONS} connections, ${WARMUP_S} s warmup + ${DURATION_S} s in ${ROUNDS} alternating rounds ` +
        `per server and operation, 100-byte values, ` +
        `${KEYS} keys, lmdb syncWrites (default); node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ` +
        `load average ${loadavg()[0]!.toFixed(2)}\n\n`,
    );
    const servers = [
      ['node:http', bareUrl],
      ['kvmesh', kvUrl],
    ] as const;
    const rows: Row[] = [];
    for (const op of ['GET', 'PUT'] as const) rows.push(...(await measure(servers, op)));
    process.stdout.write(`${table(rows)}\n`);
  } finally {
    await Promise.all(children.map((child) => stop(child)));
    await rm(dir, { recursive: true, force: true });
  }
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    for (const child of children) child.kill('SIGKILL');
    process.exit(1);
  },
);
