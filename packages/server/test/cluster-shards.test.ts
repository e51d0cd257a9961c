import { join } from 'node:path';
import test from 'ava';
import {
  CONFIGS_DIR,
  clusterOf,
  expectedCounts,
  freePort,
  getValue,
  inParallel,
  loopbackHosts,
  metricSum,
  placementOf,
  putValue,
  readTopology,
  seededRandom,
  startUp,
  storedKeys,
  tempDir,
} from './helpers/cluster.js';
import type { UpNode } from './helpers/cluster.js';
import { waitFor } from './helpers/http.js';

/**
 * The sharded topology (CSE138) as a user runs it: `kvmesh up
 * configs/shards-local.json` with four nodes, a static view of all four,
 * keys hashed onto two shards of two replicas each.
 */
const TOPOLOGY = 'shards-local.json';
/** This file's loopback range; the other cluster test files use other ranges. */
const HOSTS = loopbackHosts(50, 4);
const KEYS = 200;
/** Concurrent client requests: enough to overlap on every node, few enough for two busy cores. */
const CLIENTS = 8;

test('a 4-node sharded cluster stores each key on exactly its shard and answers it from every node', async (t) => {
  const file = join(CONFIGS_DIR, TOPOLOGY);
  const config = await readTopology(TOPOLOGY);
  t.is(config['transport'].name, 'http');
  t.is(config['membership'].name, 'static');
  t.is(config['placement'].options.mode, 'shards');
  t.is(config['placement'].options.replicationFactor, 2);

  const port = await freePort(HOSTS);
  const dir = await tempDir(t, 'shards');
  const up = await startUp(t, file, [
    '--nodes',
    String(HOSTS.length),
    '--port',
    String(port),
    '--host-base',
    HOSTS[0]!,
    '--data-dir',
    dir,
    '--log-level',
    'warn',
  ]);
  t.log(`kvmesh up: ${up.nodes.length} nodes on ${HOSTS[0]}..${HOSTS.at(-1)}:${port} ready in ${up.readyMs} ms`);
  const nodes = [...up.nodes].sort((a, b) => (a.id < b.id ? -1 : 1));
  t.deepEqual(
    nodes.map((n) => n.address),
    HOSTS.map((h) => `${h}:${port}`),
  );
  const ids = nodes.map((n) => n.id);

  // Every node lists the four members and the same two shards of two.
  const placement = await placementOf(config, file, ids);
  const wanted = placement.describe!() as { shards: { id: string; members: string[] }[] };
  t.is(wanted.shards.length, 2);
  for (const node of nodes) {
    const view = await clusterOf(node.url);
    t.deepEqual(view.members.map((m) => m.id).sort(), ids, `${node.id} lists every member`);
    t.true(
      view.members.every((m) => m.state === 'alive'),
      `${node.id} sees every member alive`,
    );
    const shards = view.placement['shards'] as { id: string; members: string[] }[];
    t.deepEqual(
      shards.map((s) => s.members),
      wanted.shards.map((s) => s.members),
      `${node.id} cuts the same shards`,
    );
    t.true(
      shards.every((s) => s.members.length === 2),
      `${node.id}: shards of 2`,
    );
  }

  // 200 keys, each written through a node picked at random.
  const seed = Date.now() % 1_000_000;
  const random = seededRandom(seed);
  const keys = Array.from({ length: KEYS }, (_, i) => `shard-key-${i}`);
  const via = new Map(keys.map((k) => [k, nodes[Math.floor(random() * nodes.length)]!]));
  t.log(`keys written through random nodes, seed ${seed}`);
  let started = Date.now();
  await inParallel(keys, CLIENTS, async (key) => {
    const res = await putValue(via.get(key)!.url, key, `value of ${key}`);
    if (res.status !== 201) throw new Error(`PUT ${key} via ${via.get(key)!.id}: ${res.status} ${res.body}`);
  });
  t.log(`${KEYS} writes in ${Date.now() - started} ms`);

  // Every key from every node.
  started = Date.now();
  const wrong: string[] = [];
  await inParallel(
    keys.flatMap((key) => nodes.map((node) => [key, node] as const)),
    CLIENTS,
    async ([key, node]) => {
      const read = await getValue(node.url, key);
      if (read.status !== 200 || read.value !== `value of ${key}`) {
        wrong.push(`${key} via ${node.id}: ${read.status} ${read.value}`);
      }
    },
  );
  t.log(`${KEYS * nodes.length} reads in ${Date.now() - started} ms`);
  t.deepEqual(wrong, [], 'every key reads back from every node');

  // Each key is stored on its shard's two nodes and nowhere else.
  const expected = await expectedCounts(placement, keys);
  const counts = await storedCounts(nodes);
  t.log(`stored keys per node: ${JSON.stringify(Object.fromEntries(counts))}`);
  t.deepEqual(Object.fromEntries(counts), Object.fromEntries(ids.map((id) => [id, expected.get(id) ?? 0])));
  t.is(
    [...counts.values()].reduce((a, b) => a + b, 0),
    2 * KEYS,
    'every key is stored twice',
  );
  for (const shard of wanted.shards) {
    const [a, b] = shard.members;
    t.is(counts.get(a!), counts.get(b!), `the two nodes of ${shard.id} hold the same keys`);
    t.true(counts.get(a!)! > 0, `${shard.id} holds some keys`);
  }

  // A node outside a key's shard answers it by asking the shard, and stores nothing.
  const outsider = nodes[0]!;
  const foreign: string[] = [];
  for (const key of keys) {
    const set = await placement.locate(key, { intent: 'read' });
    if (!set.replicas.some((m) => m.id === outsider.id)) foreign.push(key);
  }
  t.true(foreign.length > 0, `${outsider.id} holds no replica of some keys`);
  const sentBefore = await metricSum(outsider.url, 'kvmesh_rpc_total', 'kind="requestsSent"');
  for (const key of foreign) {
    const read = await getValue(outsider.url, key);
    t.is(read.status, 200, `${key} via ${outsider.id}`);
    t.is(read.value, `value of ${key}`);
  }
  const sent = (await metricSum(outsider.url, 'kvmesh_rpc_total', 'kind="requestsSent"')) - sentBefore;
  t.true(sent >= foreign.length, `${outsider.id} sent ${sent} requests for ${foreign.length} forwarded reads`);

  // A write through a node outside the key's shard lands on the shard only.
  let fresh = KEYS;
  let freshKey = `shard-key-${fresh}`;
  while ((await placement.locate(freshKey, { intent: 'write' })).replicas.some((m) => m.id === outsider.id)) {
    freshKey = `shard-key-${++fresh}`;
  }
  const owners = (await placement.locate(freshKey, { intent: 'write' })).replicas.map((m) => m.id);
  const put = await putValue(outsider.url, freshKey, 'forwarded');
  t.is(put.status, 201, put.body.toString());
  await waitFor('the forwarded write to be counted on its replicas', async () => {
    const after = await storedCounts(nodes);
    return ids.every((id) => after.get(id) === counts.get(id)! + (owners.includes(id) ? 1 : 0));
  });
  for (const node of nodes) t.is((await getValue(node.url, freshKey)).value, 'forwarded', `${freshKey} via ${node.id}`);
  t.is(await storedKeys(outsider.url), counts.get(outsider.id)!, `${outsider.id} stored nothing it does not own`);

  const code = await up.stop();
  t.is(code, 0, 'kvmesh up stops every node cleanly');
});

async function storedCounts(nodes: readonly UpNode[]): Promise<Map<string, number>> {
  const answers = await Promise.all(nodes.map(async (n) => [n.id, await storedKeys(n.url)] as const));
  return new Map(answers);
}
