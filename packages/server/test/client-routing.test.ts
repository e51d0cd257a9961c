import test from 'ava';
import type { ExecutionContext } from 'ava';
import { KvClient, isKvClientError } from '@kvmesh/client';
import type { NodeServer } from '../src/node-server.js';
import { freePort, loopbackHosts, metricSum } from './helpers/cluster.js';
import { http, waitFor } from './helpers/http.js';
import { startTestServer, testConfig } from './helpers/node.js';

/**
 * @kvmesh/client against real nodes on loopback: routing by the placement's
 * table (no node forwards a write), typed errors and conditional writes,
 * failover when a seed dies, and a refreshed map after a view change.
 */

/** This file's loopback range (127.0.0.200 to .216), three or four nodes per test. */
const FIRST_HOST = 200;
const SECRET = 'client-routing-test-cluster-secret';

interface Cluster {
  readonly ids: readonly string[];
  readonly servers: Map<string, NodeServer>;
  readonly urls: readonly string[];
}

/** `count` in-process nodes with one static view of all of them and a consistent-hash placement. */
async function startCluster(
  t: ExecutionContext,
  first: number,
  count: number,
  placement: Record<string, unknown>,
): Promise<Cluster> {
  const hosts = loopbackHosts(first, count);
  const port = await freePort(hosts);
  const ids = hosts.map((_, i) => `n${i + 1}`);
  const view = hosts.map((host, i) => `${ids[i]}@${host}:${port}`);
  const started = await Promise.all(
    hosts.map((host, i) =>
      startTestServer(
        t,
        testConfig(host, {
          node: { id: ids[i], address: `${host}:${port}` },
          membership: { name: 'static', options: { view, syncIntervalMs: 200 } },
          placement: { name: 'consistent-hash', options: placement },
          cluster: { secrets: [SECRET] },
        }),
      ),
    ),
  );
  await Promise.all(
    started.map((s) => waitFor(`${s.url} to be ready`, async () => (await http(s.url, '/v1/ready')).status === 200)),
  );
  return { ids, servers: new Map(started.map((s, i) => [ids[i]!, s])), urls: started.map((s) => s.url) };
}

function client(
  t: ExecutionContext,
  seeds: readonly string[],
  options: Partial<ConstructorParameters<typeof KvClient>[0]> = {},
): KvClient {
  const c = new KvClient({ seeds, timeoutMs: 10_000, ...options });
  t.teardown(() => c.close());
  return c;
}

async function forwardedWrites(urls: readonly string[]): Promise<number> {
  const counts = await Promise.all(urls.map((u) => metricSum(u, 'kvmesh_kv_forwarded_writes_total')));
  return counts.reduce((a, b) => a + b, 0);
}

const KEYS = Array.from({ length: 150 }, (_, i) => `user/${i}`);

test('sends each write to its primary and each read to a replica: no node forwards one', async (t) => {
  const cluster = await startCluster(t, FIRST_HOST, 3, {
    mode: 'ring',
    replicationFactor: 2,
    writeQuorum: 2,
    readQuorum: 1,
  });
  const routed = client(t, [cluster.urls[0]!]);
  await routed.connect();
  t.truthy(routed.routingTable, 'the ring publishes its table');
  t.deepEqual([...routed.members().keys()].sort(), ['n1', 'n2', 'n3']);
  const originOf = new Map([...routed.members()].map(([id, m]) => [m.origin, id]));

  const before = await forwardedWrites(cluster.urls);
  for (const key of KEYS) {
    const put = await routed.put(key, `value of ${key}`);
    t.is(put.servedBy, originOf.get(put.node), `${key}: the node it was sent to is the primary that ran it`);
    t.is(put.servedBy, routed.routingTable!.replicas(key)[0]);
  }
  t.is(await forwardedWrites(cluster.urls), before, 'no write was forwarded');
  for (const key of KEYS) {
    const got = await routed.get(key);
    t.is(got?.value.toString(), `value of ${key}`);
    t.true(routed.routingTable!.replicas(key).includes(originOf.get(got!.node)!), `${key} was read at a replica`);
    t.is(got!.servedBy, originOf.get(got!.node), `${key}: the replica it was sent to answered itself`);
  }
  t.is(routed.stats().routed, 2 * KEYS.length);
  t.is(routed.stats().forwarded, 0);

  // The same writes through any node: about a third land on a node that is no replica, so the metric moves.
  const anyNode = client(t, cluster.urls, { routing: false });
  for (const key of KEYS) await anyNode.put(key, 'again');
  const forwarded = (await forwardedWrites(cluster.urls)) - before;
  t.log(`writes forwarded: routed 0 of ${KEYS.length}, through any node ${forwarded} of ${KEYS.length}`);
  t.true(forwarded > KEYS.length / 4, `${forwarded} forwarded`);
});

