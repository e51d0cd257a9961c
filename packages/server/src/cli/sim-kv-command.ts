import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Command, InvalidArgumentError } from 'commander';
import type * as CoreModule from '@kvmesh/core';
import type { KvFaultKind, KvSimResult, PluginRegistry } from '@kvmesh/core';
import { CliError, EXIT } from './exit-codes.js';
import type { SimKvRunAnswer, SimKvRunRequest, SimKvWorkerData } from './sim-kv-worker.js';

// The simulator, the kernel and the plugins load inside the action, so the other commands start fast.

/** Storage every simulated node runs unless `--storage` says otherwise: nothing to set up, nothing left behind. */
export const SIM_KV_DEFAULT_STORAGE = 'memory';
/**
 * Real time one run may take before it is given up (the sweep goes on with
 * the next seed). Runs happen in a worker thread that is terminated then, so
 * even a strategy that keeps the thread busy for ever does not stop the sweep.
 */
export const SIM_KV_RUN_LIMIT_MS = 60_000;
/** Cluster size when neither `--nodes` nor the config's `up.nodes` gives one. */
export const SIM_KV_DEFAULT_NODES = 5;

export interface SimKvCommandOptions {
  /** Config files: one run per file and seed. */
  readonly config: readonly string[];
  /** Nodes per run. Default: the config's `up.nodes`, else SIM_KV_DEFAULT_NODES. */
  readonly nodes?: number;
  /** Seeds, one run each. */
  readonly seeds: readonly number[];
  readonly ops?: number;
  readonly clients?: number;
  readonly keys?: number;
  readonly counters?: number;
  /** Fault kinds (parsed `--faults`). Default every kind. */
  readonly faults?: readonly KvFaultKind[];
  readonly storage?: string;
  /** Clients avoid a restarted node until its join answered. */
  readonly readyOnly?: boolean;
  /** Seconds per config after which no further run of it starts (a sweep's bound). */
  readonly timeLimit?: number;
  /** Writes every run's fault schedule and history there, as JSON lines. */
  readonly history?: string;
  readonly json?: boolean;
}

/** One run as `--json` prints it (the history only goes to `--history`). */
export interface SimKvRecord extends Omit<KvSimResult, 'history'> {
  readonly config: string;
}

/** Per-config totals of a sweep. */
interface SweepRow {
  readonly config: string;
  runs: number;
  violating: number;
  violations: number;
  ops: number;
  acked: number;
  unknown: number;
  faults: number;
  unconverged: number;
  wallMs: number;
  /** Runs that failed to finish (gave up after SIM_KV_RUN_LIMIT_MS, or threw). */
  failed: number;
  readonly seeds: number[];
}

/**
 * Runs `simulateKv` for every config and seed with the built-in plugins (and
 * the configs' own), and writes each run: a report (one run) or a table row
 * per config (several), or one JSON line per run with `--json`. Any
 * violation is printed with the seed, the fault schedule and the shortest
 * history excerpt that shows it.
 * @returns every run's record.
 * @throws CliError (exit 2) when any run found a violation; KvError for a config that does not load.
 */
