// The environment knobs every bench reads (see docs/performance.md).

import { wrkInstalled } from './wrk.js';

/** Load generators the benches can drive requests with. */
export type BenchClient = 'wrk' | 'autocannon';

export interface BenchSettings {
  /** The load generator (BENCH_CLIENT): wrk where it is installed, else autocannon. */
  readonly client: BenchClient;
  /** Measured seconds per server and operation (BENCH_DURATION_S, default 5). */
  readonly durationS: number;
  /** Alternating rounds the measured seconds are split into (BENCH_ROUNDS, default 5). */
  readonly rounds: number;
  /** Warmup seconds per server and operation (BENCH_WARMUP_S, default 1). */
  readonly warmupS: number;
  /** Client connections, split over a target's URLs (BENCH_CONNECTIONS, default 32). */
  readonly connections: number;
  /** Keys the requests cycle through (BENCH_KEYS, default 1000). */
  readonly keys: number;
  /** Extra node flags for every kvmesh child (BENCH_NODE_ARGS), e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`. */
  readonly nodeArgs: readonly string[];
  /** Keys the rebalance bench moves (BENCH_REBALANCE_KEYS, default 100000). */
  readonly rebalanceKeys: number;
  /** `kv.batchSize` of the rebalance bench's nodes (BENCH_REBALANCE_BATCH); undefined: the default. */
  readonly rebalanceBatch: number | undefined;
}

export function readSettings(env: NodeJS.ProcessEnv = process.env): BenchSettings {
  return {
    client: client(env),
    durationS: positive(env, 'BENCH_DURATION_S', 5),
    rounds: Math.max(1, Math.floor(positive(env, 'BENCH_ROUNDS', 5))),
    warmupS: nonNegative(env, 'BENCH_WARMUP_S', 1),
    connections: Math.max(1, Math.floor(positive(env, 'BENCH_CONNECTIONS', 32))),
    keys: Math.max(1, Math.floor(positive(env, 'BENCH_KEYS', 1000))),
    nodeArgs: (env['BENCH_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== ''),
    rebalanceKeys: Math.max(1, Math.floor(positive(env, 'BENCH_REBALANCE_KEYS', 100_000))),
    rebalanceBatch:
      env['BENCH_REBALANCE_BATCH'] === undefined || env['BENCH_REBALANCE_BATCH'] === ''
        ? undefined
        : Math.floor(positive(env, 'BENCH_REBALANCE_BATCH', 500)),
  };
}

function client(env: NodeJS.ProcessEnv): BenchClient {
  const raw = env['BENCH_CLIENT'];
  if (raw === undefined || raw === '') return wrkInstalled() ? 'wrk' : 'autocannon';
  if (raw !== 'wrk' && raw !== 'autocannon') throw new Error(`BENCH_CLIENT must be wrk or autocannon (found '${raw}')`);
  if (raw === 'wrk' && !wrkInstalled())
    throw new Error('BENCH_CLIENT is wrk, but no wrk is installed (apt install wrk)');
  return raw;
}

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = nonNegative(env, name, fallback);
  if (value === 0) throw new Error(`${name} must be greater than 0`);
  return value;
}

function nonNegative(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number >= 0 (found '${raw}')`);
  return value;
}