test('typed errors carry the server codes; conditional writes hold', async (t) => {
  const cluster = await startCluster(t, FIRST_HOST + 3, 3, {
    mode: 'ring',
    replicationFactor: 3,
    writeQuorum: 2,
    readQuorum: 2,
  });
  const c = client(t, cluster.urls);
  t.is(await c.get('absent'), undefined);
  t.deepEqual(await c.delete('absent').then((r) => r.existed), false);

  const created = await c.put('lock', 'first', { ifNoneMatch: '*' });
  t.true(created.created);
  const refused = await t.throwsAsync(c.put('lock', 'second', { ifNoneMatch: '*' }));
  t.true(isKvClientError(refused, 'KVMESH_ERR_KV_PRECONDITION_FAILED'));
  t.is((refused as { status?: number }).status, 412);
  t.is((refused as { outcome?: string }).outcome, 'not-applied');
  t.is((await c.get('lock'))?.value.toString(), 'first', 'the refused write changed nothing');

  const swapped = await c.put('lock', 'second', { ifMatch: created.version });
  t.false(swapped.created);
  const stale = await t.throwsAsync(c.put('lock', 'third', { ifMatch: created.version }));
  t.true(isKvClientError(stale, 'KVMESH_ERR_KV_PRECONDITION_FAILED'));
  const staleDelete = await t.throwsAsync(c.delete('lock', { ifMatch: created.version }));
  t.true(isKvClientError(staleDelete, 'KVMESH_ERR_KV_PRECONDITION_FAILED'));
  t.true((await c.delete('lock', { ifMatch: swapped.version })).existed);
  t.is(await c.get('lock'), undefined);

  const badTag = await t.throwsAsync(c.put('lock', 'x', { ifMatch: 'not-a-version' }));
  t.true(isKvClientError(badTag, 'KVMESH_ERR_VERSION_INVALID'));
  t.is((badTag as { status?: number }).status, 400);
  const tooLong = await t.throwsAsync(c.put('k'.repeat(2_000), 'x'));
  t.true(isKvClientError(tooLong, 'KVMESH_ERR_KV_KEY_TOO_LONG'));
  t.is((tooLong as { status?: number }).status, 414);

  // Keys with slashes, dots and non-ASCII text go out percent-encoded and come back the same.
  for (const key of ['.', '..', 'a/b', 'ключ 🔑', '%2E']) {
    await c.put(key, `v:${key}`, { contentType: 'text/x-test' });
    const got = await c.get(key);
    t.is(got?.value.toString(), `v:${key}`, key);
    t.is(got?.contentType, 'text/x-test');
  }
});

