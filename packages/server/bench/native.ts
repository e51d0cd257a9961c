import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientBench } from './client.js';
import { facadeBench } from './facade.js';
import { proxyBench } from './proxy.js';
import { quorumBench } from './quorum.js';
import { rebalanceBench } from './rebalance.js';
import { singleBench } from './single.js';
import { killAll, stopAll } from './support/children.js';
import { readSettings } from './support/settings.js';
import type { BenchSettings } from './support/settings.js';

// `npm run bench`: every bench in turn, each in child processes of its own
// on loopback addresses, each printing its figures as ratios to a baseline
// measured in the same run (docs/performance.md). Every phase is bounded in
// time; every child is stopped when its bench ends, and killed if the run fails.
//
// Environment: BENCH_CLIENT (wrk where installed, else autocannon),
// BENCH_ONLY (comma-separated bench names, default all),
// BENCH_DURATION_S (default 5, per server and operation), BENCH_ROUNDS (5),
// BENCH_WARMUP_S (1), BENCH_CONNECTIONS (32), BENCH_KEYS (1000),
// BENCH_NODE_ARGS (extra node flags for every kvmesh child, e.g.
// "--cpu-prof --cpu-prof-dir=/tmp/kvmesh-prof"), BENCH_REBALANCE_KEYS (100000),
// BENCH_REBALANCE_BATCH (kv.batchSize of the rebalance bench, default its default).

type Bench = (dir: string, settings: BenchSettings) => Promise<string>;

const BENCHES: Readonly<Record<string, Bench>> = {
  single: singleBench,
  proxy: proxyBench,
  quorum: quorumBench,
  rebalance: rebalanceBench,
  facade: facadeBench,
  client: clientBench,
};

function selected(): [string, Bench][] {
  const only = (process.env['BENCH_ONLY'] ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  const unknown = only.filter((name) => !(name in BENCHES));
  if (unknown.length > 0) {
    throw new Error(
      `BENCH_ONLY names no bench ${unknown.join(', ')}; the benches are ${Object.keys(BENCHES).join(', ')}`,
    );
  }
  return Object.entries(BENCHES).filter(([name]) => only.length === 0 || only.includes(name));
}

/** The running bench's temporary directory, removed on the way out whatever happens. */
let current: string | undefined;

async function main(): Promise<void> {
  const settings = readSettings();
  const benches = selected();
  for (const [i, [name, bench]] of benches.entries()) {
    const dir = await mkdtemp(join(tmpdir(), `kvmesh-bench-${name}-`));
    current = dir;
    try {
      const report = await bench(dir, settings);
      process.stdout.write(`${i > 0 ? '\n' : ''}${report}\n`);
    } finally {
      await stopAll();
      await rm(dir, { recursive: true, force: true });
      current = undefined;
    }
  }
}

// Interrupted (Ctrl-C, a timeout's SIGTERM): stop the children and remove the data, then exit.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    const dir = current;
    void stopAll()
      .then(() => (dir === undefined ? undefined : rm(dir, { recursive: true, force: true })))
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    killAll();
    process.exit(1);
  },
);
