import { createServer } from 'node:http';
import { connect } from 'node:net';
import { silentLogger } from '@kvmesh/core';
import type { KvService } from '@kvmesh/core';
import Router from '@koa/router';
import test from 'ava';
import { createApp } from '../src/app.js';
import { startNodeServer } from '../src/node-server.js';
import { readJsonBody } from '../src/read-json.js';
import { ServerMetrics, drawingShares } from '../src/metrics.js';
import { http, rawExchange, waitFor } from './helpers/http.js';
import { startTestServer, testConfig } from './helpers/node.js';

const VERSION_ETAG = /^"[0-9a-f]{12}-[0-9a-f]{4}-n1"$/;

test('PUT creates with 201, replaces with 200, and answers the version as JSON and ETag', async (t) => {
  const { url } = await startTestServer(t);
  const created = await http(url, '/v1/kv/greeting', {
    method: 'PUT',
    body: 'hello',
    headers: { 'content-type': 'text/plain' },
  });
  t.is(created.status, 201);
  t.regex(String(created.headers['etag']), VERSION_ETAG);
  t.regex(String(created.headers['content-type']), /^application\/json/);
  const body = created.json<{ key: string; version: string }>();
  t.is(body.key, 'greeting');
  t.is(`"${body.version}"`, String(created.headers['etag']));

  const replaced = await http(url, '/v1/kv/greeting', { method: 'PUT', body: 'hello again' });
  t.is(replaced.status, 200);
  t.not(replaced.headers['etag'], created.headers['etag']);
});

test('GET answers the stored bytes with their Content-Type and ETag; HEAD the same headers without a body', async (t) => {
  const { url } = await startTestServer(t);
  const value = Buffer.from([0, 1, 2, 255, 254, 10]);
  const put = await http(url, '/v1/kv/bin', {
    method: 'PUT',
    body: value,
    headers: { 'content-type': 'image/x-test' },
  });
  const got = await http(url, '/v1/kv/bin');
  t.is(got.status, 200);
  t.deepEqual(got.body, value);
  t.is(got.headers['content-type'], 'image/x-test');
  t.is(got.headers['etag'], put.headers['etag']);

  const head = await http(url, '/v1/kv/bin', { method: 'HEAD' });
  t.is(head.status, 200);
  t.is(head.body.length, 0);
  t.is(head.headers['content-length'], String(value.length));
  t.is(head.headers['etag'], put.headers['etag']);
  t.is(head.headers['content-type'], 'image/x-test');
});

test('a PUT without Content-Type stores application/octet-stream, and an empty value is a value', async (t) => {
  const { url } = await startTestServer(t);
  t.is((await http(url, '/v1/kv/empty', { method: 'PUT' })).status, 201);
  const got = await http(url, '/v1/kv/empty');
  t.is(got.status, 200);
  t.is(got.body.length, 0);
  t.is(got.headers['content-type'], 'application/octet-stream');
});

test('GET and HEAD of an absent key answer 404 (GET with a JSON error body)', async (t) => {
  const { url } = await startTestServer(t);
  const got = await http(url, '/v1/kv/missing');
  t.is(got.status, 404);
  t.is(got.json().error.code, 'KVMESH_ERR_HTTP_KEY_NOT_FOUND');
  t.regex(got.json().error.message, /missing/);
  t.is((await http(url, '/v1/kv/missing', { method: 'HEAD' })).status, 404);
});

test('DELETE answers 204 when the key existed and 404 when not; a deleted key reads as absent', async (t) => {
  const { url } = await startTestServer(t);
  await http(url, '/v1/kv/k', { method: 'PUT', body: 'v' });
  t.is((await http(url, '/v1/kv/k', { method: 'DELETE' })).status, 204);
  t.is((await http(url, '/v1/kv/k')).status, 404);
  const again = await http(url, '/v1/kv/k', { method: 'DELETE' });
  t.is(again.status, 404);
  t.is(again.json().error.code, 'KVMESH_ERR_HTTP_KEY_NOT_FOUND');
  t.is((await http(url, '/v1/kv/k', { method: 'PUT', body: 'back' })).status, 201, 'a write after a delete creates');
});

