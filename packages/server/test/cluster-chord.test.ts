import test from 'ava';
import {
  ProcessCluster,
  clusterOf,
  freePort,
  getValue,
  inParallel,
  loopbackHosts,
  putValue,
  readTopology,
  request,
  storedKeys,
  tempDir,
  writeConfig,
} from './helpers/cluster.js';
import type { ClusterJson } from './helpers/cluster.js';
import { waitFor } from './helpers/http.js';

/** The dyschord topology: a Chord ring, md5 metric, two backups, over http without a membership. */
const TOPOLOGY = 'chord-local.json';
const HOSTS = loopbackHosts(130, 4);
const IDS = HOSTS.map((_, i) => `n${i + 1}`);
const VICTIM = 'n3';
const KEYS = 1000;
/** The file's heartbeat made faster so the test takes seconds; every other option as a user gets it. */
const FAST_CHORD = { heartbeatMs: 200, requestTimeoutMs: 1000 };
/** Four processes starting on two busy cores. */
const START_TIMEOUT_MS = 30_000;
/** Stabilization needs a few heartbeats; a loaded machine gets many times that. */
const STABILIZE_TIMEOUT_MS = 30_000;

interface RingView {
  readonly id: string;
  readonly successors: readonly string[];
  readonly predecessors: readonly string[];
}

async function ringOf(cluster: ProcessCluster, ids: readonly string[]): Promise<RingView[]> {
  const views = await Promise.all(ids.map((id) => clusterOf(cluster.url(id))));
  return views.map((v: ClusterJson) => ({
    id: v.self.id,
    successors: (v.placement['successors'] as { id: string }[]).map((n) => n.id),
    predecessors: (v.placement['predecessors'] as { id: string }[]).map((n) => n.id),
  }));
}

/** Every node's successor names it as its predecessor, and the successors go round all of `ids`. */
function ringClosed(views: readonly RingView[], ids: readonly string[]): boolean {
  const byId = new Map(views.map((v) => [v.id, v]));
  return views.every((v) => {
    const next = byId.get(v.successors[0] ?? '');
    return (
      next !== undefined &&
      next.predecessors[0] === v.id &&
      v.successors.length === ids.length - 1 &&
      v.successors.every((s) => ids.includes(s))
    );
  });
}

test('a 4-node chord ring keeps all 1,000 keys when a node is SIGKILLed', async (t) => {
  const config = await readTopology(TOPOLOGY);
  t.is(config['placement'].name, 'chord');
  t.is(config['membership'], undefined, 'the ring finds its nodes itself');
  const options = config['placement'].options as Record<string, unknown>;
  t.is(options['backups'], 2);
  config['placement'].options = { ...options, ...FAST_CHORD };
  const dir = await tempDir(t, 'chord');
  const file = await writeConfig(dir, TOPOLOGY, config);
  const port = await freePort(HOSTS);
  const cluster = new ProcessCluster({
    configFile: file,
    ids: IDS,
    hosts: HOSTS,
    port,
    dir,
    join: [`${HOSTS[0]}:${port}`],
  });
  t.log(`4 nodes on ${HOSTS[0]}..${HOSTS.at(-1)}:${port}`);
  const started = Date.now();
  // The first node starts the ring; the others join through it.
  await cluster.start(t, IDS[0]!);
  await Promise.all(IDS.slice(1).map((id) => cluster.start(t, id)));
  await waitFor(
    'every node to be ready',
    async () =>
      (await Promise.all(IDS.map((id) => request(cluster.url(id), '/v1/ready')))).every((r) => r.status === 200),
    START_TIMEOUT_MS,
    100,
  );
  await waitFor(
    'the ring of 4 to close',
    async () => ringClosed(await ringOf(cluster, IDS), IDS),
    STABILIZE_TIMEOUT_MS,
    100,
  );
  t.log(`ring of 4 closed ${Date.now() - started} ms after the first start`);

  const keys = Array.from({ length: KEYS }, (_, i) => `key-${i}`);
  await inParallel(keys, 16, async (key) => {
    const through = cluster.url(IDS[keys.indexOf(key) % IDS.length]!);
    const res = await putValue(through, key, `value of ${key}`);
    if (res.status !== 201 && res.status !== 200) throw new Error(`PUT ${key}: ${res.status} ${res.body.toString()}`);
  });
  const held = await Promise.all(IDS.map((id) => storedKeys(cluster.url(id))));
  t.log(`stored per node after ${KEYS} writes: ${held.join(', ')}`);
  // Three replicas of every key on four nodes.
  t.true(held.reduce((a, b) => a + b, 0) >= 2 * KEYS, 'every write reached at least a write quorum of replicas');

  const killedAt = Date.now();
  t.is(await cluster.stop(VICTIM, 'SIGKILL'), 'SIGKILL');
  const survivors = IDS.filter((id) => id !== VICTIM);
  await waitFor(
    `the ring to close around ${VICTIM}`,
    async () => ringClosed(await ringOf(cluster, survivors), survivors),
    STABILIZE_TIMEOUT_MS,
    100,
  );
  t.log(`ring of 3 closed ${Date.now() - killedAt} ms after SIGKILL`);

  const missing: string[] = [];
  await inParallel(keys, 16, async (key) => {
    const through = cluster.url(survivors[keys.indexOf(key) % survivors.length]!);
    const read = await getValue(through, key);
    if (read.status !== 200 || read.value !== `value of ${key}`) missing.push(`${key}: ${read.status}`);
  });
  t.deepEqual(missing.slice(0, 10), [], `${missing.length} of ${KEYS} keys not read back`);
  t.log(`all ${KEYS} keys read back through the survivors ${Date.now() - killedAt} ms after SIGKILL`);

  // The backup count comes back: each survivor ends up with every key (3 replicas on 3 nodes).
  await waitFor(
    'every survivor to hold every key',
    async () => (await Promise.all(survivors.map((id) => storedKeys(cluster.url(id))))).every((n) => n === KEYS),
    STABILIZE_TIMEOUT_MS,
    200,
  );
  t.log(`backups restored ${Date.now() - killedAt} ms after SIGKILL`);
});
