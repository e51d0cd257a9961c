import test from 'ava';
import type { ExecutionContext } from 'ava';
import {
  ProcessCluster,
  WriteHistory,
  clusterOf,
  expectedCounts,
  freePort,
  getValue,
  inParallel,
  loopbackHosts,
  placementOf,
  putValue,
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
import type { Target } from './helpers/cluster.js';
import { waitFor } from './helpers/http.js';

/** The administered-view topology: static membership over http, changed by PUT /v1/cluster/view. */
const TOPOLOGY = 'shards-local.json';
const KEYS = 1_000;
/** Concurrent requests of the initial load and of the final check. */
const CLIENTS = 8;
/** Writes after the view change was sent before the write load stops: some land before, some after it settles. */
const WRITES_DURING = 300;
/** Until every record sits where the new view puts it: 1,000 keys over two busy cores, with generous slack. */
const SETTLE_TIMEOUT_MS = 40_000;

interface Variant {
  /** First host of this variant's loopback range (three hosts). */
  readonly firstHost: number;
  /** Placement options replacing the file's, or undefined to run the file as it is. */
  readonly placement?: Record<string, unknown>;
}

/**
 * Two static nodes with 1,000 keys, a third started alone, then one view of
 * all three sent to the first: every key stays readable from every node
 * while the data moves, writes keep being acknowledged, and once it settles
 * each node holds exactly what the placement gives it.
 */
async function viewChange(t: ExecutionContext, variant: Variant): Promise<void> {
  const hosts = loopbackHosts(variant.firstHost, 3);
  const ids = ['n1', 'n2', 'n3'];
  const port = await freePort(hosts);
  const dir = await tempDir(t, 'view-change');
  const base = await readTopology(TOPOLOGY);
  t.is(base['membership'].name, 'static');
  t.is(base['transport'].name, 'http');
  if (variant.placement !== undefined) base['placement'].options = variant.placement;
  // n3 starts alone in its view with no seed: without a secret it would take no frames, so no view could reach it.
  base['cluster'] = { secrets: ['view-change-test-secret'] };
  const cluster = new ProcessCluster({ configFile: '', ids, hosts, port, dir });
  const withView = (members: readonly string[]): Record<string, unknown> => ({
    ...base,
    membership: { ...base['membership'], options: { ...base['membership'].options, view: members } },
  });
  const oldView = ['n1', 'n2'].map((id) => cluster.member(id));
  const newView = ids.map((id) => cluster.member(id));
  const twoFile = await writeConfig(dir, 'two.json', withView(oldView));
  const aloneFile = await writeConfig(dir, 'alone.json', withView([cluster.member('n3')]));
  const placement = await placementOf(withView(newView), twoFile, ids);
  t.log(`nodes on ${hosts[0]}..${hosts.at(-1)}:${port}, placement ${JSON.stringify(base['placement'].options)}`);

  await Promise.all(['n1', 'n2'].map((id) => cluster.start(t, id, { configFile: twoFile })));
  const targets = (idList: readonly string[]): Target[] => idList.map((id) => ({ id, url: cluster.url(id) }));
  for (const target of targets(['n1', 'n2'])) {
    await waitFor(`${target.id} to serve`, async () => (await request(target.url, '/v1/ready')).status === 200);
  }

  const seed = Date.now() % 1_000_000;
  const random = seededRandom(seed);
  t.log(`seed ${seed}`);
  const history = new WriteHistory();
  const keys = Array.from({ length: KEYS }, (_, i) => `vc-${i}`);
  let started = Date.now();
  await inParallel(keys, CLIENTS, async (key) => {
    const via = targets(['n1', 'n2'])[Math.floor(random() * 2)]!;
    const value = `${key}#0`;
    history.begin(key, value);
    const res = await putValue(via.url, key, value);
    if (res.status !== 201) throw new Error(`PUT ${key} via ${via.id}: ${res.status} ${res.body}`);
    history.ack(key, value);
  });
  t.log(`${KEYS} keys written to n1, n2 in ${Date.now() - started} ms`);

  await cluster.start(t, 'n3', { configFile: aloneFile });
  // The nodes a client may use: the new one only once the view that names it is installed.
  let serving = targets(['n1', 'n2']);
  const readers = readLoad({ history, targets: () => serving, random, lanes: 4 });
  const writers = writeLoad({
    history,
    targets: () => serving,
    random,
    prefix: 'vc-new',
    lanes: 2,
    overwriteShare: 0.3,
    seedKeys: keys,
  });

  const changeAt = Date.now();
  const writesBefore = writers.stats.attempts;
  const res = await request(cluster.url('n1'), '/v1/cluster/view', {
    method: 'PUT',
    body: JSON.stringify({ view: newView }),
    headers: { 'content-type': 'application/json' },
  });
  t.is(res.status, 200, res.body.toString());
  t.log(`PUT /v1/cluster/view answered in ${Date.now() - changeAt} ms`);
  serving = targets(ids);
  await waitFor(
    `${WRITES_DURING} writes after the view change`,
    () => writers.stats.attempts - writesBefore >= WRITES_DURING,
    SETTLE_TIMEOUT_MS,
  );
  await writers.stop();

  // Keys whose only writes failed may or may not exist; the placement counts those that do.
  const present = new Set(history.acknowledged);
  for (const key of history.keys()) {
    if (!present.has(key) && (await getValue(cluster.url('n1'), key)).status === 200) present.add(key);
  }
  const expected = await expectedCounts(placement, present);
  let counts = new Map<string, number>();
  try {
    await waitFor(
      'every node to hold exactly the keys the new view gives it',
      async () => {
        counts = new Map(await Promise.all(ids.map(async (id) => [id, await storedKeys(cluster.url(id))] as const)));
        return ids.every((id) => counts.get(id) === (expected.get(id) ?? 0));
      },
      SETTLE_TIMEOUT_MS,
      200,
    );
  } finally {
    t.log(`stored keys per node: ${JSON.stringify(Object.fromEntries(counts))}`);
    t.log(`placement says: ${JSON.stringify(Object.fromEntries(expected))}`);
  }
  const settledAt = Date.now();
  await readers.stop();
  t.log(`settled ${settledAt - changeAt} ms after the view change was sent`);
  t.log(
    `during the change: ${readers.stats.attempts} reads (${readers.stats.failures.length} failed), ` +
      `${writers.stats.attempts} writes (${writers.stats.failures.length} failed)`,
  );
  for (const id of ids) {
    const movement = (await clusterOf(cluster.url(id)))['movement'] as { keys?: unknown } | undefined;
    if (movement !== undefined) t.log(`${id} movement: ${JSON.stringify(movement.keys)}`);
  }
  const failures = [...readers.stats.failures, ...writers.stats.failures].sort((a, b) => a.atMs - b.atMs);
  if (failures.length > 0) {
    t.log(
      `failures from ${failures[0]!.atMs - changeAt} to ${failures.at(-1)!.atMs - changeAt} ms after the change, ` +
        `by node: ${JSON.stringify(countBy(failures.map((f) => f.node)))}`,
    );
    for (const f of failures.slice(0, 5)) t.log(`${f.atMs - changeAt} ms after the change, via ${f.node}: ${f.what}`);
  }
  t.deepEqual(readers.stats.failures.slice(0, 20), [], 'every read during the change answered an acknowledged value');
  t.deepEqual(writers.stats.failures.slice(0, 20), [], 'every write during the change was acknowledged');

  const replicas = [...expected.values()].reduce((a, b) => a + b, 0);
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  t.is(total, replicas, 'no node holds a key it does not own');
  t.true((counts.get('n3') ?? 0) > 0, 'the new node holds keys');

  started = Date.now();
  const problems = await verifyAll(history, targets(ids), CLIENTS);
  t.log(`${present.size} keys read from 3 nodes after the change in ${Date.now() - started} ms`);
  t.deepEqual(problems.slice(0, 20), [], 'every acknowledged write reads back from every node');
}

test.serial('2 → 3 static nodes, shards as configured: the new node joins the shard and receives its keys', (t) =>
  viewChange(t, { firstHost: 60 }),
);

test.serial(
  '2 → 3 static nodes on a ring of 2 replicas: keys spread to the new node and the old ones purge what they lost',
  (t) =>
    viewChange(t, {
      firstHost: 63,
      placement: { mode: 'ring', replicationFactor: 2, writeQuorum: 'all', readQuorum: 1 },
    }),
);

function countBy(items: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) out[item] = (out[item] ?? 0) + 1;
  return out;
}
