import test from 'ava';
import { freePort, keyPath } from './helpers/cluster.js';
import { http, waitFor } from './helpers/http.js';
import { startTestServer, testConfig } from './helpers/node.js';

const HOSTS = ['127.0.0.93', '127.0.0.94'];

test('with api.port apart from node.address, internal frames go to the cluster port only and the API port serves none', async (t) => {
  const clusterPort = await freePort(HOSTS);
  const addresses = HOSTS.map((host) => `${host}:${clusterPort}`);
  const view = addresses.map((address, i) => `n${i + 1}@${address}`);
  const nodes = await Promise.all(
    HOSTS.map((host, i) =>
      startTestServer(
        t,
        testConfig(host, {
          node: { id: `n${i + 1}`, address: addresses[i] },
          api: { port: 0 },
          membership: { name: 'static', options: { view, syncIntervalMs: 200 } },
          placement: { name: 'consistent-hash', options: { mode: 'ring', replicationFactor: 2, writeQuorum: 2 } },
        }),
      ),
    ),
  );
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  t.not(new URL(a.url).port, String(clusterPort), 'the API listens on a port of its own');
  await waitFor('both nodes to serve', async () => (await http(a.url, '/v1/ready')).status === 200);

  // Replication works: the frames travel over the cluster port, which the transport binds itself.
  t.is((await http(a.url, keyPath('k'), { method: 'PUT', body: 'v' })).status, 201);
  t.is((await http(b.url, keyPath('k'))).body.toString(), 'v');

  // The API port knows no internal route: a hand-made frame there is a plain 404.
  const forged = await http(a.url, '/_kvmesh/rpc', { method: 'POST', body: 'garbage' });
  t.is(forged.status, 404);
  t.is(forged.json().error.code, 'KVMESH_ERR_HTTP_NOT_FOUND');
  // And the cluster port serves no client API.
  t.is((await http(`http://${addresses[0]}`, keyPath('k'))).status, 404);
});
