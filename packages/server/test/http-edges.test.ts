import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { ERROR_CODES, KvError } from '@kvmesh/core';
import type { ErrorCode, LogFields, Logger } from '@kvmesh/core';
import { HTTP_STATUS_BY_CODE, INTERNAL_ERROR_CODE, httpFailure } from '../src/http-errors.js';
import { http, waitFor } from './helpers/http.js';
import { startTestServer, testConfig } from './helpers/node.js';

/** What a raw connection got back before the server closed it (or `waitMs` passed). */
async function raw(t: ExecutionContext, url: string, bytes: string | Buffer, waitMs = 10_000): Promise<string> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  t.teardown(() => socket.destroy());
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.write(bytes);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, waitMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return received;
}

function statusOf(answer: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
}

function jsonOf(answer: string): { error: { code: string; message: string } } {
  return JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };
}

/** A logger that keeps every line at warn and error. */
function recordingLogger(): Logger & { readonly lines: { level: string; fields: LogFields; message?: string }[] } {
  const lines: { level: string; fields: LogFields; message?: string }[] = [];
  const logger = {
    lines,
    debug: () => undefined,
    info: () => undefined,
    warn: (fields: LogFields, message?: string) =>
      lines.push({ level: 'warn', fields, ...(message ? { message } : {}) }),
    error: (fields: LogFields, message?: string) =>
      lines.push({ level: 'error', fields, ...(message ? { message } : {}) }),
    child: () => logger,
  };
  return logger;
}

test('every error code has its HTTP status in the one table, and only node faults answer 500', (t) => {
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
    const status = HTTP_STATUS_BY_CODE[code];
    t.true(Number.isInteger(status) && ((status >= 400 && status <= 599) || status === 499), code);
    const failure = httpFailure(new KvError(code, 'what went wrong'));
    if (status === 500) {
      t.like(failure, { status: 500, code: INTERNAL_ERROR_CODE, unexpected: true }, code);
      t.not(failure.message, 'what went wrong', `${code}: a 500 keeps its details in the log`);
    } else {
      t.like(failure, { status, code, message: 'what went wrong', unexpected: false }, code);
    }
  }
  t.like(httpFailure(new TypeError('boom')), { status: 500, code: INTERNAL_ERROR_CODE, unexpected: true });
});

test("docs/api.md's status list is the code table, status by status", async (t) => {
  const text = await readFile(fileURLToPath(new URL('../../../../docs/api.md', import.meta.url)), 'utf8');
  const documented = new Map<number, string[]>();
  for (const [, status, codes] of text.matchAll(/^\| (\d{3}) \| (.+) \|$/gm)) {
    documented.set(Number(status), [...codes!.matchAll(/`(KVMESH_ERR_[A-Z_]+)`/g)].map((m) => m[1]!).sort());
  }
  const table = new Map<number, string[]>();
  for (const [code, status] of Object.entries(HTTP_STATUS_BY_CODE))
    table.set(status, [...(table.get(status) ?? []), code]);
  for (const codes of table.values()) codes.sort();
  const sorted = (m: Map<number, string[]>): [number, string[]][] => [...m].sort(([a], [b]) => a - b);
  t.deepEqual(sorted(documented), sorted(table));
});

test('a malformed or oversized If-Match is 400 KVMESH_ERR_VERSION_INVALID, and nothing is written', async (t) => {
  const server = await startTestServer(t);
  for (const tag of ['garbage', '""', '"not-a-version"', `"${'x'.repeat(1100)}"`]) {
    const answer = await http(server.url, '/v1/kv/k', { method: 'PUT', body: 'v', headers: { 'if-match': tag } });
    t.is(answer.status, 400, tag.slice(0, 20));
    t.is(answer.json().error.code, 'KVMESH_ERR_VERSION_INVALID');
    const deleted = await http(server.url, '/v1/kv/k', { method: 'DELETE', headers: { 'if-match': tag } });
    t.is(deleted.status, 400);
  }
  t.is((await http(server.url, '/v1/kv/k')).status, 404, 'nothing was written');
});

test('a Content-Type over 1024 bytes is 400 KVMESH_ERR_KV_REQUEST_INVALID, with no error logged', async (t) => {
  const logger = recordingLogger();
  const server = await startTestServer(t, testConfig(), logger);
  const answer = await http(server.url, '/v1/kv/k', {
    method: 'PUT',
    body: 'v',
    headers: { 'content-type': 'x'.repeat(1100) },
  });
  t.is(answer.status, 400);
  t.is(answer.json().error.code, 'KVMESH_ERR_KV_REQUEST_INVALID');
  t.deepEqual(logger.lines, []);
});

