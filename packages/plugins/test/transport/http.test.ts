import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import test, { type ExecutionContext } from 'ava';
import { runTransportConformance } from '@kvmesh/core';
import { HTTP_TRANSPORT_DEFAULTS, HttpTransport, httpTransport, type HttpTransportOptions } from '../../src/index.js';
import { components, reverse, started } from './http-peers.js';
import { freeTcpPort, rawHttp } from './loopback.js';

let host = 0;

runTransportConformance(test, {
  title: 'http transport',
  setup: async () => ({
    // Alternate loopback addresses so peers really are different hosts.
    create: (address) =>
      new HttpTransport(components(address?.slice('http://'.length) ?? `127.0.0.${1 + (host++ % 2)}:0`), {
        maxFrameBytes: 1 << 20,
      }),
    unreachableAddress: `http://127.0.0.1:${await freeTcpPort()}`,
  }),
});

const portOf = (transport: HttpTransport): number => Number(new URL(transport.address).port);

test('answers 413 to a body declared too large, without reading it, and keeps serving', async (t) => {
  let calls = 0;
  const b = await started(t, { maxFrameBytes: 64 * 1024 }, { ...reverse, onRequest: async (f) => (calls++, f) });
  const head = await rawHttp('127.0.0.1', portOf(b), (socket) => {
    socket.write(`POST ${b.path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n`);
    socket.write(Buffer.alloc(1024));
  });
  t.regex(head, /^HTTP\/1\.1 413 /);
  t.is(calls, 0);
  const a = await started(t);
  t.deepEqual(await a.request(b.address, Uint8Array.of(1, 2), { timeoutMs: 5000 }), Uint8Array.of(1, 2));
});

test('answers 413 to a chunked body as soon as it passes maxFrameBytes', async (t) => {
  let calls = 0;
  const b = await started(t, { maxFrameBytes: 64 * 1024 }, { ...reverse, onRequest: async (f) => (calls++, f) });
  const chunk = Buffer.alloc(16 * 1024, 7);
  let written = 0;
  const head = await rawHttp('127.0.0.1', portOf(b), (socket, answered) => {
    socket.write(`POST ${b.path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`);
    const pump = (): void => {
      if (answered() || socket.destroyed || written > 4 * 1024 * 1024) return;
      written += chunk.length;
      socket.write(`${chunk.length.toString(16)}\r\n`);
      socket.write(chunk);
      socket.write('\r\n', () => setImmediate(pump));
    };
    pump();
  });
  t.regex(head, /^HTTP\/1\.1 413 /);
  t.true(written < 1024 * 1024, `the server read ${written} bytes before refusing`);
  t.is(calls, 0);
});

test('garbage, wrong methods and unknown paths get 4xx and never crash the server', async (t) => {
  const b = await started(t);
  const port = portOf(b);
  t.regex(await rawHttp('127.0.0.1', port, (s) => s.write('GARBAGE\r\n\r\n')), /^HTTP\/1\.1 400 /);
  t.regex(
    await rawHttp('127.0.0.1', port, (s) =>
      s.write(`POST ${b.path} HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n`),
    ),
    /^HTTP\/1\.1 400 /,
  );
  t.regex(
    await rawHttp('127.0.0.1', port, (s) => s.write(Buffer.from([0, 1, 2, 255, 13, 10, 13, 10]))),
    /^(HTTP\/1\.1 400 |$)/,
  );
  t.regex(
    await rawHttp('127.0.0.1', port, (s) => s.write(`GET ${b.path} HTTP/1.1\r\nHost: x\r\n\r\n`)),
    /^HTTP\/1\.1 405 /,
  );
  t.regex(
    await rawHttp('127.0.0.1', port, (s) => s.write('POST /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n')),
    /^HTTP\/1\.1 404 /,
  );
  const a = await started(t);
  t.deepEqual(await a.request(b.address, Uint8Array.of(3, 4), { timeoutMs: 5000 }), Uint8Array.of(4, 3));
});

