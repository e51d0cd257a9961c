import test from 'ava';
import {
  ProcessCluster,
  allAlive,
  clusterOf,
  freePort,
  inParallel,
  loopbackHosts,
  readTopology,
  request,
  tempDir,
  writeConfig,
} from './helpers/cluster.js';
import { waitFor } from './helpers/http.js';

/** configs/dht-node.json as a user starts it, five nodes on loopback, SWIM made faster so the test takes seconds. */
const TOPOLOGY = 'dht-node.json';
const HOSTS = loopbackHosts(150, 5);
const IDS = HOSTS.map((_, i) => `n${i + 1}`);
const VICTIM = 'n3';
const FAST_SWIM = { probeIntervalMs: 300, probeTimeoutMs: 150, pushPullIntervalMs: 9_000 };
const KEYS = 100;
/** Five processes starting at once on two busy cores. */
const START_TIMEOUT_MS = 30_000;
/** Detection takes about 3.6 s with these timings; a loaded machine gets several times that. */
const DETECT_TIMEOUT_MS = 20_000;

test('dht-node: the seed curl lines work, and with one of five nodes killed quorum reads and writes go on', async (t) => {
  const config = await readTopology(TOPOLOGY);
  t.deepEqual(config['facades'], [{ name: 'dht-node' }], 'the dht-node facade is mounted on the node port');
  t.is(config['membership'].name, 'swim');
  const placement = config['placement'].options as Record<string, unknown>;
  t.like(placement, { replicationFactor: 3, readQuorum: 2, writeQuorum: 2 });
  config['membership'].options = { ...config['membership'].options, ...FAST_SWIM };

  const dir = await tempDir(t, 'dht-node');
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
  let started = Date.now();
  await Promise.all(IDS.map((id) => cluster.start(t, id)));
  await waitFor('every node to be ready and list 5 alive members', () => allAlive(cluster, IDS), START_TIMEOUT_MS, 100);
  t.log(`5 nodes on ${HOSTS[0]}..${HOSTS.at(-1)}:${port} ready and alive everywhere in ${Date.now() - started} ms`);

  // The seed's three lines, one node each: POST http://localhost:8000/d/key -d "value", GET on 8001, DELETE on 8002.
  const [a, b, c] = IDS.map((id) => cluster.url(id));
  const posted = await request(a!, '/d/key', {
    method: 'POST',
    body: 'value',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  t.is(posted.status, 201);
  t.deepEqual(posted.json(), { key: 'key', status: 'created' });
  const read = await request(b!, '/d/key');
  t.is(read.status, 200);
  t.is(read.body.toString(), 'value');
  const deleted = await request(c!, '/d/key', { method: 'DELETE' });
  t.is(deleted.status, 200);
  t.deepEqual(deleted.json(), { key: 'key', status: 'deleted' });
  t.is((await request(b!, '/d/key')).status, 404);

  const keys = Array.from({ length: KEYS }, (_, i) => `k${i}`);
  await inParallel([...keys.entries()], 8, async ([i, key]) => {
    const answer = await request(cluster.url(IDS[i % IDS.length]!), `/d/${key}`, { method: 'POST', body: `v-${key}` });
    if (answer.status !== 201) throw new Error(`POST /d/${key}: ${answer.status} ${answer.body.toString()}`);
  });

  await cluster.stop(VICTIM);
  const live = IDS.filter((id) => id !== VICTIM);
  started = Date.now();
  await waitFor(
    `every survivor to see ${VICTIM} dead`,
    async () =>
      (
        await Promise.all(
          live.map(async (id) => (await clusterOf(cluster.url(id))).members.find((m) => m.id === VICTIM)?.state),
        )
      ).every((state) => state === 'dead'),
    DETECT_TIMEOUT_MS,
    100,
  );
  t.log(`${VICTIM} seen dead by the 4 survivors ${Date.now() - started} ms after SIGKILL`);

  // Every key reads from every survivor (R = 2 of the 3 replicas, one of which may be the dead node).
  const reads: string[] = [];
  await inParallel(
    live.flatMap((id) => keys.map((key) => [id, key] as const)),
    8,
    async ([id, key]) => {
      const answer = await request(cluster.url(id), `/d/${key}`);
      if (answer.status !== 200 || answer.body.toString() !== `v-${key}`) {
        reads.push(`${id} GET /d/${key}: ${answer.status} ${answer.body.toString()}`);
      }
    },
  );
  t.deepEqual(reads, [], `all ${KEYS} keys read from each of the ${live.length} survivors`);

  // Writes and deletes go on: W = 2 of 3 even where the dead node is a replica.
  const failures: string[] = [];
  await inParallel([...keys.entries()], 8, async ([i, key]) => {
    const base = cluster.url(live[i % live.length]!);
    const answer =
      i % 2 === 0
        ? await request(base, `/d/${key}`, { method: 'POST', body: `w-${key}` })
        : await request(base, `/d/${key}`, { method: 'DELETE' });
    if (answer.status !== 200) failures.push(`${key}: ${answer.status} ${answer.body.toString()}`);
  });
  t.deepEqual(failures, [], 'every POST and DELETE after the kill is acknowledged');
  for (const [i, key] of keys.entries()) {
    if (i % 10 !== 0 && i % 10 !== 1) continue;
    const answer = await request(cluster.url(live[(i + 1) % live.length]!), `/d/${key}`);
    if (i % 2 === 0) t.is(answer.body.toString(), `w-${key}`, `${key} reads its new value`);
    else t.is(answer.status, 404, `${key} reads deleted`);
  }
});
