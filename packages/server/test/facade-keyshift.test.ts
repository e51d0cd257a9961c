import test from 'ava';
import { runFacadeConformance } from '@kvmesh/core';
import type { KvService } from '@kvmesh/core';
import { KEYSHIFT_PROBLEM_TYPE, KeyShiftFacade, keyShiftConformance, keyshiftFacade } from '@kvmesh/plugins';
import type { Context } from 'koa';
import { facadeConformanceHost } from '../src/facade-conformance-host.js';
import { http } from './helpers/http.js';
import { startTestServer, testConfig } from './helpers/node.js';

// The facade conformance suite, beside the node's own API and on a port of its own.
runFacadeConformance(test, {
  title: 'keyshift on the node port',
  facade: keyshiftFacade,
  host: facadeConformanceHost,
  ...keyShiftConformance,
});

runFacadeConformance(test, {
  title: 'keyshift on its own port',
  facade: keyshiftFacade,
  options: { port: 0 },
  host: facadeConformanceHost,
  ...keyShiftConformance,
});

test('a config with the keyshift facade on the node port serves /keys/ beside /v1/, one store behind both', async (t) => {
  const server = await startTestServer(t, testConfig('127.0.0.1', { facades: [{ name: 'keyshift' }] }));
  t.deepEqual(server.facades, [{ name: 'keyshift', url: server.url }]);
  t.is((await http(server.url, '/keys/cart', { method: 'PUT', body: 'apples' })).status, 200);
  const native = await http(server.url, '/v1/kv/cart');
  t.is(native.status, 200);
  t.is(native.body.toString(), 'apples');
  t.is(native.headers['content-type'], 'application/octet-stream', 'a KeyShift value is stored as bytes');
  t.is((await http(server.url, '/v1/kv/cart', { method: 'PUT', body: 'pears' })).status, 200);
  const read = await http(server.url, '/keys/cart');
  t.is(read.body.toString(), 'pears');
  t.is(read.headers['content-type'], 'application/octet-stream');
  t.is((await http(server.url, '/v1/kv/cart', { method: 'DELETE' })).status, 204);
  const gone = await http(server.url, '/keys/cart');
  t.is(gone.status, 404, 'a key deleted through the native API is gone for KeyShift too');
  t.is(gone.headers['content-type'], KEYSHIFT_PROBLEM_TYPE);
  const doc = (await http(server.url, '/v1/openapi.json')).json();
  t.deepEqual(Object.keys(doc.paths['/keys/{key}']).sort(), ['get', 'parameters', 'put']);
  t.deepEqual(doc['x-kvmesh-facades'][0].examples, [
    `curl -i -X PUT --data-binary 'hello' ${server.url}/keys/greeting`,
    `curl -i ${server.url}/keys/greeting`,
  ]);
});

test('a config with the keyshift facade on its own port answers there, and the native API stays on the node port', async (t) => {
  const server = await startTestServer(
    t,
    testConfig('127.0.0.1', { facades: [{ name: 'keyshift', options: { port: 0 } }] }),
  );
  const [facade] = server.facades;
  t.is(facade?.name, 'keyshift');
  t.not(facade!.url, server.url);
  t.is((await http(facade!.url, '/keys/session', { method: 'PUT', body: 'token' })).status, 200);
  t.is((await http(server.url, '/v1/kv/session')).body.toString(), 'token');
  const notHere = await http(server.url, '/keys/session');
  t.is(notHere.status, 404);
  t.is(notHere.json().error.code, 'KVMESH_ERR_HTTP_NOT_FOUND', 'the node port answers its own 404 for /keys/');
  const nativeOnFacadePort = await http(facade!.url, '/v1/kv/session');
  t.is(nativeOnFacadePort.status, 404);
  t.is(nativeOnFacadePort.headers['content-type'], KEYSHIFT_PROBLEM_TYPE, "the facade port's 404 is KeyShift's");
  t.like(nativeOnFacadePort.json(), { status: 404, title: 'Not Found', code: 'KVMESH_ERR_HTTP_NOT_FOUND' });
});

test('a 503 (a key frozen past the retries, a node not ready) is problem details with Retry-After; a 504 names its section', (t) => {
  const facade = new KeyShiftFacade({ kv: {} as KvService }, { port: null, host: null });
  const answer = (status: number, code: string, message: string): Record<string, unknown> => {
    const headers: Record<string, string> = {};
    const ctx = {
      status: 0,
      body: undefined as unknown,
      set: (name: string, value: string) => (headers[name] = value),
    };
    facade.error(ctx as unknown as Context, { status, code, message });
    return { status: ctx.status, headers, body: JSON.parse(ctx.body as string) };
  };
  t.deepEqual(answer(503, 'KVMESH_ERR_KV_FROZEN', 'key "cart" is being handed over; retry'), {
    status: 503,
    headers: { 'Retry-After': '1', 'Content-Type': KEYSHIFT_PROBLEM_TYPE },
    body: {
      type: 'https://tools.ietf.org/html/rfc9110#section-15.6.4',
      title: 'Service Unavailable',
      status: 503,
      detail: 'key "cart" is being handed over; retry',
      code: 'KVMESH_ERR_KV_FROZEN',
    },
  });
  t.like(answer(504, 'KVMESH_ERR_RPC_TIMEOUT', 'no answer in time'), {
    headers: { 'Content-Type': KEYSHIFT_PROBLEM_TYPE },
    body: { type: 'https://tools.ietf.org/html/rfc9110#section-15.6.5', title: 'Gateway Timeout', status: 504 },
  });
  t.like(answer(409, 'KVMESH_ERR_MEMBERSHIP_VIEW_UNSUPPORTED', 'no view'), {
    body: { type: 'about:blank', title: 'Conflict', status: 409 },
  });
});