test('a response over the caller maxFrameBytes fails with KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE', async (t) => {
  const b = await started(t, {}, { ...reverse, onRequest: async () => new Uint8Array(200 * 1024) });
  const a = await started(t, { maxFrameBytes: 64 * 1024 });
  await t.throwsAsync(a.request(b.address, Uint8Array.of(1), { timeoutMs: 5000 }), {
    code: 'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE',
  });
});

/** A host server that gives the transport first pick of every request, counting TCP connections. */
async function hosted(t: ExecutionContext, options: Partial<HttpTransportOptions> = {}) {
  let connections = 0;
  const transport = new HttpTransport(components('127.0.0.1:0'), options);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (!transport.handleHttp(req, res)) res.end('host');
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    await transport.stop();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  transport.serveThroughHost(`127.0.0.1:${(server.address() as { port: number }).port}`);
  transport.setHandler(reverse);
  return { transport, server, connections: () => connections };
}

test('with stream false, keeps connections alive and reuses them, at most connectionsPerPeer per peer', async (t) => {
  const b = await hosted(t);
  await b.transport.start();
  const a = await started(t, { connectionsPerPeer: 2, stream: false });
  for (let i = 0; i < 20; i++) {
    t.deepEqual(await a.request(b.transport.address, Uint8Array.of(i, 1), { timeoutMs: 5000 }), Uint8Array.of(1, i));
  }
  t.true(b.connections() <= 2, `${b.connections()} connections for 20 requests in a row`);
  const burst = Array.from({ length: 20 }, (_, i) =>
    a.request(b.transport.address, Uint8Array.of(i), { timeoutMs: 5000 }),
  );
  await Promise.all(burst);
  t.true(b.connections() <= 2, `${b.connections()} connections`);
});

test('served by a host server, it binds nothing, leaves other paths to the host, and answers 503 until started', async (t) => {
  const b = await hosted(t);
  const port = Number(new URL(b.transport.address).port);
  t.regex(
    await rawHttp('127.0.0.1', port, (s) => s.write('GET /other HTTP/1.1\r\nHost: x\r\n\r\n')),
    /^HTTP\/1\.1 200 /,
  );
  t.regex(
    await rawHttp('127.0.0.1', port, (s) =>
      s.write(`POST ${b.transport.path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`),
    ),
    /^HTTP\/1\.1 503 /,
  );
  await b.transport.start();
  const a = await started(t);
  t.deepEqual(await a.request(b.transport.address, Uint8Array.of(5, 6), { timeoutMs: 5000 }), Uint8Array.of(6, 5));
  await b.transport.stop();
  await t.throwsAsync(a.request(b.transport.address, Uint8Array.of(5), { timeoutMs: 5000 }), {
    code: 'KVMESH_ERR_TRANSPORT_UNREACHABLE',
  });
});

test('start fails with KVMESH_ERR_TRANSPORT_LISTEN when the port is taken', async (t) => {
  const a = await started(t);
  const twin = new HttpTransport(components(new URL(a.address).host));
  t.teardown(() => twin.stop());
  await t.throwsAsync(twin.start(), { code: 'KVMESH_ERR_TRANSPORT_LISTEN' });
});

test('the manifest builds a transport named http at http://<node address>', async (t) => {
  t.is(httpTransport.family, 'transport');
  t.is(httpTransport.name, 'http');
  const transport = await httpTransport.create(HTTP_TRANSPORT_DEFAULTS)({
    ...components('127.0.0.3:4000'),
    node: { id: 'n1', address: '127.0.0.3:4000', role: 'storage', dataDir: '/tmp', configDir: '/tmp' },
  });
  t.is(transport.name, 'http');
  t.is(transport.address, 'http://127.0.0.3:4000');
  t.is(transport.maxFrameBytes, 16 * 1024 * 1024);
});