export async function simKv(options: SimKvCommandOptions, write: (line: string) => void): Promise<SimKvRecord[]> {
  const [core, plugins, settings] = await Promise.all([
    import('@kvmesh/core'),
    import('@kvmesh/plugins'),
    import('../settings.js'),
  ]);
  const builtins: PluginRegistry = new core.PluginRegistry(plugins.builtinPlugins);
  const storage = options.storage ?? SIM_KV_DEFAULT_STORAGE;
  const loaded = [];
  for (const file of options.config) {
    const config = await core.loadConfig(file, { registry: builtins, extensions: settings.SERVER_CONFIG_EXTENSIONS });
    // The config's own plugins may bring the storage.
    if (!config.registry.has('storage', storage)) {
      throw new CliError(
        `unknown storage plugin '${storage}'; available: ${config.registry.names('storage').join(', ')}`,
        EXIT.usage,
      );
    }
    loaded.push(config);
  }
  const single = options.config.length === 1 && options.seeds.length === 1;
  const rows: SweepRow[] = [];
  const workers: RunWorker[] = [];
  const records: SimKvRecord[] = [];
  const histories: string[] = [];
  const cut: string[] = [];
  const failures: string[] = [];
  for (const { config, file } of loaded) {
    const name = basename(file);
    const up = (config['up'] as { nodes?: unknown } | undefined)?.nodes;
    const nodes = options.nodes ?? (typeof up === 'number' && up >= 2 ? up : SIM_KV_DEFAULT_NODES);
    const row: SweepRow = {
      config: name,
      runs: 0,
      violating: 0,
      violations: 0,
      ops: 0,
      acked: 0,
      unknown: 0,
      faults: 0,
      unconverged: 0,
      wallMs: 0,
      failed: 0,
      seeds: [],
    };
    rows.push(row);
    const worker = new RunWorker(file);
    workers.push(worker);
    const started = performance.now();
    for (const seed of options.seeds) {
      if (options.timeLimit !== undefined && performance.now() - started > options.timeLimit * 1000) {
        cut.push(name);
        break;
      }
      let result: KvSimResult;
      try {
        result = await worker.run({
          storage,
          nodes,
          seed,
          readyOnly: options.readyOnly === true,
          wallLimitMs: SIM_KV_RUN_LIMIT_MS,
          ...(options.ops !== undefined ? { ops: options.ops } : {}),
          ...(options.clients !== undefined ? { clients: options.clients } : {}),
          ...(options.keys !== undefined ? { keys: options.keys } : {}),
          ...(options.counters !== undefined ? { counters: options.counters } : {}),
          ...(options.faults !== undefined ? { faults: options.faults } : {}),
        });
      } catch (err) {
        if (err instanceof RunError && err.code !== undefined && single)
          throw new core.KvError(err.code as never, err.message);
        if (single) {
          if (typeof (err as { code?: unknown }).code === 'string') throw err;
          throw new CliError(`${name} seed ${seed}: ${(err as Error).message}`, EXIT.runtime);
        }
        // A sweep notes the run and goes on with the next seed.
        row.runs++;
        row.failed++;
        row.seeds.push(seed);
        failures.push(`${name} seed ${seed}`);
        write(`${name} seed ${seed}: the run failed: ${(err as Error).message}`);
        continue;
      }
      const { history, ...figures } = result;
      const record: SimKvRecord = { config: name, ...figures };
      records.push(record);
      if (options.history !== undefined) {
        histories.push(JSON.stringify({ config: name, seed, faults: result.faults, history }));
      }
      row.runs++;
      row.ops += result.ops;
      row.acked += result.acked;
      row.unknown += result.unknown;
      row.faults += result.faults.filter((f) => f.kind !== 'skew').length;
      row.unconverged += result.converged ? 0 : 1;
      row.wallMs += result.wallMs;
      if (result.violations.length > 0) {
        row.violating++;
        row.violations += result.violations.length;
        row.seeds.push(seed);
      }
      if (options.json) write(JSON.stringify(record));
      else if (single) report(core, record, write);
      else if (result.violations.length > 0) violationReport(core, record, write);
    }
  }
  for (const worker of workers) await worker.close();
  if (options.history !== undefined) await writeFile(options.history, histories.map((h) => `${h}\n`).join(''));
  if (!options.json && !single) {
    write(SWEEP_COLUMNS.map((c, i) => (i === 0 ? c.padEnd(18) : c.padStart(c.length))).join('  '));
    for (const row of rows) write(sweepLine(row));
    for (const name of cut) write(`${name}: stopped after ${options.timeLimit} s (--time-limit); later seeds not run`);
  }
  const bad = records.filter((r) => r.violations.length > 0);
  if (bad.length > 0 || failures.length > 0) {
    const seeds = bad.map((r) => `${r.config} seed ${r.seed}`).join(', ');
    const runs = records.length + failures.length;
    throw new CliError(
      [
        ...(bad.length > 0 ? [`${bad.length} of ${runs} runs found violations: ${seeds}`] : []),
        ...(failures.length > 0 ? [`${failures.length} of ${runs} runs failed: ${failures.join(', ')}`] : []),
      ].join('; '),
      EXIT.runtime,
    );
  }
  return records;
}

const SWEEP_COLUMNS = [
  'CONFIG',
  'RUNS',
  'VIOLATING',
  'VIOLATIONS',
  'UNCONVERGED',
  'OPS',
  'ACKED',
  'UNANSWERED',
  'FAULTS',
  'FAILED',
  'WALL_S',
] as const;

