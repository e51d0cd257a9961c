import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { KvClient, backoffMs, isKvClientError, retryAfterMs } from '../src/index.js';
import type { KvClientError } from '../src/index.js';

/**
 * The client against scripted HTTP servers on loopback: each answers what
 * the test says, so retries, backoff, Retry-After and what a failed write
 * reports are checked request by request.
 */

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

interface Scripted {
  readonly url: string;
  /** Requests received to key routes. */
  readonly requests: { method: string; url: string; headers: IncomingMessage['headers'] }[];
  close(): Promise<void>;
}

/** A server whose key requests `handler` answers; cluster requests answer a one-member cluster with no table. */
async function scripted(t: ExecutionContext, handler: Handler): Promise<Scripted> {
  const requests: Scripted['requests'] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/v1/cluster') return json(res, 200, { self: { id: 's', address: '' }, members: [] });
      if (req.url === '/v1/cluster/routes') return json(res, 404, error('KVMESH_ERR_HTTP_NOT_FOUND', 'no table'));
      if (req.url === '/v1/health') return json(res, 200, { status: 'ok' });
      requests.push({ method: req.method!, url: req.url!, headers: req.headers });
      handler(req, res, requests.length);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  t.teardown(close);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, close };
}

function error(code: string, message: string): unknown {
  return { error: { code, message } };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function created(_req: IncomingMessage, res: ServerResponse): void {
  json(
    res,
    201,
    { key: 'k', version: '01a1fcbaea85-0000-s' },
    { etag: '"01a1fcbaea85-0000-s"', 'x-kvmesh-served-by': 's' },
  );
}

function client(
  t: ExecutionContext,
  seeds: string[],
  options: Partial<ConstructorParameters<typeof KvClient>[0]> = {},
): KvClient {
  const c = new KvClient({
    seeds,
    refreshIntervalMs: 0,
    retry: { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 },
    ...options,
  });
  t.teardown(() => c.close());
  return c;
}

test('a 503 the node was not ready for is retried, waiting its Retry-After, and the write then succeeds', async (t) => {
  const server = await scripted(t, (_req, res, n) => {
    if (n <= 2) json(res, 503, error('KVMESH_ERR_HTTP_NOT_READY', 'starting'), { 'retry-after': '0.2' });
    else created(_req, res);
  });
  const c = client(t, [server.url]);
  const started = performance.now();
  const put = await c.put('k', 'v', { ifNoneMatch: '*' });
  const elapsed = performance.now() - started;
  t.true(put.created);
  t.is(put.version, '01a1fcbaea85-0000-s');
  t.is(server.requests.length, 3);
  t.is(c.stats().retries, 2);
  t.log(`two retries after Retry-After: 0.2 took ${elapsed.toFixed(0)} ms`);
  t.true(elapsed >= 400, 'each retry waited the 200 ms the server asked for');
});

test('a conditional write whose outcome is unknown (a quorum failure) is not resent, and says so', async (t) => {
  const server = await scripted(t, (_req, res) =>
    json(res, 503, error('KVMESH_ERR_KV_QUORUM', 'one replica of two answered')),
  );
  const c = client(t, [server.url]);
  const err = (await t.throwsAsync(c.put('k', 'v', { ifNoneMatch: '*' }))) as KvClientError;
  t.true(isKvClientError(err, 'KVMESH_ERR_KV_QUORUM'));
  t.is(err.status, 503);
  t.is(err.outcome, 'unknown');
  t.is(err.attempts, 1);
  t.is(server.requests.length, 1, 'sent once');
});

test('a plain write is retried after a quorum failure, and reports the outcome unknown when the retries run out', async (t) => {
  const server = await scripted(t, (_req, res) =>
    json(res, 503, error('KVMESH_ERR_KV_QUORUM', 'one replica of two answered')),
  );
  const c = client(t, [server.url]);
  const err = (await t.throwsAsync(c.put('k', 'v'))) as KvClientError;
  t.is(err.code, 'KVMESH_ERR_KV_QUORUM');
  t.is(err.outcome, 'unknown');
  t.is(server.requests.length, 4, 'retry.attempts requests');
  t.is(err.attempts, 4);
});

test('reads retry a 503 until it succeeds; refusals are not retried', async (t) => {
  const server = await scripted(t, (req, res, n) => {
    if (req.url!.endsWith('/bad')) return json(res, 400, error('KVMESH_ERR_HTTP_BAD_REQUEST', 'bad'));
    if (n === 1) return json(res, 503, error('KVMESH_ERR_KV_QUORUM', 'one of two'));
    res.writeHead(200, { 'content-type': 'text/plain', etag: '"01a1fcbaea85-0000-s"', 'content-length': 5 });
    res.end('hello');
  });
  const c = client(t, [server.url]);
  const got = await c.get('k');
  t.is(got?.value.toString(), 'hello');
  t.is(got?.contentType, 'text/plain');
  t.is(server.requests.length, 2);
  const bad = (await t.throwsAsync(c.put('bad', 'v'))) as KvClientError;
  t.is(bad.code, 'KVMESH_ERR_HTTP_BAD_REQUEST');
  t.is(bad.outcome, 'not-applied');
  t.is(server.requests.length, 3, 'the 400 was not retried');
});

test('a connection refused moves the request to the next seed at once, whatever its kind', async (t) => {
  const dead = await scripted(t, created);
  const deadUrl = dead.url;
  await dead.close();
  const live = await scripted(t, created);
  const c = client(t, [deadUrl, live.url], { routing: false });
  // The first any-node request goes to the first seed in turn; it refuses the connection.
  for (let i = 0; i < 3; i++) t.true((await c.put(`k${i}`, 'v', { ifNoneMatch: '*' })).created);
  t.is(live.requests.length, 3);
  t.true(c.stats().failovers >= 1);
  t.is(c.stats().retries, 0, 'no backoff: nothing was sent to the dead node');
});

test('a call that gets no answer in its timeout fails with KVMESH_ERR_CLIENT_TIMEOUT, a write with outcome unknown', async (t) => {
  const server = await scripted(t, () => undefined); // never answers
  const c = client(t, [server.url]);
  const started = performance.now();
  const err = (await t.throwsAsync(c.put('k', 'v', { timeoutMs: 300 }))) as KvClientError;
  const elapsed = performance.now() - started;
  t.is(err.code, 'KVMESH_ERR_CLIENT_TIMEOUT');
  t.is(err.outcome, 'unknown');
  t.log(`timed out after ${elapsed.toFixed(0)} ms (timeout 300 ms)`);
  t.true(elapsed >= 290 && elapsed < 5_000);
});

test("the caller's AbortSignal stops a call with KVMESH_ERR_CLIENT_ABORTED, during a backoff too", async (t) => {
  const server = await scripted(t, (_req, res) =>
    json(res, 503, error('KVMESH_ERR_HTTP_NOT_READY', 'starting'), { 'retry-after': '30' }),
  );
  const c = client(t, [server.url]);
  const controller = new AbortController();
  const call = c.get('k', { signal: controller.signal });
  await waitUntil(() => server.requests.length === 1);
  controller.abort();
  const err = (await t.throwsAsync(call)) as KvClientError;
  t.is(err.code, 'KVMESH_ERR_CLIENT_ABORTED');
  t.is(err.outcome, undefined, 'a read has no outcome to report');
  const closed = await t.throwsAsync(
    (async () => {
      await c.close();
      return c.get('k');
    })(),
  );
  t.true(isKvClientError(closed, 'KVMESH_ERR_CLIENT_CLOSED'));
});

test('backoff is exponential with full jitter, capped, and never shorter than Retry-After', (t) => {
  const options = { attempts: 10, baseDelayMs: 100, maxDelayMs: 1_000 };
  t.is(
    backoffMs(1, options, undefined, () => 0.999),
    99,
  );
  t.is(
    backoffMs(3, options, undefined, () => 0.999),
    399,
  );
  t.is(
    backoffMs(8, options, undefined, () => 0.999),
    999,
    'capped at maxDelayMs',
  );
  t.is(
    backoffMs(3, options, undefined, () => 0),
    0,
    'jitter reaches down to 0',
  );
  t.is(
    backoffMs(1, options, 1_500, () => 0.5),
    1_500,
  );
  t.is(retryAfterMs('2'), 2_000);
  t.is(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6_000);
  t.is(retryAfterMs('soon'), undefined);
});

async function waitUntil(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