test('keys are percent-decoded and may contain slashes: a/b and a%2Fb are one key', async (t) => {
  const { url } = await startTestServer(t);
  await http(url, '/v1/kv/dir/file.txt', { method: 'PUT', body: 'one' });
  t.is((await http(url, '/v1/kv/dir%2Ffile.txt')).body.toString(), 'one');
  const unicode = encodeURIComponent('clé/ü 🙂');
  t.is((await http(url, `/v1/kv/${unicode}`, { method: 'PUT', body: 'two' })).json().key, 'clé/ü 🙂');
  t.is(
    (await http(url, `/v1/kv/${unicode}?ignored=1`)).body.toString(),
    'two',
    'the query string is not part of the key',
  );
});

test('If-None-Match: * creates only; a second create-only write answers 412 and writes nothing', async (t) => {
  const { url } = await startTestServer(t);
  const first = await http(url, '/v1/kv/c', { method: 'PUT', body: '1', headers: { 'if-none-match': '*' } });
  t.is(first.status, 201);
  const second = await http(url, '/v1/kv/c', { method: 'PUT', body: '2', headers: { 'if-none-match': '*' } });
  t.is(second.status, 412);
  t.is(second.json().error.code, 'KVMESH_ERR_KV_PRECONDITION_FAILED');
  t.is((await http(url, '/v1/kv/c')).body.toString(), '1');
});

test('If-Match writes only over the named version, quoted or bare; a stale one answers 412', async (t) => {
  const { url } = await startTestServer(t);
  const v1 = (await http(url, '/v1/kv/m', { method: 'PUT', body: '1' })).headers['etag']!;
  const v2 = await http(url, '/v1/kv/m', { method: 'PUT', body: '2', headers: { 'if-match': v1 } });
  t.is(v2.status, 200);
  const stale = await http(url, '/v1/kv/m', { method: 'PUT', body: '3', headers: { 'if-match': v1 } });
  t.is(stale.status, 412);
  t.is((await http(url, '/v1/kv/m')).body.toString(), '2');
  const bare = String(v2.headers['etag']).slice(1, -1);
  t.is((await http(url, '/v1/kv/m', { method: 'PUT', body: '4', headers: { 'if-match': bare } })).status, 200);
  t.is((await http(url, '/v1/kv/absent', { method: 'PUT', body: 'x', headers: { 'if-match': '*' } })).status, 412);
});

test('DELETE with a stale If-Match answers 412 and keeps the value', async (t) => {
  const { url } = await startTestServer(t);
  const v1 = (await http(url, '/v1/kv/d', { method: 'PUT', body: '1' })).headers['etag']!;
  const v2 = (await http(url, '/v1/kv/d', { method: 'PUT', body: '2' })).headers['etag']!;
  t.is((await http(url, '/v1/kv/d', { method: 'DELETE', headers: { 'if-match': v1 } })).status, 412);
  t.is((await http(url, '/v1/kv/d')).body.toString(), '2');
  t.is((await http(url, '/v1/kv/d', { method: 'DELETE', headers: { 'if-match': v2 } })).status, 204);
});

test('GET with If-None-Match naming the current version answers 304', async (t) => {
  const { url } = await startTestServer(t);
  const etag = (await http(url, '/v1/kv/cache', { method: 'PUT', body: 'x' })).headers['etag']!;
  const res = await http(url, '/v1/kv/cache', { headers: { 'if-none-match': `W/${etag}, "other"` } });
  t.is(res.status, 304);
  t.is(res.body.length, 0);
  t.is((await http(url, '/v1/kv/cache', { headers: { 'if-none-match': '"other"' } })).status, 200);
});

test('a value of exactly limits.maxValueBytes is stored; one byte more answers 413 and stores nothing', async (t) => {
  const { url } = await startTestServer(t, testConfig('127.0.0.1', { limits: { maxValueBytes: 1000 } }));
  t.is((await http(url, '/v1/kv/big', { method: 'PUT', body: Buffer.alloc(1000, 1) })).status, 201);
  const over = await http(url, '/v1/kv/big2', { method: 'PUT', body: Buffer.alloc(1001, 1) });
  t.is(over.status, 413);
  t.is(over.json().error.code, 'KVMESH_ERR_KV_VALUE_TOO_LARGE');
  t.regex(over.json().error.message, /1000/);
  t.is((await http(url, '/v1/kv/big2')).status, 404);
});