function sweepLine(row: SweepRow): string {
  const cells = [
    row.config,
    row.runs,
    row.violating,
    row.violations,
    row.unconverged,
    row.ops,
    row.acked,
    row.unknown,
    row.faults,
    row.failed,
    (row.wallMs / 1000).toFixed(1),
  ];
  const line = cells
    .map((cell, i) => (i === 0 ? String(cell).padEnd(18) : String(cell).padStart(SWEEP_COLUMNS[i]!.length)))
    .join('  ');
  return row.seeds.length > 0 ? `${line}  seeds ${row.seeds.join(',')}` : line;
}

/** The core functions the reports use (the module is loaded inside the action). */
type Core = Pick<typeof CoreModule, 'formatFault' | 'formatViolation'>;

/** The report of a single run: the schedule, the figures, the digest, and any violation. */
function report(core: Core, record: SimKvRecord, write: (line: string) => void): void {
  write(`kvmesh sim kv: ${record.config}, ${record.nodes} nodes, seed ${record.seed}, ${record.clients} clients`);
  write('fault schedule:');
  if (record.faults.length === 0) write('  none');
  for (const fault of record.faults) write(`  ${core.formatFault(fault)}`);
  write(
    `ops ${record.ops}: ${record.acked} acknowledged, ${record.refused} refused (precondition), ${record.unknown} unanswered or failed`,
  );
  write(
    `virtual run ${(record.runMs / 1000).toFixed(1)} s, ${record.converged ? 'replicas agreed' : 'replicas still differ'} ${(record.settleMs / 1000).toFixed(1)} s after the heal, wall ${(record.wallMs / 1000).toFixed(1)} s`,
  );
  if (record.violations.length === 0) write('violations: none');
  else violationLines(core, record, write);
  write(`digest ${record.digest}`);
}

/** A sweep's report of one violating run: seed, schedule, violations. */
function violationReport(core: Core, record: SimKvRecord, write: (line: string) => void): void {
  write(`${record.config} seed ${record.seed}: ${record.violations.length} violations`);
  write('  fault schedule:');
  for (const fault of record.faults) write(`    ${core.formatFault(fault)}`);
  violationLines(core, record, (line) => write(`  ${line}`));
}

function violationLines(core: Core, record: SimKvRecord, write: (line: string) => void): void {
  write(`violations (seed ${record.seed}):`);
  for (const violation of record.violations) for (const line of core.formatViolation(violation)) write(`  ${line}`);
}

interface SimKvFlags {
  readonly config: string[];
  readonly nodes?: number;
  readonly seed?: number;
  readonly seeds?: number[];
  readonly ops?: number;
  readonly clients?: number;
  readonly keys?: number;
  readonly counters?: number;
  readonly faults?: string;
  readonly storage?: string;
  readonly readyOnly?: boolean;
  readonly timeLimit?: number;
  readonly history?: string;
  readonly json?: boolean;
}

