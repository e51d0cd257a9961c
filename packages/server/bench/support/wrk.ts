import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The wrk load generator (Debian's `wrk` package, a C program): where it is
// installed the benches use it, as it costs the machine a fraction of the
// CPU autocannon does per request, so on a two-core machine the servers
// compared, not the client, set the figures (BENCH_CLIENT chooses).

/** What one wrk run measured. */
export interface WrkResult {
  readonly total: number;
  /** Latency percentiles, ms. */
  readonly p50: number;
  readonly p99: number;
  /** Answers other than 2xx/3xx, and connection, read, write and timeout errors. */
  readonly failures: number;
}

export interface WrkRun {
  readonly url: string;
  readonly connections: number;
  readonly durationS: number;
  readonly method: string;
  /** Request paths, cycled through in order. */
  readonly paths: readonly string[];
  /** Body of every request (with Content-Type application/octet-stream); none for undefined. */
  readonly body?: Buffer;
}

/** True when a `wrk` binary answers on PATH. */
export function wrkInstalled(): boolean {
  const probe = spawnSync('wrk', ['--version'], { stdio: 'ignore' });
  return probe.error === undefined;
}

/** The Lua script of a run: cycles through the paths, and prints the figures in one line at the end. */
function script(run: WrkRun): string {
  for (const path of run.paths) {
    if (!/^[\x21-\x7e]+$/.test(path))
      throw new Error(`wrk runs need printable ASCII paths, found ${JSON.stringify(path)}`);
  }
  const request =
    run.body === undefined
      ? `wrk.format(${JSON.stringify(run.method)}, paths[i])`
      : `wrk.format(${JSON.stringify(run.method)}, paths[i], headers, body)`;
  return [
    `local paths = { ${run.paths.map((p) => JSON.stringify(p)).join(', ')} }`,
    `local body = ${JSON.stringify(run.body?.toString('latin1') ?? '')}`,
    `local headers = { ["Content-Type"] = "application/octet-stream" }`,
    'local i = 0',
    'request = function()',
    '  i = i % #paths + 1',
    `  return ${request}`,
    'end',
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format("KVMESH-WRK %d %d %d %d\\n", summary.requests,',
    '    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50), latency:percentile(99)))',
    'end',
    '',
  ].join('\n');
}

/** Runs wrk once (one thread, `connections` keep-alive connections) and reads its figures. */
export function runWrk(run: WrkRun): Promise<WrkResult> {
  const dir = mkdtempSync(join(tmpdir(), 'kvmesh-wrk-'));
  const file = join(dir, 'load.lua');
  writeFileSync(file, script(run));
  const seconds = Math.max(1, Math.round(run.durationS));
  return new Promise<WrkResult>((resolve, reject) => {
    const child = spawn(
      'wrk',
      ['-t1', `-c${run.connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', file, run.url],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = /KVMESH-WRK (\d+) (\d+) (\d+) (\d+)/.exec(out);
      if (code !== 0 || line === null) {
        reject(new Error(`wrk exited with ${code}: ${out.trim()}`));
        return;
      }
      resolve({
        total: Number(line[1]),
        failures: Number(line[2]),
        p50: Number(line[3]) / 1000,
        p99: Number(line[4]) / 1000,
      });
    });
  }).finally(() => rmSync(dir, { recursive: true, force: true }));
}
