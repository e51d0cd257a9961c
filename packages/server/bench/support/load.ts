import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import autocannon from 'autocannon';
import type { RawRequest, Result } from 'autocannon';
import type { BenchSettings } from './settings.js';
import { runWrk } from './wrk.js';

// Load generation and the printed table, shared by every bench. Servers that
// are compared run in alternating rounds (A, B, A, B...) after a warmup of
// each, so a change in background load over the run hits all of them alike;
// req/s is the total over all rounds, p50/p99 the median of the rounds.

export type Op = 'GET' | 'PUT' | 'POST';

export const VALUE = Buffer.alloc(100, 'v');

/** One side of a comparison: where its load goes, and which keys it asks for. */
export interface Target {
  readonly name: string;
  /** Load is split evenly over these URLs (one load generator each, all at once). */
  readonly urls: readonly string[];
  /** Keys of each URL's requests; default: `bench-0` .. `bench-<keys-1>`. */
  readonly keys?: readonly (readonly string[])[];
  /** The request path of a key; default the native API's, `/v1/kv/<key>`. */
  readonly path?: (key: string) => string;
  /** Server processes whose CPU time this side's requests are charged with (all threads, user + system). */
  readonly pids?: readonly number[];
}

export interface Row {
  readonly server: string;
  readonly op: Op;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly failures: number;
  /** CPU time of the side's server processes per request, µs; NaN when it cannot be read. */
  readonly cpuUs: number;
}

