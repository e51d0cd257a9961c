import test from 'ava';
import { runFacadeConformance } from '@kvmesh/core';
import { dhtNodeConformance, dhtNodeFacade } from '@kvmesh/plugins';
import { facadeConformanceHost } from '../src/facade-conformance-host.js';
import { http } from './helpers/http.js';
import { startTestServer, testConfig } from './helpers/node.js';

// The facade conformance suite, beside the node's own API and on a port of its own.
runFacadeConformance(test, {
  title: 'dht-node on the node port',
  facade: dhtNodeFacade,
  host: facadeConformanceHost,
  ...dhtNodeConformance,
});

runFacadeConformance(test, {
  title: 'dht-node on its own port',
  facade: dhtNodeFacade,
  options: { port: 0 },
  host: facadeConformanceHost,
  ...dhtNodeConformance,
});

test('a config with the dht-node facade on its own port answers there, and the native API stays on the node port', async (t) => {
  const server = await startTestServer(
    t,
    testConfig('127.0.0.1', { facades: [{ name: 'dht-node', options: { port: 0 } }] }),
  );
  const [facade] = server.facades;
  t.is(facade?.name, 'dht-node');
  t.not(facade!.url, server.url);
  const post = await http(facade!.url, '/d/seed-key', { method: 'POST', body: 'seed value' });
  t.is(post.status, 201);
  t.is((await http(facade!.url, '/d/seed-key')).body.toString(), 'seed value');
  const native = await http(server.url, '/v1/kv/seed-key');
  t.is(native.status, 200);
  t.is(native.body.toString(), 'seed value');
  const notHere = await http(server.url, '/d/seed-key');
  t.is(notHere.status, 404);
  t.is(notHere.json().error.code, 'KVMESH_ERR_HTTP_NOT_FOUND', 'the node port answers its own 404 for /d/');
  const nativeOnFacadePort = await http(facade!.url, '/v1/kv/seed-key');
  t.is(nativeOnFacadePort.status, 404);
  t.deepEqual(Object.keys(nativeOnFacadePort.json()).sort(), ['code', 'error'], "the facade port's 404 is dht-node's");
});

test('a config with the dht-node facade on the node port serves /d/ beside /v1/', async (t) => {
  const server = await startTestServer(t, testConfig('127.0.0.1', { facades: [{ name: 'dht-node' }] }));
  t.deepEqual(server.facades, [{ name: 'dht-node', url: server.url }]);
  t.is((await http(server.url, '/v1/kv/k', { method: 'PUT', body: 'native' })).status, 201);
  const read = await http(server.url, '/d/k');
  t.is(read.status, 200);
  t.is(read.body.toString(), 'native');
  const deleted = await http(server.url, '/d/k', { method: 'DELETE' });
  t.deepEqual(deleted.json(), { key: 'k', status: 'deleted' });
  t.is((await http(server.url, '/v1/kv/k')).status, 404);
  const doc = (await http(server.url, '/v1/openapi.json')).json();
  t.deepEqual(Object.keys(doc.paths['/d/{key}']).sort(), ['delete', 'get', 'parameters', 'post']);
  t.deepEqual(doc['x-kvmesh-facades'][0].examples, [
    `curl -i -X POST ${server.url}/d/greeting -d 'hello'`,
    `curl -i ${server.url}/d/greeting`,
    `curl -i -X DELETE ${server.url}/d/greeting`,
  ]);
});
