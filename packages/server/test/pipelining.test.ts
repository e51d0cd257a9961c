import { connect } from 'node:net';
import test from 'ava';
import { http } from './helpers/http.js';
import { startTestServer } from './helpers/node.js';

interface RawResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** One request as HTTP/1.1 bytes, with a Content-Length for a body. */
function request(method: string, path: string, body?: string | Buffer): Buffer {
  const head = [`${method} ${path} HTTP/1.1`, 'Host: kvmesh.test'];
  if (body !== undefined) head.push('Content-Type: text/plain', `Content-Length: ${Buffer.byteLength(body)}`);
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), Buffer.from(body ?? '')]);
}

/**
 * Parses as many whole responses as `bytes` holds. Every answer of the key
 * routes has a Content-Length (or no body: 204, 304), so that is all this reads.
 */
function parseResponses(bytes: Buffer): RawResponse[] {
  const responses: RawResponse[] = [];
  let at = 0;
  for (;;) {
    const end = bytes.indexOf('\r\n\r\n', at, 'latin1');
    if (end < 0) return responses;
    const lines = bytes.subarray(at, end).toString('latin1').split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    if (headers['transfer-encoding'] !== undefined) throw new Error('chunked responses are not expected here');
    const length = status === 204 || status === 304 ? 0 : Number(headers['content-length'] ?? 0);
    if (bytes.length < end + 4 + length) return responses;
    responses.push({ status, headers, body: bytes.subarray(end + 4, end + 4 + length).toString('utf8') });
    at = end + 4 + length;
  }
}

/**
 * Writes every request in one socket write, as a pipelining client does,
 * and resolves with the responses once `requests.length` arrived.
 */
function pipeline(base: string, requests: readonly Buffer[], timeoutMs = 10_000): Promise<RawResponse[]> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`got ${parseResponses(received).length} of ${requests.length} responses in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(Buffer.concat(requests)));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const responses = parseResponses(received);
      if (responses.length < requests.length) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(responses);
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const responses = parseResponses(received);
      if (responses.length < requests.length) {
        reject(new Error(`connection closed after ${responses.length} of ${requests.length} responses`));
      }
    });
  });
}

test('pipelined PUT, GET, DELETE, GET on one connection take effect in arrival order', async (t) => {
  const { url } = await startTestServer(t);
  const responses = await pipeline(url, [
    request('PUT', '/v1/kv/pipelined', 'v1'),
    request('GET', '/v1/kv/pipelined'),
    request('DELETE', '/v1/kv/pipelined'),
    request('GET', '/v1/kv/pipelined'),
  ]);
  t.deepEqual(
    responses.map((r) => r.status),
    [201, 200, 204, 404],
  );
  t.is(responses[1]!.body, 'v1', 'the GET saw the PUT before it');
  t.is(responses[1]!.headers['etag'], responses[0]!.headers['etag']);
  t.is(JSON.parse(responses[3]!.body).error.code, 'KVMESH_ERR_HTTP_KEY_NOT_FOUND');
  t.is((await http(url, '/v1/kv/pipelined')).status, 404, 'the key is gone afterwards');
});

test('pipelined requests on different keys each see every earlier request of the connection', async (t) => {
  const { url } = await startTestServer(t);
  const responses = await pipeline(url, [
    request('PUT', '/v1/kv/a', 'first a'),
    request('PUT', '/v1/kv/b', 'first b'),
    request('GET', '/v1/kv/a'),
    request('PUT', '/v1/kv/a', 'second a'),
    request('DELETE', '/v1/kv/b'),
    request('GET', '/v1/kv/a'),
    request('GET', '/v1/kv/b'),
    request('PUT', '/v1/kv/b', 'second b'),
  ]);
  t.deepEqual(
    responses.map((r) => r.status),
    [201, 201, 200, 200, 204, 200, 404, 201],
  );
  t.is(responses[2]!.body, 'first a');
  t.is(responses[5]!.body, 'second a');
  t.is((await http(url, '/v1/kv/a')).body.toString(), 'second a');
  t.is((await http(url, '/v1/kv/b')).body.toString(), 'second b');
});

test('a pipelined request behind a large PUT body sees the write, and other routes keep their turn', async (t) => {
  const { url } = await startTestServer(t);
  const large = Buffer.alloc(512 * 1024, 'x');
  const responses = await pipeline(url, [
    request('PUT', '/v1/kv/large', large),
    request('GET', '/v1/health'),
    request('GET', '/v1/kv/large'),
    request('DELETE', '/v1/kv/large'),
    request('GET', '/v1/kv/large'),
  ]);
  t.deepEqual(
    responses.map((r) => r.status),
    [201, 200, 200, 204, 404],
  );
  t.is(responses[1]!.body, '{"status":"ok"}');
  t.is(responses[2]!.body.length, large.length);
});