test('a body over the limit answers 413 as soon as it passes the limit, chunked or declared', async (t) => {
  const { url } = await startTestServer(t, testConfig('127.0.0.1', { limits: { maxValueBytes: 1000 } }));
  const head = 'PUT /v1/kv/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n';
  const chunk = `${(600).toString(16)}\r\n${'a'.repeat(600)}\r\n`;
  const answer = await rawExchange(url, head + chunk + chunk + chunk, 1);
  t.regex(answer, /^HTTP\/1\.1 413 /);
  t.regex(answer, /KVMESH_ERR_KV_VALUE_TOO_LARGE/);
  t.is((await http(url, '/v1/kv/chunked')).status, 404);
  const huge = await rawExchange(
    url,
    'PUT /v1/kv/huge HTTP/1.1\r\nHost: x\r\nContent-Length: 10737418240\r\n\r\nabc',
    1,
  );
  t.regex(huge, /^HTTP\/1\.1 413 /, 'a declared length over the limit is refused before the body arrives');
});

test('a key longer than limits.maxKeyBytes answers 414; one at the limit is accepted', async (t) => {
  const { url } = await startTestServer(t, testConfig('127.0.0.1', { limits: { maxKeyBytes: 16 } }));
  t.is((await http(url, `/v1/kv/${'k'.repeat(16)}`, { method: 'PUT', body: 'x' })).status, 201);
  const long = await http(url, `/v1/kv/${'k'.repeat(17)}`, { method: 'PUT', body: 'x' });
  t.is(long.status, 414);
  t.is(long.json().error.code, 'KVMESH_ERR_KV_KEY_TOO_LONG');
  t.is((await http(url, `/v1/kv/${encodeURIComponent('é'.repeat(9))}`)).status, 414, 'the limit counts UTF-8 bytes');
});

