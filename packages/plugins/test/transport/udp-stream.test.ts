import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import test, { type ExecutionContext } from 'ava';
import { SystemClock, SystemRandom, silentLogger, type TransportHandler } from '@kvmesh/core';
import { UDP_HEADER_BYTES, UDP_STREAM_PATH, UdpTransport, type UdpTransportOptions } from '../../src/index.js';
import { rawHttp, until } from './loopback.js';
import { portReleased, sameBytes } from './udp-ports.js';

const clock = new SystemClock();
const components = (address: string) => ({
  node: { address },
  clock,
  random: new SystemRandom(),
  logger: silentLogger,
});
const KIB = 1024;
const MIB = 1024 * KIB;

/** Bytes that differ at every position, so a shifted or truncated copy never passes. */
function pattern(length: number, salt = 0): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + salt + (i >> 8)) & 0xff;
  return out;
}

/** A handler that counts requests and answers with `answer(frame)` (the frame itself by default). */
function counting(answer: (frame: Uint8Array) => Uint8Array = (frame) => frame) {
  const seen: Array<{ bytes: number; from: string }> = [];
  const handler: TransportHandler = {
    onRequest: async (frame, from) => {
      seen.push({ bytes: frame.length, from });
      return answer(frame);
    },
    onMessage: () => undefined,
  };
  return { seen, handler };
}

async function started(
  t: ExecutionContext,
  handler: TransportHandler,
  options: Partial<UdpTransportOptions> = {},
  address = '127.0.0.1:0',
): Promise<UdpTransport> {
  const transport = new UdpTransport(components(address), options);
  t.teardown(() => transport.stop());
  transport.setHandler(handler);
  await transport.start();
  return transport;
}

const portOf = (transport: UdpTransport): number => Number(new URL(transport.address).port);

for (const size of [100 * KIB, 1 * MIB]) {
  test(`a request and a response of ${size / KIB} KiB travel over the stream lane`, async (t) => {
    const b = counting((frame) => Uint8Array.from(frame).reverse());
    const server = await started(t, b.handler, {}, '127.0.0.2:0');
    const client = await started(t, counting().handler);
    const frame = pattern(size, 1);
    const began = performance.now();
    const response = await client.request(server.address, frame, { timeoutMs: 30_000 });
    t.log(`${size} bytes each way in ${(performance.now() - began).toFixed(1)} ms`);
    t.true(sameBytes(response, Uint8Array.from(frame).reverse()));
    t.deepEqual(b.seen, [{ bytes: size, from: client.address }]);
  });

  test(`a small request gets a response of ${size / KIB} KiB, pushed over the stream lane`, async (t) => {
    const large = pattern(size, 2);
    const b = counting(() => large);
    const server = await started(t, b.handler, {}, '127.0.0.2:0');
    const client = await started(t, counting().handler);
    const began = performance.now();
    const response = await client.request(server.address, Uint8Array.of(7), { timeoutMs: 30_000 });
    t.log(`${size}-byte response to a 1-byte request in ${(performance.now() - began).toFixed(1)} ms`);
    t.true(sameBytes(response, large));
    t.deepEqual(b.seen, [{ bytes: 1, from: client.address }]);
    t.is(client.stats().unmatched, 0);
  });
}

test('concurrent large and small requests to one peer each get their own answer', async (t) => {
  const b = counting((frame) => (frame.length === 1 ? pattern(200 * KIB, frame[0]) : frame.subarray(0, 8)));
  const server = await started(t, b.handler);
  const client = await started(t, counting().handler);
  const frames = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? Uint8Array.of(i) : pattern(50 * KIB + i, i)));
  const answers = await Promise.all(frames.map((f) => client.request(server.address, f, { timeoutMs: 30_000 })));
  answers.forEach((answer, i) => {
    const expected = i % 2 === 0 ? pattern(200 * KIB, i) : frames[i]!.subarray(0, 8);
    t.true(sameBytes(answer, expected), `answer ${i}`);
  });
  t.is(b.seen.length, frames.length);
});

async function listening(t: ExecutionContext, server: Server, host = '127.0.0.1'): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `${host}:${(server.address() as { port: number }).port}`;
}

test('served through a host HTTP server, the stream lane shares its port and the datagram socket its number', async (t) => {
  const b = counting((frame) => (frame.length === 1 ? pattern(300 * KIB, 5) : frame.subarray(0, 4)));
  const transport = new UdpTransport(components('127.0.0.1:0'));
  t.teardown(() => transport.stop());
  transport.setHandler(b.handler);
  let offered = 0;
  const server = createHttpServer((req, res) => {
    if (req.url!.startsWith(hosted.pathPrefix)) {
      offered++;
      if (hosted.handle(req, res)) return;
    }
    res.end('host');
  });
  const hostPort = await listening(t, server);
  const hosted = transport.hostHttp(hostPort);
  t.is(hosted.pathPrefix, UDP_STREAM_PATH);
  t.is(transport.address, `udp://${hostPort}`);
  await transport.start();
  t.is(transport.address, `udp://${hostPort}`);

  const peer = await started(t, counting(() => pattern(250 * KIB, 9)).handler, {}, '127.0.0.2:0');
  const large = pattern(400 * KIB, 3);
  t.true(sameBytes(await peer.request(transport.address, large, { timeoutMs: 30_000 }), large.subarray(0, 4)));
  t.true(
    sameBytes(await peer.request(transport.address, Uint8Array.of(1), { timeoutMs: 30_000 }), pattern(300 * KIB, 5)),
  );
  t.is(offered, 1, 'the large request came through the host (the large answer went to the peer own lane)');
  // The hosted side's own large request, and a large answer pushed back to it through the host.
  t.true(sameBytes(await transport.request(peer.address, large, { timeoutMs: 30_000 }), pattern(250 * KIB, 9)));
  t.true(
    sameBytes(await transport.request(peer.address, Uint8Array.of(2), { timeoutMs: 30_000 }), pattern(250 * KIB, 9)),
  );
  t.is(offered, 2, 'the answer pushed to the hosted side came through the host');
  const [host, port] = hostPort.split(':') as [string, string];
  t.regex(await rawHttp(host, Number(port), (s) => s.write('GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n')), /host$/);
  await transport.stop();
  t.regex(
    await rawHttp(host, Number(port), (s) =>
      s.write(`POST ${UDP_STREAM_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`),
    ),
    /^HTTP\/1\.1 503 /,
    'a stopped transport refuses its own path while the host still serves',
  );
});

