// Real processes under faults: a 5-node ring (configs/ring-local.json) under a
// steady write load, one node SIGKILLed at a time and restarted on its data
// directory, for a few minutes; then every acknowledged write is read back
// through every node. Exits 0 only when no acknowledged write was lost.
//
//   npm run fault:ring -- --minutes 3 --seed 42
//
// Not part of `npm test`: it runs for minutes and its figures depend on the
// machine. Loopback only, on 127.0.0.200 upward (apart from the tests' ranges).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Teardowns } from '../test/helpers/cli.js';
import {
  ProcessCluster,
  WriteHistory,
  allAlive,
  clusterOf,
  freePort,
  getValue,
  loopbackHosts,
  readLoad,
  readTopology,
  request,
  seededRandom,
  writeConfig,
  writeLoad,
} from '../test/helpers/cluster.js';
import type { Target } from '../test/helpers/cluster.js';
import { waitFor } from '../test/helpers/http.js';

const TOPOLOGY = 'ring-local.json';
const NODES = 5;
/** The first of this script's loopback hosts; the range 127.0.0.200-220 is kept for it. */
const FIRST_HOST = 200;
/** Five processes starting at once, or one restarting, on a busy two-core machine. */
const START_TIMEOUT_MS = 60_000;
/** A death not seen by every survivor in this long is reported as undetected (the run goes on). */
const DETECT_TIMEOUT_MS = 60_000;
/** A restarted node must be listed alive everywhere within this long, or the run stops as failed. */
const REJOIN_TIMEOUT_MS = 90_000;
/** Share of kills whose node is restarted at once, before the survivors could declare it dead. */
const FAST_RESTART_SHARE = 0.25;
/** A request failing this long after a node was back and every node listed it alive is counted as outside the kills. */
const SETTLE_GRACE_MS = 2_000;
/** Reads of the final check that answer neither a value nor 404 are tried again this many times. */
const VERIFY_ATTEMPTS = 5;

interface Args {
  readonly minutes: number;
  readonly seed: number;
  readonly writeLanes: number;
  readonly readLanes: number;
  readonly keep: boolean;
}

