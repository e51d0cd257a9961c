import test from 'ava';
import { runFacadeConformance } from '@kvmesh/core';
import { velourFogConformance, velourFogFacade } from '@kvmesh/plugins';
import { facadeConformanceHost } from '../src/facade-conformance-host.js';
import { http } from './helpers/http.js';
import { startTestServer, testConfig } from './helpers/node.js';

// The facade conformance suite, beside the node's own API (as configs/velour-fog.json serves it) and on a port of its own.
runFacadeConformance(test, {
  title: 'velour-fog on the node port',
  facade: velourFogFacade,
  host: facadeConformanceHost,
  ...velourFogConformance,
});

runFacadeConformance(test, {
  title: 'velour-fog on its own port',
  facade: velourFogFacade,
  options: { port: 0 },
  host: facadeConformanceHost,
  ...velourFogConformance,
});

test('on the node port the seed API answers beside /v1/, over the same records', async (t) => {
  const server = await startTestServer(t, testConfig('127.0.0.1', { facades: [{ name: 'velour-fog' }] }));
  t.deepEqual(server.facades, [{ name: 'velour-fog', url: server.url }]);
  // The seed's own lines, as curl sends them: `curl -d VALUE host:port/KEY`, `curl host:port/get/?key=KEY`.
  const set = await http(server.url, '/KEY', {
    method: 'POST',
    body: 'VALUE',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  t.is(set.status, 200);
  t.is(set.body.length, 0);
  const get = await http(server.url, '/get/?key=KEY');
  t.is(get.status, 200);
  t.is(get.body.toString(), 'VALUE');
  const native = await http(server.url, '/v1/kv/KEY');
  t.is(native.status, 200);
  t.is(native.body.toString(), 'VALUE', 'the native API reads what the facade wrote');
  t.is((await http(server.url, '/v1/kv/KEY', { method: 'DELETE' })).status, 204);
  const gone = await http(server.url, '/get/?key=KEY');
  t.is(gone.status, 204, 'a deleted key is absent: 204');
  t.is(gone.body.length, 0);
  const other = await http(server.url, '/no-such-page');
  t.is(other.status, 404, 'a GET of another path is not a Velour Fog request: the native API answers it');
  t.is(other.json().error.code, 'KVMESH_ERR_HTTP_NOT_FOUND');
  const doc = (await http(server.url, '/v1/openapi.json')).json();
  t.deepEqual(Object.keys(doc.paths['/get/']), ['get']);
  t.deepEqual(Object.keys(doc.paths['/get']), ['get']);
  t.deepEqual(Object.keys(doc.paths['/{key}']), ['post']);
  t.deepEqual(doc['x-kvmesh-facades'][0].examples, [
    `curl -i -d hello ${server.url}/greeting`,
    `curl -i ${server.url}/get/?key=greeting`,
    `curl -i ${server.url}/get/?key=absent`,
  ]);
});