test("what node:http's parser refuses is answered with the documented status and JSON body", async (t) => {
  const server = await startTestServer(t);
  const cases: [string, string, number, string][] = [
    ['garbage bytes', 'HELLO\r\n\r\n', 400, 'KVMESH_ERR_HTTP_BAD_REQUEST'],
    [
      'a 20 KB target',
      `GET /v1/kv/${'x'.repeat(20_000)} HTTP/1.1\r\nHost: a\r\n\r\n`,
      414,
      'KVMESH_ERR_HTTP_URI_TOO_LONG',
    ],
    [
      '17 KB of headers',
      `GET /v1/kv/a HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(17_000)}\r\n\r\n`,
      431,
      'KVMESH_ERR_HTTP_HEADERS_TOO_LARGE',
    ],
  ];
  for (const [what, bytes, status, code] of cases) {
    const answer = await raw(t, server.url, bytes);
    t.is(statusOf(answer), status, what);
    t.is(jsonOf(answer).error.code, code, what);
    t.regex(answer, /\r\nContent-Type: application\/json; charset=utf-8\r\n/, what);
  }
});

test('a request not received within api.requestTimeoutMs is answered 408 with the JSON body, close to the timeout', async (t) => {
  const timeoutMs = 1_000;
  const server = await startTestServer(t, testConfig('127.0.0.1', { api: { requestTimeoutMs: timeoutMs } }));
  const started = Date.now();
  const answer = await raw(
    t,
    server.url,
    'PUT /v1/kv/slow HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc',
    30_000,
  );
  const took = Date.now() - started;
  t.log(`408 after ${took} ms (api.requestTimeoutMs ${timeoutMs})`);
  t.is(statusOf(answer), 408);
  t.is(jsonOf(answer).error.code, 'KVMESH_ERR_HTTP_REQUEST_TIMEOUT');
  // Checked every tenth of the timeout (at least 100 ms): never the 30 s of node's own default interval.
  t.true(took >= timeoutMs && took < timeoutMs + 10_000, `${took} ms`);
  t.is((await http(server.url, '/v1/kv/slow')).status, 404, 'nothing was written');
});

test('an absolute-form request target is served as its path', async (t) => {
  const server = await startTestServer(t);
  t.is((await http(server.url, '/v1/kv/a%2Fb', { method: 'PUT', body: 'hello' })).status, 201);
  const { host } = new URL(server.url);
  const answer = await raw(
    t,
    server.url,
    `GET http://${host}/v1/kv/a%2Fb HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
  );
  t.is(statusOf(answer), 200);
  t.true(answer.endsWith('\r\n\r\nhello'));
});

test('Expect: 100-continue gets 100 only for a body that can be taken; a declared 5 MB body gets 413 at once', async (t) => {
  const server = await startTestServer(t);
  const big = await raw(
    t,
    server.url,
    'PUT /v1/kv/big HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n\r\n',
  );
  t.is(statusOf(big), 413, 'the first and only answer is the 413');
  t.false(big.includes('100 Continue'));
  t.is(jsonOf(big).error.code, 'KVMESH_ERR_KV_VALUE_TOO_LARGE');

  const { hostname, port } = new URL(server.url);
  const socket = connect(Number(port), hostname);
  t.teardown(() => socket.destroy());
  let received = '';
  const continued = new Promise<void>((resolve) =>
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.includes('100 Continue')) resolve();
    }),
  );
  socket.write('PUT /v1/kv/small HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
  await continued;
  socket.write('hello');
  await new Promise<void>((resolve) => socket.on('data', () => received.includes('201 Created') && resolve()));
  t.is((await http(server.url, '/v1/kv/small')).body.toString(), 'hello');
});

test('a client that disconnects mid-upload is counted as an abort (499), not a 500, and logs no error', async (t) => {
  const logger = recordingLogger();
  const server = await startTestServer(t, testConfig(), logger);
  const { hostname, port } = new URL(server.url);
  for (const path of ['/v1/kv/cut', '/v1/cluster/view']) {
    const socket = connect(Number(port), hostname);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(
      `PUT ${path} HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nhalf of it`,
    );
    await new Promise<void>((resolve) => setImmediate(resolve));
    socket.destroy();
  }
  const metricsText = async (): Promise<string> => (await http(server.url, '/metrics')).body.toString();
  const counted = (text: string, status: string): number =>
    text
      .split('\n')
      .filter((line) => line.startsWith('kvmesh_http_requests_total{') && line.includes(`status="${status}"`))
      .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
  let text = '';
  await waitFor('both aborts to be counted', async () => counted((text = await metricsText()), '499') >= 2, 10_000);
  t.is(counted(text, '499'), 2, 'both aborts are counted as 499');
  t.is(counted(text, '500'), 0);
  t.deepEqual(logger.lines, [], 'nothing at warn or error');
  t.is((await http(server.url, '/v1/kv/cut')).status, 404, 'nothing was written');
});