function parse(): Args {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '3' },
      seed: { type: 'string' },
      'write-lanes': { type: 'string', default: '4' },
      'read-lanes': { type: 'string', default: '2' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'fault-run [--minutes 3] [--seed N] [--write-lanes 4] [--read-lanes 2] [--keep]\n' +
        '  --keep  leave the data directories and node logs in place\n',
    );
    process.exit(0);
  }
  const number = (name: string, raw: string | undefined, fallback: number): number => {
    const value = raw === undefined ? fallback : Number(raw);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number (found ${raw})`);
    return value;
  };
  return {
    minutes: number('minutes', values.minutes, 3),
    seed: Math.floor(number('seed', values.seed, (Date.now() % 1_000_000) + 1)),
    writeLanes: Math.floor(number('write-lanes', values['write-lanes'], 4)),
    readLanes: Math.floor(number('read-lanes', values['read-lanes'], 2)),
    keep: values.keep,
  };
}

/** What must run when the script ends, in reverse order of registration; runs once (also on SIGINT/SIGTERM). */
class ExitTeardowns implements Teardowns {
  readonly #fns: (() => Promise<void> | void)[] = [];
  #ran: Promise<void> | undefined;

  teardown(fn: () => Promise<void> | void): void {
    this.#fns.push(fn);
  }

  run(): Promise<void> {
    this.#ran ??= (async () => {
      for (const fn of this.#fns.reverse()) {
        try {
          await fn();
        } catch (err) {
          log(`teardown failed: ${(err as Error).message}`);
        }
      }
    })();
    return this.#ran;
  }
}

/** The acknowledgements' times, for the seconds in which no write succeeded. */
class TimedHistory extends WriteHistory {
  readonly ackTimes: number[] = [];

  override ack(key: string, value: string): void {
    super.ack(key, value);
    this.ackTimes.push(Date.now());
  }
}

interface Kill {
  readonly node: string;
  /** ms since the load began. */
  readonly atMs: number;
  /** Restarted before the survivors were waited on. */
  readonly fast: boolean;
  /** ms from SIGKILL until every survivor listed the node dead; undefined when not waited on or not seen. */
  detectedMs?: number;
  /** When the SIGKILL was sent (ms since the epoch). */
  killedAt?: number;
  /** When every node listed every node alive again (ms since the epoch). */
  rejoinedAt?: number;
  /** ms the node stayed down (SIGKILL to the restarted process serving). */
  downMs?: number;
  /** ms from the restart until the new process served (logged `node serving`). */
  servingMs?: number;
  /** ms from the restart until the node answered ready. */
  readyMs?: number;
  /** ms from the restart until every node listed every node alive. */
  rejoinedMs?: number;
}

const started = Date.now();
function log(line: string): void {
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
}

async function main(): Promise<number> {
  const args = parse();
  const scope = new ExitTeardowns();
  const interrupted = (signal: NodeJS.Signals): void => {
    log(`${signal}: stopping every node`);
    void scope.run().then(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    return await run(args, scope);
  } finally {
    await scope.run();
  }
}

async function run(args: Args, scope: ExitTeardowns): Promise<number> {
  const config = await readTopology(TOPOLOGY);
  const hosts = loopbackHosts(FIRST_HOST, NODES);
  const ids = hosts.map((_, i) => `n${i + 1}`);
  const dir = await mkdtemp(join(tmpdir(), 'kvmesh-fault-run-'));
  if (args.keep) log(`data directories kept in ${dir}`);
  else scope.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = await writeConfig(dir, TOPOLOGY, config);
  const port = await freePort(hosts);
  const cluster = new ProcessCluster({
    configFile: file,
    ids,
    hosts,
    port,
    dir,
    join: [0, 1].map((i) => `${hosts[i]}:${port}`),
  });
  // Two generators from the seed: the schedule (victims, pauses, fast restarts) replays from it whatever the
  // load does; the load's picks of keys and nodes depend on how many requests the machine completes.
  const schedule = seededRandom(args.seed);
  const random = seededRandom(args.seed ^ 0x5bd1e995);
  log(`seed ${args.seed}, ${args.minutes} min, ${NODES} nodes on ${hosts[0]}..${hosts.at(-1)}:${port} (${TOPOLOGY})`);

  await Promise.all(ids.map((id) => cluster.start(scope, id)));
  await waitFor('every node ready and listing 5 alive members', () => allAlive(cluster, ids), START_TIMEOUT_MS, 200);
  log('cluster ready');

  const history = new TimedHistory();
  const live = new Set(ids);
  const targets = (): Target[] => [...live].map((id) => ({ id, url: cluster.url(id) }));
  const writers = writeLoad({
    history,
    targets,
    random,
    prefix: 'fault',
    lanes: args.writeLanes,
    overwriteShare: 0.3,
  });
  const loadStarted = Date.now();
  await waitFor('a first acknowledged write', () => writers.stats.ok > 0, START_TIMEOUT_MS);
  const readers = readLoad({ history, targets, random, lanes: args.readLanes });
  const deadline = loadStarted + args.minutes * 60_000;
  const kills: Kill[] = [];
  let failed: string | undefined;

  while (Date.now() < deadline && failed === undefined) {
    // Quiet time with every node up before the next kill.
    await pause(2_000 + schedule() * 3_000);
    const victim = ids[Math.floor(schedule() * ids.length)]!;
    const kill: Kill = { node: victim, atMs: Date.now() - loadStarted, fast: schedule() < FAST_RESTART_SHARE };
    kills.push(kill);
    // The victim leaves the clients' list at once, as a load balancer's health check would take it out.
    live.delete(victim);
    const killedAt = Date.now();
    kill.killedAt = killedAt;
    await cluster.stop(victim, 'SIGKILL');
    if (!kill.fast) {
      const survivors = [...live];
      try {
        await waitFor(
          `every survivor to list ${victim} dead`,
          async () => {
            const views = await Promise.all(survivors.map((id) => clusterOf(cluster.url(id))));
            return views.every((v) => v.members.find((m) => m.id === victim)?.state === 'dead');
          },
          DETECT_TIMEOUT_MS,
          100,
        );
        kill.detectedMs = Date.now() - killedAt;
      } catch {
        log(`${victim}: not seen dead by every survivor within ${DETECT_TIMEOUT_MS} ms`);
      }
      await pause(schedule() * 4_000);
    }
    const restartedAt = Date.now();
    try {
      await cluster.start(scope, victim);
      kill.downMs = Date.now() - killedAt;
      kill.servingMs = Date.now() - restartedAt;
      await waitFor(
        `${victim} ready`,
        async () => (await request(cluster.url(victim), '/v1/ready')).status === 200,
        START_TIMEOUT_MS,
        100,
      );
      kill.readyMs = Date.now() - restartedAt;
      live.add(victim);
      await waitFor('every node to list every node alive', () => allAlive(cluster, ids), REJOIN_TIMEOUT_MS, 200);
      kill.rejoinedAt = Date.now();
      kill.rejoinedMs = kill.rejoinedAt - restartedAt;
    } catch (err) {
      failed = `${victim} did not come back: ${(err as Error).message}`;
    }
    log(
      `kill ${kills.length}: ${victim}${kill.fast ? ' (restarted at once)' : ''}, detected ${ms(kill.detectedMs)}, ` +
        `down ${ms(kill.downMs)}, ready ${ms(kill.readyMs)}, all alive ${ms(kill.rejoinedMs)}; ` +
        `${writers.stats.ok} writes acknowledged`,
    );
  }
  await writers.stop();
  await readers.stop();
  const loadStopped = Date.now();
  log(`load stopped after ${((loadStopped - loadStarted) / 1000).toFixed(1)} s`);
  if (failed !== undefined) log(failed);

  // Every key through every node: the last acknowledged value or a later one, never an older one, never nothing.
  const final = await verify(
    history,
    ids.filter((id) => cluster.isRunning(id)).map((id) => ({ id, url: cluster.url(id) })),
  );
  log(`final reads: ${final.reads} in ${(final.ms / 1000).toFixed(1)} s`);

  const staleReads = readers.stats.failures.filter((f) => /stale|unknown value|, but /.test(f.what));
  const acked = history.acknowledged.length;
  const lostKeys = new Set(final.lost.map((p) => p.key));
  const seconds = Math.ceil((loadStopped - loadStarted) / 1000);
  const perSecond = new Array<number>(seconds).fill(0);
  for (const at of history.ackTimes) perSecond[Math.min(seconds - 1, Math.floor((at - loadStarted) / 1000))]!++;
  const unavailable = perSecond.filter((n) => n === 0).length;
  // Failed requests outside every kill's window (SIGKILL until every node lists every node alive, plus a grace).
  const windows = kills.map((k) => ({ from: k.killedAt!, to: (k.rejoinedAt ?? loadStopped) + SETTLE_GRACE_MS }));
  const outside = (failures: readonly { atMs: number }[]): number =>
    failures.filter((f) => !windows.some((w) => f.atMs >= w.from && f.atMs <= w.to)).length;
  const readFailures = readers.stats.failures.filter((f) => !staleReads.includes(f));
  const reasons = new Map<string, number>();
  for (const f of [...writers.stats.failures, ...readFailures]) {
    const reason = f.what
      .replace(/^(PUT|GET) \S+: /, '$1 ')
      .replace(/\d+(\.\d+)*/g, 'N')
      .slice(0, 80);
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  const detections = kills.flatMap((k) => (k.detectedMs === undefined ? [] : [k.detectedMs]));
  const undetected = kills.filter((k) => !k.fast && k.detectedMs === undefined).length;

  const summary = {
    topology: TOPOLOGY,
    seed: args.seed,
    minutes: args.minutes,
    loadSeconds: Number(((loadStopped - loadStarted) / 1000).toFixed(1)),
    writesSent: writers.stats.attempts,
    writesAcknowledged: writers.stats.ok,
    writesFailed: writers.stats.failures.length,
    keysAcknowledged: acked,
    keysWritten: [...history.keys()].length,
    lostWrites: lostKeys.size,
    lostReads: final.lost.length,
    unverified: final.unreadable.length,
    readsDuringRun: readers.stats.attempts,
    staleReads: staleReads.length,
    readsFailed: readFailures.length,
    writesFailedOutsideKills: outside(writers.stats.failures),
    readsFailedOutsideKills: outside(readFailures),
    failureReasons: Object.fromEntries([...reasons].sort((a, b) => b[1] - a[1]).slice(0, 5)),
    unavailableSeconds: unavailable,
    kills: kills.length,
    fastRestarts: kills.filter((k) => k.fast).length,
    undetected,
    detectionMs: stats(detections),
    servingMs: stats(kills.flatMap((k) => (k.servingMs === undefined ? [] : [k.servingMs]))),
    readyMs: stats(kills.flatMap((k) => (k.readyMs === undefined ? [] : [k.readyMs]))),
    rejoinMs: stats(kills.flatMap((k) => (k.rejoinedMs === undefined ? [] : [k.rejoinedMs]))),
    failed: failed ?? null,
  };

  const rows: [string, string][] = [
    ['seed', String(args.seed)],
    ['load', `${summary.loadSeconds} s, ${args.writeLanes} write lanes, ${args.readLanes} read lanes`],
    [
      'writes sent / acknowledged / failed',
      `${summary.writesSent} / ${summary.writesAcknowledged} / ${summary.writesFailed}`,
    ],
    ['keys acknowledged / written', `${acked} / ${summary.keysWritten}`],
    ['lost writes (keys)', `${summary.lostWrites} (${summary.lostReads} of ${final.reads} final reads)`],
    ['unverified final reads', String(summary.unverified)],
    [
      'reads during the run / stale / failed',
      `${summary.readsDuringRun} / ${summary.staleReads} / ${summary.readsFailed}`,
    ],
    [
      'failed writes / reads outside the kills',
      `${summary.writesFailedOutsideKills} / ${summary.readsFailedOutsideKills}`,
    ],
    ['unavailable seconds', `${unavailable} of ${seconds}`],
    ['kills (restarted at once)', `${kills.length} (${summary.fastRestarts})`],
    [
      'detection ms min / median / max',
      triple(summary.detectionMs) + (undetected > 0 ? `, ${undetected} undetected` : ''),
    ],
    ['restart to serving ms', triple(summary.servingMs)],
    ['restart to ready ms', triple(summary.readyMs)],
    ['restart to all alive ms', triple(summary.rejoinMs)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`);
  for (const p of [...final.lost, ...final.unreadable].slice(0, 20))
    process.stdout.write(`  ${p.key} via ${p.node}: ${p.what}\n`);
  for (const [reason, count] of Object.entries(summary.failureReasons)) {
    process.stdout.write(`  failed ${count}x: ${reason}\n`);
  }
  for (const f of staleReads.slice(0, 10)) {
    process.stdout.write(`  stale during the run, ${f.atMs - loadStarted} ms in, via ${f.node}: ${f.what}\n`);
  }
  process.stdout.write(`${JSON.stringify({ faultRun: summary })}\n`);
  return lostKeys.size === 0 && final.unreadable.length === 0 && failed === undefined ? 0 : 1;
}