/** POSTs `body` to the stream lane at `port` and resolves with the status and the body of the answer. */
function post(port: number, body: Uint8Array, host = '127.0.0.1'): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host, port, method: 'POST', path: UDP_STREAM_PATH, headers: { 'content-length': body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('garbage on the stream port is refused and counted, and the transport keeps serving', async (t) => {
  const b = counting();
  const server = await started(t, b.handler);
  const port = portOf(server);
  // Not HTTP at all: 400 and the connection closed.
  t.regex(
    await rawHttp('127.0.0.1', port, (s) => s.write(Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 0, 1, 2, 3]))),
    /^HTTP\/1\.1 400 /,
  );
  // A length far over maxFrameBytes: 413 from the header alone, the body never read.
  t.regex(
    await rawHttp('127.0.0.1', port, (s) =>
      s.write(`POST ${UDP_STREAM_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 4294967296\r\n\r\nabc`),
    ),
    /^HTTP\/1\.1 413 /,
  );
  // HTTP, but not a udp transport frame: answered with a failure frame, nothing handled.
  for (const body of [new Uint8Array(0), Uint8Array.of(1, 2, 3), new Uint8Array(UDP_HEADER_BYTES + 4).fill(0xee)]) {
    const answer = await post(port, body);
    t.is(answer.status, 200);
    t.is(answer.body[3], 4, 'a failure frame');
  }
  // A forged response for a request never made.
  const forged = new Uint8Array(UDP_HEADER_BYTES + 3);
  forged.set([0x4b, 0x56, 1, 2, 0, 0, 0x30, 0x39]);
  t.is((await post(port, forged)).status, 200);
  t.is(server.stats().malformed, 3);
  t.is(server.stats().unmatched, 1);
  t.is(b.seen.length, 0);
  const client = await started(t, counting().handler);
  const large = pattern(64 * KIB, 4);
  t.true(sameBytes(await client.request(server.address, large, { timeoutMs: 10_000 }), large));
});

test('stop closes the datagram socket, the stream listener and the pooled connections, and a restart serves again', async (t) => {
  const b = counting();
  const server = await started(t, b.handler, {}, '127.0.0.2:0');
  const serverPort = portOf(server);
  let open = 0;
  // A peer that speaks the lane by hand, to watch the client's pooled connection.
  const peer = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const answer = Buffer.from(body.subarray(0, UDP_HEADER_BYTES + 4));
      answer[3] = 2;
      res.end(answer);
    });
  });
  peer.on('connection', (socket) => {
    open++;
    socket.on('close', () => open--);
  });
  const peerPort = Number((await listening(t, peer)).split(':')[1]);
  const client = await started(t, counting().handler);
  const clientPort = portOf(client);
  const large = pattern(10 * KIB, 6);
  t.true(
    sameBytes(await client.request(`udp://127.0.0.1:${peerPort}`, large, { timeoutMs: 10_000 }), large.subarray(0, 4)),
  );
  t.true(sameBytes(await client.request(server.address, large, { timeoutMs: 10_000 }), large));
  t.true(open >= 1, 'a connection stays open for the next large frame');

  await client.stop();
  await until(() => open === 0);
  t.true(await portReleased('127.0.0.1', clientPort), 'UDP and TCP ports are free again');
  await t.throwsAsync(client.request(server.address, large, { timeoutMs: 1000 }), {
    code: 'KVMESH_ERR_TRANSPORT_CLOSED',
  });

  await server.stop();
  t.true(await portReleased('127.0.0.2', serverPort));
  await server.start();
  t.is(portOf(server), serverPort, 'a restart listens on the same port');
  await client.start();
  t.true(sameBytes(await client.request(server.address, large, { timeoutMs: 10_000 }), large));
  t.deepEqual(await client.request(server.address, Uint8Array.of(1, 2), { timeoutMs: 10_000 }), Uint8Array.of(1, 2));
});

test('stop fails a large request in flight with KVMESH_ERR_TRANSPORT_CLOSED', async (t) => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  t.teardown(() => release());
  let arrived = 0;
  const server = await started(t, {
    onRequest: async (frame) => {
      arrived++;
      await held;
      return frame;
    },
    onMessage: () => undefined,
  });
  const client = await started(t, counting().handler);
  const call = client.request(server.address, pattern(20 * KIB), { timeoutMs: 30_000 });
  await until(() => arrived === 1);
  await client.stop();
  await t.throwsAsync(call, { code: 'KVMESH_ERR_TRANSPORT_CLOSED' });
});