export function benchKeys(count: number, prefix = 'bench-'): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i}`);
}

/** The native API's path of a key. */
export function nativePath(key: string): string {
  return `/v1/kv/${encodeURIComponent(key)}`;
}

/** Writes VALUE under every key, 50 at a time, through `url` (PUT of the native API, or `method` at `path`). */
export async function populate(
  url: string,
  keys: readonly string[],
  path: (key: string) => string = nativePath,
  method: Op = 'PUT',
): Promise<void> {
  for (let i = 0; i < keys.length; i += 50) {
    await Promise.all(
      keys.slice(i, i + 50).map(async (key) => {
        const res = await fetch(`${url}${path(key)}`, { method, body: VALUE });
        if (res.status !== 201 && res.status !== 200) throw new Error(`populating failed: HTTP ${res.status}`);
        await res.arrayBuffer();
      }),
    );
  }
}

// One prebuilt request per key: autocannon cycles through them without rebuilding any.
function requests(op: Op, keys: readonly string[], path: (key: string) => string): RawRequest[] {
  return keys.map((key) => ({
    method: op,
    path: path(key),
    ...(op !== 'GET' ? { body: VALUE, headers: { 'content-type': 'application/octet-stream' } } : {}),
  }));
}

interface Sample {
  readonly total: number;
  readonly p50: number;
  readonly p99: number;
  readonly failures: number;
  /** CPU seconds the side's processes used during the sample. */
  readonly cpuS: number;
  /** Seconds the load ran. */
  readonly seconds: number;
}

const CLOCK_TICKS_PER_S = 100;

/**
 * CPU seconds (user + system, all threads) a process has used, from
 * `/proc/<pid>/stat`; NaN where there is no such file (not Linux, or gone).
 */
function cpuSeconds(pid: number): number {
  try {
    // The fields after the command name, which is in parentheses and may hold spaces.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system, all threads) the processes `pids` have used in all; NaN when one cannot be read. */
export function cpuOf(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
}

async function load(target: Target, op: Op, durationS: number, settings: BenchSettings): Promise<Sample> {
  const n = target.urls.length;
  // The connections are split over the URLs; the first ones take the remainder.
  const connections = (i: number): number =>
    Math.floor(settings.connections / n) + (i < settings.connections % n ? 1 : 0);
  const keysOf = (i: number): readonly string[] => target.keys?.[i] ?? benchKeys(settings.keys);
  const path = target.path ?? nativePath;
  const cpuBefore = cpuOf(target.pids ?? []);
  let figures: { total: number; p50: number; p99: number; failures: number }[];
  let seconds = durationS;
  if (settings.client === 'wrk') {
    seconds = Math.max(1, Math.round(durationS));
    figures = await Promise.all(
      target.urls.map((url, i) =>
        runWrk({
          url,
          connections: connections(i),
          durationS: seconds,
          method: op,
          paths: keysOf(i).map(path),
          ...(op !== 'GET' ? { body: VALUE } : {}),
        }),
      ),
    );
  } else {
    const results: Result[] = await Promise.all(
      target.urls.map((url, i) =>
        autocannon({
          url,
          connections: connections(i),
          pipelining: 1,
          duration: durationS,
          requests: requests(op, keysOf(i), path),
        }),
      ),
    );
    figures = results.map((r) => ({
      total: r.requests.total,
      p50: r.latency.p50,
      p99: r.latency.p99,
      failures: r.non2xx + r.errors + r.timeouts,
    }));
  }
  return {
    total: figures.reduce((sum, f) => sum + f.total, 0),
    p50: Math.max(...figures.map((f) => f.p50)),
    p99: Math.max(...figures.map((f) => f.p99)),
    failures: figures.reduce((sum, f) => sum + f.failures, 0),
    cpuS: target.pids === undefined ? NaN : cpuOf(target.pids) - cpuBefore,
    seconds,
  };
}

/** Every target for one operation, in alternating rounds after a warmup of each. */
export async function measure(targets: readonly Target[], op: Op, settings: BenchSettings): Promise<Row[]> {
  const runs = new Map<string, Sample[]>(targets.map((t) => [t.name, []]));
  if (settings.warmupS > 0) for (const target of targets) await load(target, op, settings.warmupS, settings);
  for (let round = 0; round < settings.rounds; round++) {
    for (const target of targets) {
      runs.get(target.name)!.push(await load(target, op, settings.durationS / settings.rounds, settings));
    }
  }
  return targets.map((target) => {
    const samples = runs.get(target.name)!;
    const requests = samples.reduce((sum, s) => sum + s.total, 0);
    return {
      server: target.name,
      op,
      rps: requests / samples.reduce((sum, s) => sum + s.seconds, 0),
      p50: median(samples.map((s) => s.p50)),
      p99: median(samples.map((s) => s.p99)),
      failures: samples.reduce((sum, s) => sum + s.failures, 0),
      cpuUs: (samples.reduce((sum, s) => sum + s.cpuS, 0) / requests) * 1e6,
    };
  });
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * The rows with req/s as a ratio to `baseline`'s row of the same operation,
 * and the CPU time the side's server processes spent per request.
 */
export function table(rows: readonly Row[], baseline: string): string {
  const base = new Map(rows.filter((r) => r.server === baseline).map((r) => [r.op, r.rps]));
  const lines = [['server', 'op', 'req/s', 'p50 ms', 'p99 ms', 'failures', 'cpu µs/req', 'ratio']];
  for (const r of rows) {
    const ratio = r.server === baseline ? '1.00' : (r.rps / (base.get(r.op) ?? NaN)).toFixed(2);
    const cpu = Number.isFinite(r.cpuUs) ? r.cpuUs.toFixed(1) : '-';
    lines.push([r.server, r.op, r.rps.toFixed(0), r.p50.toFixed(2), r.p99.toFixed(2), String(r.failures), cpu, ratio]);
  }
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines
    .map((l) => l.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '))
    .join('\n');
}

/** The first line of every bench: what ran, on what, and how busy the machine was. */
export function header(name: string, what: string, settings: BenchSettings): string {
  return (
    `kvmesh bench ${name}: ${what}; ${settings.client}, ${settings.connections} connections, ${settings.warmupS} s warmup + ` +
    `${settings.durationS} s in ${settings.rounds} alternating rounds per server and operation, 100-byte values; ` +
    `node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, load average ${loadavg()[0]!.toFixed(2)}`
  );
}