interface Problem {
  readonly key: string;
  readonly node: string;
  readonly what: string;
}

/**
 * Reads every key of the history through every target. A read that answers an
 * older value, nothing, or a value nobody wrote is a loss; one that fails
 * (no answer, 5xx) is tried again and, if it keeps failing, left unverified.
 */
async function verify(
  history: WriteHistory,
  targets: readonly Target[],
): Promise<{ lost: Problem[]; unreadable: Problem[]; reads: number; ms: number }> {
  const began = Date.now();
  const lost: Problem[] = [];
  const unreadable: Problem[] = [];
  const work = [...history.keys()].flatMap((key) => targets.map((target) => [key, target] as const));
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < work.length) {
      const [key, target] = work[next++]!;
      let last = '';
      for (let attempt = 1; attempt <= VERIFY_ATTEMPTS; attempt++) {
        try {
          const read = await getValue(target.url, key);
          const problem = history.judge(key, history.floor(key), read);
          if (problem === undefined) {
            last = '';
            break;
          }
          if (read.status === 200 || read.status === 404) {
            lost.push({ key, node: target.id, what: problem });
            last = '';
            break;
          }
          last = problem;
        } catch (err) {
          last = (err as Error).message;
        }
        await pause(200 * attempt);
      }
      if (last !== '') unreadable.push({ key, node: target.id, what: last });
    }
  };
  await Promise.all(Array.from({ length: 8 }, lane));
  return { lost, unreadable, reads: work.length, ms: Date.now() - began };
}

interface Figures {
  readonly count: number;
  readonly min: number | null;
  readonly median: number | null;
  readonly max: number | null;
}

function stats(values: readonly number[]): Figures {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return { count: 0, min: null, median: null, max: null };
  return { count: sorted.length, min: sorted[0]!, median: sorted[Math.floor(sorted.length / 2)]!, max: sorted.at(-1)! };
}

function triple(f: Figures): string {
  return f.count === 0 ? '-' : `${f.min} / ${f.median} / ${f.max} (${f.count})`;
}

function ms(value: number | undefined): string {
  return value === undefined ? '-' : `${value} ms`;
}

function pause(durationMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, durationMs));
}

process.exitCode = await main().catch((err: unknown) => {
  log(`failed: ${(err as Error).stack ?? String(err)}`);
  return 1;
});