/** `kvmesh sim kv`: the whole KV cluster of a config on simulated nodes, under faults, with a history check. */
export function simKvCommand(): Command {
  return new Command('kv')
    .description(
      "Run a config's KV cluster on simulated nodes (virtual clock, in-memory network): clients put, get, delete and compare-and-set through random nodes while a seeded fault schedule crashes and restarts nodes, partitions them, spoils links and skews clocks; then the faults heal, the cluster settles, and the history is checked for lost acknowledged writes, diverging replicas, lost counter increments and deleted values read back. Exits 2 on a violation",
    )
    .option('-c, --config <file>', 'config file (repeat for several: one run per config and seed)', collect, [])
    .option('-n, --nodes <n>', "simulated nodes (default: the config's up.nodes, else 5)", integer('--nodes', 2))
    .option(
      '--seed <n>',
      'seed of every random draw; the same seed replays the same history (default 1)',
      integer('--seed', 0),
    )
    .option('--seeds <a-b|list>', 'seeds to run one after another, as a range (1-200) or a list (1,5,9)', seedList)
    .option('--ops <n>', 'client operations per run (an increment counts as one)', integer('--ops', 1), 400)
    .option('--clients <n>', 'concurrent clients', integer('--clients', 1), 4)
    .option('--keys <n>', 'plain keys the clients write and read', integer('--keys', 1), 6)
    .option('--counters <n>', 'counter keys, written only by If-Match increments', integer('--counters', 0), 2)
    .option(
      '--faults <list>',
      'fault kinds to draw from, comma-separated: crash, partition, isolate, asymmetric, loss, duplicate, reorder, skew; or all, none',
    )
    .option(
      '--storage <name>',
      `storage plugin of every node, kept across its restarts (default ${SIM_KV_DEFAULT_STORAGE})`,
    )
    .option(
      '--ready-only',
      'clients avoid a restarted node until its join answered, as a load balancer checking /v1/ready',
    )
    .option(
      '--time-limit <s>',
      'per config: start no further run of it after this many seconds (for sweeps)',
      integer('--time-limit', 1),
    )
    .option('--history <file>', "write every run's fault schedule and history there, one JSON object per line")
    .option('--json', 'print one JSON object per run (one per line) instead of a report')
    .action(async (flags: SimKvFlags) => {
      if (flags.config.length === 0)
        throw new CliError("required option '-c, --config <file>' not specified", EXIT.usage);
      if (flags.seed !== undefined && flags.seeds !== undefined) {
        throw new CliError('give --seed or --seeds, not both', EXIT.usage);
      }
      const { seed, seeds, faults, ...rest } = flags;
      let kinds: KvFaultKind[] | undefined;
      if (faults !== undefined) {
        const { parseFaultList } = await import('@kvmesh/core');
        try {
          kinds = parseFaultList(faults);
        } catch (err) {
          throw new CliError(`option '--faults <list>': ${(err as Error).message}`, EXIT.usage);
        }
      }
      await simKv({ ...rest, ...(kinds ? { faults: kinds } : {}), seeds: seeds ?? [seed ?? 1] }, (line) =>
        process.stdout.write(`${line}\n`),
      );
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function integer(flag: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`${flag} expects an integer >= ${min}`);
    }
    return n;
  };
}

function seedList(value: string): number[] {
  const range = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(value);
  if (range) {
    const [from, to] = [Number(range[1]), Number(range[2])];
    if (to < from || to - from >= 100_000) throw new InvalidArgumentError('--seeds expects a range a-b with a <= b');
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  }
  const items = value.split(',').map((s) => s.trim());
  if (items.some((s) => !/^\d+$/.test(s))) {
    throw new InvalidArgumentError('--seeds expects a range (1-200) or a comma-separated list of seeds (1,5,9)');
  }
  return items.map(Number);
}

/** A run that failed in the worker: its message, and its KvError code when it had one. */
class RunError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code?: string) {
    super(message);
    this.code = code;
  }
}

/** The worker thread that runs one config's seeds, one at a time; replaced after a run it had to be stopped in. */
class RunWorker {
  readonly #file: string;
  #worker: Worker | undefined;

  constructor(file: string) {
    this.#file = file;
  }

  /**
   * One run in the worker.
   * @throws RunError when the run failed there, or took longer than SIM_KV_RUN_LIMIT_MS (the worker is then stopped).
   */
  run(request: SimKvRunRequest): Promise<KvSimResult> {
    const workerData: SimKvWorkerData = { file: this.#file };
    const worker = (this.#worker ??= new Worker(new URL('./sim-kv-worker.js', import.meta.url), { workerData }));
    return new Promise<KvSimResult>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      const onMessage = (answer: SimKvRunAnswer): void => {
        done();
        if ('result' in answer) resolve(answer.result);
        else reject(new RunError(answer.error.message, answer.error.code));
      };
      const onError = (err: Error): void => {
        done();
        this.#worker = undefined;
        void worker.terminate();
        reject(new RunError(`the run's worker failed: ${err.message}`));
      };
      const onExit = (code: number): void => {
        done();
        this.#worker = undefined;
        reject(new RunError(`the run's worker exited (${code})`));
      };
      const timer = setTimeout(() => {
        done();
        this.#worker = undefined;
        void worker.terminate();
        reject(new RunError(`the run took longer than ${SIM_KV_RUN_LIMIT_MS / 1000} real seconds; given up`));
      }, SIM_KV_RUN_LIMIT_MS + RUN_LIMIT_SLACK_MS);
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.postMessage(request);
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    await worker?.terminate();
  }
}

/** Beyond SIM_KV_RUN_LIMIT_MS (which the run checks itself between steps): loading the worker, and a last step. */
const RUN_LIMIT_SLACK_MS = 10_000;
