import test from 'ava';
import {
  ProcessCluster,
  WriteHistory,
  allAlive,
  clusterOf,
  expectedCounts,
  freePort,
  loopbackHosts,
  placementOf,
  readLoad,
  readTopology,
  request,
  seededRandom,
  storedKeys,
  tempDir,
  verifyAll,
  writeConfig,
  writeLoad,
} from './helpers/cluster.js';
import type { LoadStats, Target } from './helpers/cluster.js';
import { waitFor } from './helpers/http.js';

/** The dht-node topology: a consistent-hash ring, N = 3, R = W = 2, SWIM over http. */
const TOPOLOGY = 'ring-local.json';
const HOSTS = loopbackHosts(70, 5);
const IDS = HOSTS.map((_, i) => `n${i + 1}`);
const VICTIM = 'n4';
/**
 * The file's timings made faster so the test takes seconds: SWIM's period and probe timeout (as
 * swim-cluster.test.ts does), and anti-entropy every 2 s instead of 30 s. Every other option as a
 * user gets it.
 */
const FAST_SWIM = { probeIntervalMs: 300, probeTimeoutMs: 150, pushPullIntervalMs: 9_000 };
const FAST_KV = { antiEntropyIntervalMs: 2_000 };
/** Acknowledged writes in each phase: before the kill, after the death is seen, after the restart. */
const PHASE_WRITES = 300;
/** Five processes starting at once on two busy cores. */
const START_TIMEOUT_MS = 30_000;
/** Detection takes about 3.6 s with these timings; a loaded machine gets twice that plus slack. */
const DETECT_TIMEOUT_MS = 15_000;
/** Hints replay every second and anti-entropy runs every 2 s: convergence takes a few of each, with slack. */
const CONVERGE_TIMEOUT_MS = 30_000;
/** After the death is seen everywhere, or the node is back, requests in flight may still fail for a moment. */
const SETTLE_GRACE_MS = 2_000;