test('malformed keys and condition headers answer 400 with a JSON error', async (t) => {
  const { url } = await startTestServer(t);
  for (const path of ['/v1/kv/%zz', '/v1/kv/%E0%A4', '/v1/kv/']) {
    const res = await http(url, path, { method: 'PUT', body: 'x' });
    t.is(res.status, 400, path);
    t.regex(res.json().error.code, /^KVMESH_ERR_(HTTP_BAD_REQUEST|KV_KEY_INVALID)$/, path);
  }
  const raw = await rawExchange(url, 'GET /v1/kv/caf\xe9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 1);
  t.regex(raw, /^HTTP\/1\.1 400 /);
  const list = await http(url, '/v1/kv/k', { method: 'PUT', body: 'x', headers: { 'if-match': '"a", "b"' } });
  t.is(list.status, 400);
  const notStar = await http(url, '/v1/kv/k', { method: 'PUT', body: 'x', headers: { 'if-none-match': '"a"' } });
  t.is(notStar.status, 400);
});

test('garbage that is not HTTP gets 400 and the node keeps serving', async (t) => {
  const { url } = await startTestServer(t);
  const answer = await rawExchange(url, '\x00\x01\x02 garbage\r\n\r\n', 1);
  t.regex(answer, /^HTTP\/1\.1 400 /);
  t.is((await http(url, '/v1/health')).status, 200);
});

test('unknown routes answer 404 JSON; a known route with the wrong method answers 405 JSON with Allow', async (t) => {
  const { url } = await startTestServer(t);
  const missing = await http(url, '/v2/nothing');
  t.is(missing.status, 404);
  t.is(missing.json().error.code, 'KVMESH_ERR_HTTP_NOT_FOUND');
  const post = await http(url, '/v1/kv/k', { method: 'POST', body: 'x' });
  t.is(post.status, 405);
  t.is(post.json().error.code, 'KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED');
  t.is(post.headers['allow'], 'GET, HEAD, PUT, DELETE');
  const wrong = await http(url, '/v1/health', { method: 'DELETE' });
  t.is(wrong.status, 405);
  t.regex(String(wrong.headers['allow']), /GET/);
  t.is(wrong.json().error.code, 'KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED');
});

test('health and ready answer 200 once the node runs', async (t) => {
  const server = await startTestServer(t);
  t.deepEqual((await http(server.url, '/v1/health')).json(), { status: 'ok' });
  t.deepEqual((await http(server.url, '/v1/ready')).json(), { status: 'ready' });
});

test('/v1/cluster names this node, its members and the placement summary', async (t) => {
  const server = await startTestServer(t, testConfig('127.0.0.2'));
  const cluster = (await http(server.url, '/v1/cluster')).json();
  t.deepEqual(cluster.self, { id: 'n1', address: server.node.info.address });
  t.regex(cluster.self.address, /^127\.0\.0\.2:\d+$/);
  t.is(cluster.members.length, 1);
  t.like(cluster.members[0], { id: 'n1', state: 'alive' });
  t.like(cluster.placement, { epoch: 1, strategy: 'single', owner: 'n1' });
  t.is(
    (cluster.placement as { drawing?: { shape?: string } }).drawing?.shape,
    'groups',
    'the placement says how it is drawn',
  );
  t.like(cluster.movement, { state: 'idle', moves: { incoming: 0, outgoing: 0 }, hints: { held: 0 } });
});

test('/metrics exposes request counts by route and status, latency, keys, storage bytes, rpc and kv counters', async (t) => {
  const { url } = await startTestServer(t);
  await http(url, '/v1/kv/m1', { method: 'PUT', body: 'abc' });
  await http(url, '/v1/kv/m1');
  await http(url, '/v1/kv/absent');
  const res = await http(url, '/metrics');
  t.is(res.status, 200);
  t.regex(String(res.headers['content-type']), /^text\/plain/);
  const text = res.body.toString();
  t.regex(text, /kvmesh_http_requests_total\{route="\/v1\/kv\/\{key\}",method="PUT",status="201"\} 1/);
  t.regex(text, /kvmesh_http_requests_total\{route="\/v1\/kv\/\{key\}",method="GET",status="404"\} 1/);
  t.regex(text, /kvmesh_http_request_duration_seconds_bucket\{route="\/v1\/kv\/\{key\}",method="GET",le="\+Inf"\} 2/);
  t.regex(text, /kvmesh_http_request_duration_seconds_count\{route="\/v1\/kv\/\{key\}",method="PUT"\} 1/);
  t.regex(text, /^kvmesh_keys 1$/m);
  t.regex(text, /^kvmesh_storage_bytes \d+$/m);
  t.regex(text, /kvmesh_rpc_total\{kind="requestsSent"\} 0/);
  t.regex(text, /kvmesh_kv_operations_total\{operation="put",outcome="created"\} 1/);
  t.regex(text, /kvmesh_storage_evictions_total 0/);
  t.regex(text, /^kvmesh_cluster_members\{state="alive"\} 1$/m);
  t.regex(text, /^kvmesh_cluster_members\{state="dead"\} 0$/m);
  t.regex(text, /^kvmesh_placement_epoch \d+$/m);
  t.regex(text, /^kvmesh_placement_member_share\{member="n1"\} 1$/m, 'one node holds every key');
  t.regex(text, /^kvmesh_movement_ranges_moving\{direction="in"\} 0$/m);
  t.regex(text, /^kvmesh_movement_anti_entropy_differing_total 0$/m);
  t.regex(text, /process_cpu_user_seconds_total/);
});

test('drawingShares splits each drawing shape among its members, summing to 1', (t) => {
  t.deepEqual(
    drawingShares({
      shape: 'ring',
      points: [
        { at: 0.1, member: 'a' },
        { at: 0.2, member: 'b' },
        { at: 0.3, member: 'a' },
        { at: 0.4, member: 'a' },
      ],
    }),
    [
      ['a', 0.75],
      ['b', 0.25],
    ],
  );
  t.deepEqual(
    drawingShares({
      shape: 'groups',
      groups: [
        { id: 's0', members: ['a', 'b'], weight: 0.6 },
        { id: 's1', members: ['c', 'd'], weight: 0.4 },
      ],
    }).map(([m, s]) => [m, Number(s.toFixed(3))]),
    [
      ['a', 0.3],
      ['b', 0.3],
      ['c', 0.2],
      ['d', 0.2],
    ],
  );
  t.deepEqual(drawingShares({ shape: 'buckets', buckets: [{ members: ['x', 'y'] }, { members: ['x'] }] }).length, 2);
  t.deepEqual(drawingShares(undefined), []);
  t.deepEqual(drawingShares({ shape: 'ring', points: [] }), []);
});

test('5xx bodies carry a generic message and no stack', async (t) => {
  const server = await startTestServer(t);
  const storage = server.node.get<{ get: unknown }>('storage');
  storage.get = () => Promise.reject(new Error('disk on fire at /secret/path'));
  const res = await http(server.url, '/v1/kv/x');
  t.is(res.status, 500);
  t.is(res.json().error.code, 'KVMESH_ERR_HTTP_INTERNAL');
  t.notRegex(res.body.toString(), /secret|fire|at .*\.js/);
});

test('shutdown waits for an in-flight request, answers it with Connection: close, then stops', async (t) => {
  const server = await startTestServer(t);
  const url = new URL(server.url);
  const socket = connect({ host: url.hostname, port: Number(url.port) });
  t.teardown(() => socket.destroy());
  let received = '';
  socket.on('data', (c: Buffer) => (received += c.toString('latin1')));
  socket.write('PUT /v1/kv/late HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
  await waitFor('the server to take the request', () => received.includes('100 Continue'));
  let stopped = false;
  const stopping = server.shutdown().then(() => (stopped = true));
  t.false(server.ready);
  socket.write('body');
  await waitFor('the response', () => received.includes('\r\n\r\n{"key"'));
  t.regex(received, /HTTP\/1\.1 201 Created/);
  t.regex(received, /[Cc]onnection: close/);
  await stopping;
  t.true(stopped);
  t.false(server.serving);
});

test('GET /v1/ready answers 503 with a JSON error while the node is not ready', async (t) => {
  const app = createApp({
    kv: {} as KvService,
    maxKeyBytes: 10,
    maxValueBytes: 10,
    metrics: new ServerMetrics(),
    logger: silentLogger,
    serving: () => false,
    ready: () => false,
    notReadyReason: () => 'receiving the records a view change moved to it',
    cluster: () => ({ self: { id: 'a', address: 'a:1' }, members: [], placement: {} }),
  });
  const server = createServer(app.listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const ready = await http(base, '/v1/ready');
  t.is(ready.status, 503);
  t.is(ready.json().error.code, 'KVMESH_ERR_HTTP_NOT_READY');
  t.regex(ready.json().error.message, /not ready \(receiving the records a view change moved to it\)/);
  const data = await http(base, '/v1/kv/k');
  t.is(data.status, 503, 'data requests too');
  t.is((await http(base, '/v1/health')).status, 200, 'liveness does not depend on readiness');
});

test('routes added with configureApp share the error boundary; JSON bodies are limited by api.maxJsonBodyBytes', async (t) => {
  const server = await startNodeServer({
    document: testConfig('127.0.0.1', { api: { maxJsonBodyBytes: 64 } }),
    logger: silentLogger,
    configureApp: (app) => {
      const router = new Router();
      router.post('/test/echo', async (ctx) => {
        ctx.body = { echo: await readJsonBody(ctx.req, app.maxJsonBodyBytes) };
      });
      app.koa.use(router.routes());
    },
  });
  t.teardown(() => server.shutdown());
  const json = { 'content-type': 'application/json' };
  const echo = await http(server.url, '/test/echo', { method: 'POST', body: '{"a":1}', headers: json });
  t.deepEqual(echo.json(), { echo: { a: 1 } });
  const garbage = await http(server.url, '/test/echo', { method: 'POST', body: '{"a":', headers: json });
  t.is(garbage.status, 400);
  t.is(garbage.json().error.code, 'KVMESH_ERR_HTTP_BAD_REQUEST');
  const large = await http(server.url, '/test/echo', {
    method: 'POST',
    body: JSON.stringify({ a: 'x'.repeat(100) }),
    headers: json,
  });
  t.is(large.status, 413);
  t.is(large.json().error.code, 'KVMESH_ERR_HTTP_BODY_TOO_LARGE');
  const text = (await http(server.url, '/metrics')).body.toString();
  t.regex(text, /kvmesh_http_requests_total\{route="\/test\/echo",method="POST",status="413"\} 1/);
});

test('X-Request-Id is echoed on writes and errors; one that is not visible ASCII up to 128 characters is ignored', async (t) => {
  const { url } = await startTestServer(t);
  const put = await http(url, '/v1/kv/r', { method: 'PUT', body: 'v', headers: { 'X-Request-Id': 'req-1' } });
  t.is(put.status, 201);
  t.is(put.headers['x-request-id'], 'req-1');
  const del = await http(url, '/v1/kv/r', { method: 'DELETE', headers: { 'X-Request-Id': 'req-2' } });
  t.is(del.status, 204);
  t.is(del.headers['x-request-id'], 'req-2');
  const missing = await http(url, '/v1/kv/r', { method: 'DELETE', headers: { 'X-Request-Id': 'req-3' } });
  t.is(missing.status, 404);
  t.is(missing.headers['x-request-id'], 'req-3');
  const long = await http(url, '/v1/kv/r', { method: 'PUT', body: 'v', headers: { 'X-Request-Id': 'x'.repeat(129) } });
  t.is(long.status, 201);
  t.is(long.headers['x-request-id'], undefined);
  const none = await http(url, '/v1/kv/r', { method: 'PUT', body: 'v' });
  t.is(none.headers['x-request-id'], undefined);
});
