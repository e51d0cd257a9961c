import { createServer } from 'node:net';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import type { NodeServer } from '../src/node-server.js';
import { http, waitFor } from './helpers/http.js';
import { startTestServer, testConfig } from './helpers/node.js';

interface ClusterJson {
  members: { id: string; address: string; state: string }[];
}

async function members(server: NodeServer): Promise<ClusterJson['members']> {
  return (await http(server.url, '/v1/cluster')).json<ClusterJson>().members;
}

/**
 * The nodes' shared secret: without one, a seed that lists no peer (the
 * first node here has no `join`, its port is not known before it starts)
 * takes no internal frames, so nobody could join it.
 */
const cluster = { secrets: ['join-test-cluster-secret'] };

/** Two nodes with SWIM over `transport` and one secret; the second joins through the first's host:port. */
async function pair(
  t: ExecutionContext,
  transport: Record<string, unknown>,
  hosts: [string, string],
): Promise<[NodeServer, NodeServer]> {
  const membership = { name: 'swim', options: {} };
  const first = await startTestServer(
    t,
    testConfig(hosts[0], { node: { id: 'a', address: `${hosts[0]}:0` }, membership, transport, cluster }),
  );
  const second = await startTestServer(
    t,
    testConfig(hosts[1], {
      node: { id: 'b', address: `${hosts[1]}:0` },
      membership,
      transport,
      cluster,
      join: [first.node.info.address],
    }),
  );
  return [first, second];
}

test('a node joins its seeds through membership; both see each other alive, over http on the API port', async (t) => {
  const [first, second] = await pair(t, { name: 'http' }, ['127.0.0.7', '127.0.0.8']);
  await waitFor('the second node to be ready', async () => (await http(second.url, '/v1/ready')).status === 200);
  await waitFor('both nodes to list two alive members', async () => {
    const views = await Promise.all([members(first), members(second)]);
    return views.every((view) => view.length === 2 && view.every((m) => m.state === 'alive'));
  });
  const view = await members(second);
  t.deepEqual(view.map((m) => m.id).sort(), ['a', 'b']);
  t.is(
    view.find((m) => m.id === 'a')!.address,
    `http://${first.node.info.address}`,
    'the internal endpoint is the API port',
  );
});

test('over udp the datagram socket uses the API port number', async (t) => {
  const [first, second] = await pair(t, { name: 'udp' }, ['127.0.0.9', '127.0.0.10']);
  await waitFor('both nodes to list two alive members', async () => {
    const views = await Promise.all([members(first), members(second)]);
    return views.every((view) => view.length === 2 && view.every((m) => m.state === 'alive'));
  });
  const apiPort = new URL(first.url).port;
  t.is((await members(second)).find((m) => m.id === 'a')!.address, `udp://127.0.0.9:${apiPort}`);
});

test('a graceful shutdown drains, then leaves the cluster, then stops the node', async (t) => {
  const [first] = await pair(t, { name: 'http' }, ['127.0.0.11', '127.0.0.12']);
  const membership = first.node.get<{ leave(): Promise<void> }>('membership');
  const storage = first.node.get<{ stop(): Promise<void> }>('storage');
  const calls: string[] = [];
  const leave = membership.leave.bind(membership);
  membership.leave = () => {
    calls.push(`leave (draining: ${first.draining}, serving: ${first.serving})`);
    return leave();
  };
  const stop = storage.stop.bind(storage);
  storage.stop = () => {
    calls.push('storage stop');
    return stop();
  };
  await first.shutdown();
  t.deepEqual(calls, ['leave (draining: true, serving: true)', 'storage stop']);
  t.is(first.node.state, 'stopped');
});

test('a node whose seeds do not answer yet is not ready, takes no client operation, and retries until one does', async (t) => {
  const port = await freePort('127.0.0.13');
  const membership = { name: 'swim', options: {} };
  const transport = { name: 'http' };
  const late = await startTestServer(
    t,
    testConfig('127.0.0.14', {
      node: { id: 'late', address: '127.0.0.14:0' },
      membership,
      transport,
      join: [`127.0.0.13:${port}`],
    }),
  );
  const notReady = await http(late.url, '/v1/ready');
  t.is(notReady.status, 503);
  t.is(notReady.json().error.code, 'KVMESH_ERR_HTTP_NOT_READY');
  t.regex(notReady.json().error.message, /joining its cluster/);
  // Knowing only itself, it would decide every write alone: it refuses them until it joined.
  for (const method of ['PUT', 'GET', 'DELETE']) {
    const refused = await http(late.url, '/v1/kv/k', { method, ...(method === 'PUT' ? { body: 'v' } : {}) });
    t.is(refused.status, 503, `${method} before the join`);
    t.is(refused.json().error.code, 'KVMESH_ERR_KV_NOT_JOINED');
  }
  await startTestServer(
    t,
    // Without a secret, a seed lists itself in join: it is part of a cluster, so it takes frames.
    testConfig('127.0.0.13', {
      node: { id: 'seed', address: `127.0.0.13:${port}` },
      membership,
      transport,
      join: [`127.0.0.13:${port}`],
    }),
  );
  await waitFor('the late node to join and be ready', async () => (await http(late.url, '/v1/ready')).status === 200);
  t.true((await members(late)).some((m) => m.id === 'seed'));
  t.is((await http(late.url, '/v1/kv/k', { method: 'PUT', body: 'v' })).status, 201, 'data is served once joined');
});

/** A TCP port nothing listens on right now (bound, then released). */
async function freePort(host: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