test('a SIGKILLed ring node: writes go on, and once it is back every acknowledged write reads back everywhere', async (t) => {
  const config = await readTopology(TOPOLOGY);
  t.is(config['transport'].name, 'http');
  t.is(config['membership'].name, 'swim');
  const options = config['placement'].options as Record<string, unknown>;
  t.is(options['mode'], 'ring');
  t.is(options['replicationFactor'], 3);
  t.is(options['readQuorum'], 2);
  t.is(options['writeQuorum'], 2);
  config['membership'].options = { ...config['membership'].options, ...FAST_SWIM };
  config['kv'] = { ...config['kv'], ...FAST_KV };

  const dir = await tempDir(t, 'ring');
  const file = await writeConfig(dir, TOPOLOGY, config);
  const port = await freePort(HOSTS);
  const cluster = new ProcessCluster({
    configFile: file,
    ids: IDS,
    hosts: HOSTS,
    port,
    dir,
    join: [0, 1].map((i) => `${HOSTS[i]}:${port}`),
  });
  t.log(`5 nodes on ${HOSTS[0]}..${HOSTS.at(-1)}:${port}`);
  let started = Date.now();
  await Promise.all(IDS.map((id) => cluster.start(t, id)));
  await waitFor('every node to be ready and list 5 alive members', () => allAlive(cluster, IDS), START_TIMEOUT_MS, 100);
  t.log(`5 nodes ready and alive everywhere in ${Date.now() - started} ms`);
  const placement = await placementOf(config, file, IDS);

  const seed = Date.now() % 1_000_000;
  const random = seededRandom(seed);
  t.log(`seed ${seed}`);
  const history = new WriteHistory();
  const live = new Set(IDS);
  const targets = (): Target[] => [...live].map((id) => ({ id, url: cluster.url(id) }));
  const writers = writeLoad({ history, targets, random, prefix: 'ring', lanes: 4, overwriteShare: 0.3 });
  const acked = (): number => writers.stats.ok;
  await waitFor(`${PHASE_WRITES} acknowledged writes`, () => acked() >= PHASE_WRITES, START_TIMEOUT_MS);
  const readers = readLoad({ history, targets, random, lanes: 2 });

  // The kill: the victim leaves the clients' list at once, as a load balancer's health check would.
  const killedAt = Date.now();
  live.delete(VICTIM);
  t.is(await cluster.stop(VICTIM, 'SIGKILL'), 'SIGKILL');
  await waitFor(
    `every survivor to see ${VICTIM} dead`,
    async () => {
      const views = await Promise.all([...live].map((id) => clusterOf(cluster.url(id))));
      return views.every((v) => v.members.find((m) => m.id === VICTIM)?.state === 'dead');
    },
    DETECT_TIMEOUT_MS,
    100,
  );
  const detectedAt = Date.now();
  t.log(`${VICTIM} seen dead everywhere ${detectedAt - killedAt} ms after SIGKILL`);
  const ackedAtDetection = acked();
  await waitFor(
    `${PHASE_WRITES} acknowledged writes with ${VICTIM} dead`,
    () => acked() - ackedAtDetection >= PHASE_WRITES,
    START_TIMEOUT_MS,
  );

  // The restart, on the same data directory; clients use it again once it reports ready.
  const restartedAt = Date.now();
  await cluster.start(t, VICTIM);
  await waitFor(
    `${VICTIM} to be ready again`,
    async () => (await request(cluster.url(VICTIM), '/v1/ready')).status === 200,
    START_TIMEOUT_MS,
    100,
  );
  const readyAt = Date.now();
  t.log(`${VICTIM} ready ${readyAt - restartedAt} ms after its restart`);
  live.add(VICTIM);
  const ackedAtRestart = acked();
  await waitFor(
    `${PHASE_WRITES} acknowledged writes after the restart`,
    () => acked() - ackedAtRestart >= PHASE_WRITES,
    START_TIMEOUT_MS,
  );
  await writers.stop();
  await readers.stop();
  const stoppedAt = Date.now();

  const windows = [
    { from: killedAt, to: detectedAt + SETTLE_GRACE_MS, what: 'detection' },
    { from: restartedAt, to: readyAt + SETTLE_GRACE_MS, what: 'restart' },
  ];
  const outside = (stats: LoadStats): string[] =>
    stats.failures
      .filter((f) => !windows.some((w) => f.atMs >= w.from && f.atMs <= w.to))
      .map((f) => `${f.atMs - killedAt} ms after the kill, via ${f.node}: ${f.what}`);
  for (const [name, stats] of [
    ['writes', writers.stats],
    ['reads', readers.stats],
  ] as const) {
    const byWindow = windows.map(
      (w) => `${stats.failures.filter((f) => f.atMs >= w.from && f.atMs <= w.to).length} in ${w.what}`,
    );
    t.log(`${name}: ${stats.attempts} sent, ${stats.ok} ok, ${stats.failures.length} failed (${byWindow.join(', ')})`);
    for (const f of stats.failures.slice(0, 3))
      t.log(`  ${f.atMs - killedAt} ms after the kill, via ${f.node}: ${f.what}`);
  }
  t.log(`load ran ${stoppedAt - killedAt} ms from the kill; ${history.acknowledged.length} keys acknowledged`);
  t.deepEqual(
    outside(writers.stats).slice(0, 10),
    [],
    'writes fail only while the death is detected or the node returns',
  );
  t.deepEqual(
    outside(readers.stats).slice(0, 10),
    [],
    'reads fail only while the death is detected or the node returns',
  );
  t.true(writers.stats.ok >= 0.9 * writers.stats.attempts, 'most writes are acknowledged');
  t.true(
    readers.stats.failures.every((f) => !/stale|unknown value/.test(f.what)),
    'no read answered a stale value',
  );

  // Catch-up: every node holds exactly the keys the ring gives it (hinted writes replayed, the rest repaired).
  const known = new Set(history.acknowledged);
  const uncertain = [...history.keys()].filter((k) => !known.has(k));
  const expected = await expectedCounts(placement, known);
  const spare = await expectedCounts(placement, uncertain);
  let counts = new Map<string, number>();
  started = Date.now();
  try {
    await waitFor(
      'every node to hold the keys the ring gives it',
      async () => {
        counts = new Map(await Promise.all(IDS.map(async (id) => [id, await storedKeys(cluster.url(id))] as const)));
        // A key whose every write failed may exist on its replicas or not.
        return IDS.every((id) => {
          const have = counts.get(id)!;
          const want = expected.get(id) ?? 0;
          return have >= want && have <= want + (spare.get(id) ?? 0);
        });
      },
      CONVERGE_TIMEOUT_MS,
      250,
    );
  } finally {
    t.log(`stored keys per node: ${JSON.stringify(Object.fromEntries(counts))}`);
    t.log(`the ring says: ${JSON.stringify(Object.fromEntries(IDS.map((id) => [id, expected.get(id) ?? 0])))}`);
    for (const id of IDS) {
      const movement = (await clusterOf(cluster.url(id)))['movement'] as Record<string, unknown> | undefined;
      if (movement !== undefined) {
        t.log(`${id} movement: keys ${JSON.stringify(movement['keys'])}, hints ${JSON.stringify(movement['hints'])}`);
      }
    }
  }
  t.log(`converged ${Date.now() - started} ms after the load stopped (${uncertain.length} keys never acknowledged)`);

  started = Date.now();
  const problems = await verifyAll(history, targets(), 8);
  t.log(`${known.size + uncertain.length} keys read from 5 nodes in ${Date.now() - started} ms`);
  t.deepEqual(problems.slice(0, 20), [], 'every acknowledged write reads back from every node with its last value');
});