test('fails over when a seed node dies and keeps minConnections answering nodes', async (t) => {
  const cluster = await startCluster(t, FIRST_HOST + 6, 3, {
    mode: 'ring',
    replicationFactor: 3,
    writeQuorum: 2,
    readQuorum: 1,
  });
  const [n1, n2, n3] = cluster.urls as [string, string, string];
  const c = client(t, [n1, n2], { minConnections: 2, retry: { attempts: 6 } });
  for (const key of KEYS) await c.put(key, `v:${key}`);
  await waitFor('two answering connections', () => c.connectedNodes().length >= 2);

  await cluster.servers.get('n1')!.shutdown();
  const started = Date.now();
  for (const key of KEYS) t.is((await c.get(key))?.value.toString(), `v:${key}`, key);
  t.log(`${KEYS.length} reads after the seed n1 stopped: ${Date.now() - started} ms, ${c.stats().failovers} failovers`);
  t.true(c.stats().failovers >= 1, 'a request that went to n1 moved to another node');
  // Writes whose primary was n1 go to the next replica, which runs them with the two left (W = 2).
  for (const key of KEYS) t.is((await c.put(key, 'after n1 stopped')).created, false, key);
  await waitFor('connections to two nodes that answer, n1 not among them', () => {
    const connected = c.connectedNodes();
    return connected.length >= 2 && !connected.includes(n1);
  });
  t.deepEqual(c.connectedNodes().sort(), [n2, n3].sort(), 'n3, no seed, was connected to keep two');
});

test('refreshes its map after a view change and routes by the new one', async (t) => {
  const cluster = await startCluster(t, FIRST_HOST + 9, 3, {
    mode: 'ring',
    replicationFactor: 2,
    writeQuorum: 1,
    readQuorum: 1,
  });
  const c = client(t, [cluster.urls[0]!], { refreshIntervalMs: 200 });
  await c.connect();
  const before = c.routingTable!;
  t.true(before.answer.replicaSets.flat().includes('n3'));

  const n1 = cluster.servers.get('n1')!;
  const n2 = cluster.servers.get('n2')!;
  const res = await http(n1.url, '/v1/cluster/view', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ view: [`n1@${n1.node.info.address}`, `n2@${n2.node.info.address}`] }),
  });
  t.is(res.status, 200, res.body.toString());
  await waitFor(
    'the client to read the new table',
    () => c.routingTable !== undefined && c.routingTable.epoch !== before.epoch,
  );
  t.false(c.routingTable!.answer.replicaSets.flat().includes('n3'), 'n3 holds no key any more');
  t.deepEqual([...c.members().keys()].sort(), ['n1', 'n2']);

  const urls = [n1.url, n2.url];
  const forwarded = await forwardedWrites(urls);
  for (const key of KEYS) {
    const put = await c.put(key, 'after the change');
    t.is(put.servedBy, c.routingTable!.replicas(key)[0]);
  }
  t.is(await forwardedWrites(urls), forwarded, 'no write was forwarded under the new view');
  t.true(c.stats().refreshes >= 2);
});

test('falls back to any node when the placement publishes no table', async (t) => {
  const server = await startTestServer(
    t,
    testConfig(`127.0.0.${FIRST_HOST + 12}`, { node: { id: 'solo', address: `127.0.0.${FIRST_HOST + 12}:0` } }),
  );
  const c = client(t, [server.url]);
  await c.connect();
  t.is(c.routingTable, undefined);
  t.is((await http(server.url, '/v1/cluster/routes')).status, 404);
  await c.put('k', 'v');
  t.is((await c.get('k'))?.value.toString(), 'v');
  t.is(c.stats().routed, 0);
});

test('on shards, each write goes to the primary its shard picks for the key: no node forwards one', async (t) => {
  const cluster = await startCluster(t, FIRST_HOST + 13, 4, {
    mode: 'shards',
    replicationFactor: 2,
    writeQuorum: 'all',
    readQuorum: 1,
  });
  const c = client(t, [cluster.urls[0]!]);
  await c.connect();
  t.is(c.routingTable?.answer.order, 'fmix32', 'a shard rotates its primaries by key');
  t.is(c.routingTable?.answer.replicaSets.length, 2, 'two shards of two');
  const before = await forwardedWrites(cluster.urls);
  const primaries = new Set<string>();
  for (const key of KEYS) {
    const put = await c.put(key, `v:${key}`);
    t.is(put.servedBy, c.routingTable!.replicas(key)[0], key);
    primaries.add(put.servedBy!);
  }
  t.is(await forwardedWrites(cluster.urls), before, 'no write was forwarded');
  t.is(primaries.size, 4, 'every member is the primary of some keys');
  for (const key of KEYS) t.is((await c.get(key))?.value.toString(), `v:${key}`);
});
