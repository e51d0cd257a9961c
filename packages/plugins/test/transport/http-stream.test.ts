import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { HttpTransport } from '../../src/index.js';
import { components, reverse, started } from './http-peers.js';

// The http transport's frame stream: one multiplexed connection per peer
// (CONNECT, then length-prefixed frames), and its fallback to POSTs.

/**
 * A transport served through a host server that counts its connections and
 * the requests it saw; `connectHook` false leaves CONNECT unhandled (as a
 * host that knows no frame stream).
 */
async function hosted(t: ExecutionContext, connectHook: boolean, startingConnects = 0) {
  const seen = { connections: 0, posts: 0, starting: 0 };
  const transport = new HttpTransport(components('127.0.0.1:0'));
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.posts++;
    if (!transport.handleHttp(req, res)) res.end('host');
  });
  server.on('connection', () => seen.connections++);
  if (connectHook) {
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // As a node still starting answers: the stream exists, just not yet.
      if (seen.starting < startingConnects) {
        seen.starting++;
        socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      if (!transport.handleConnect(req, socket, head)) socket.destroy();
    });
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    await transport.stop();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  transport.serveThroughHost(`127.0.0.1:${(server.address() as { port: number }).port}`);
  transport.setHandler(reverse);
  await transport.start();
  return { transport, seen };
}

/** Opens a frame stream by hand and resolves with the socket and the CONNECT answer's head. */
async function rawStream(port: number, path = '/_kvmesh/rpc'): Promise<{ socket: Socket; head: string }> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nx-kvmesh-stream: ${path}\r\n\r\n`);
  const head = await new Promise<string>((resolve) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n\r\n')) {
        socket.off('data', onData);
        resolve(text);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => resolve(text));
  });
  return { socket, head };
}

function frame(kind: number, id: number, payload: Uint8Array, declared = payload.length): Buffer {
  const header = Buffer.alloc(9);
  header.writeUInt32BE(5 + declared, 0);
  header[4] = kind;
  header.writeUInt32BE(id, 5);
  return Buffer.concat([header, payload]);
}

/** Reads frames off a raw stream until `count` arrived. */
function readFrames(socket: Socket, count: number): Promise<Array<{ kind: number; id: number; payload: Buffer }>> {
  return new Promise((resolve) => {
    let buffered = Buffer.alloc(0);
    const out: Array<{ kind: number; id: number; payload: Buffer }> = [];
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 9 && buffered.length >= 4 + buffered.readUInt32BE(0)) {
        const length = buffered.readUInt32BE(0);
        out.push({ kind: buffered[4]!, id: buffered.readUInt32BE(5), payload: buffered.subarray(9, 4 + length) });
        buffered = buffered.subarray(4 + length);
      }
      if (out.length >= count) {
        socket.off('data', onData);
        resolve(out);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => resolve(out));
  });
}

test('concurrent requests to one peer share one connection and each gets its own answer', async (t) => {
  const b = await hosted(t, true);
  const a = await started(t);
  const answers = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      a.request(b.transport.address, Uint8Array.of(i % 256, 7, i >> 8), { timeoutMs: 5000 }),
    ),
  );
  answers.forEach((answer, i) => t.deepEqual(answer, Uint8Array.of(i >> 8, 7, i % 256)));
  t.is(b.seen.connections, 1, 'one connection carried every request');
  t.is(b.seen.posts, 0, 'no request went as a POST');
});

test('one-way frames ride the stream too', async (t) => {
  const got: Array<{ frame: Uint8Array; from: string }> = [];
  const b = await started(t, {}, { ...reverse, onMessage: (frame, from) => got.push({ frame, from }) });
  const a = await started(t);
  for (let i = 0; i < 5; i++) a.send(b.address, Uint8Array.of(i));
  await waitFor(() => got.length === 5);
  t.deepEqual(
    got.map((g) => g.frame[0]),
    [0, 1, 2, 3, 4],
  );
  t.true(
    got.every((g) => g.from === a.address),
    'the sender is the peer address it announced',
  );
});

test('a peer whose host takes no CONNECT gets POSTs, and still every answer', async (t) => {
  const b = await hosted(t, false);
  const a = await started(t);
  for (let i = 0; i < 3; i++) {
    t.deepEqual(await a.request(b.transport.address, Uint8Array.of(i, 9), { timeoutMs: 5000 }), Uint8Array.of(9, i));
  }
  t.is(b.seen.posts, 3);
});

test('a peer that answers CONNECT 503 while it starts gets a stream once it runs, not POSTs for a minute', async (t) => {
  const b = await hosted(t, true, 1);
  const a = await started(t);
  const first = await a.request(b.transport.address, Uint8Array.of(1, 2), { timeoutMs: 5000 }).then(
    () => 'answered',
    (err: { code?: string }) => err.code,
  );
  t.is(first, 'KVMESH_ERR_TRANSPORT_UNREACHABLE', 'the request to a starting peer fails as unreachable');
  for (let i = 0; i < 3; i++) {
    t.deepEqual(await a.request(b.transport.address, Uint8Array.of(i, 7), { timeoutMs: 5000 }), Uint8Array.of(7, i));
  }
  t.is(b.seen.starting, 1);
  t.is(b.seen.posts, 0, 'every later request went over the stream');
});

test('a request sent as a peer restarts goes to the new process, not into the closed connection', async (t) => {
  const a = await started(t);
  let b = await started(t);
  const address = b.address;
  t.deepEqual(await a.request(address, Uint8Array.of(1, 2), { timeoutMs: 5000 }), Uint8Array.of(2, 1));
  await b.stop();
  b = new HttpTransport(components(address.slice('http://'.length)));
  t.teardown(() => b.stop());
  b.setHandler(reverse);
  await b.start();
  t.deepEqual(await a.request(address, Uint8Array.of(3, 4), { timeoutMs: 5000 }), Uint8Array.of(4, 3));
});

test('a frame over maxFrameBytes is answered TooLarge and the stream goes on', async (t) => {
  let calls = 0;
  const b = await started(t, { maxFrameBytes: 1024 }, { ...reverse, onRequest: async (f) => (calls++, f) });
  const port = Number(new URL(b.address).port);
  const { socket, head } = await rawStream(port);
  t.teardown(() => socket.destroy());
  t.regex(head, /^HTTP\/1\.1 200 /);
  const answers = readFrames(socket, 2);
  socket.write(frame(1, 7, Buffer.alloc(5000, 1)));
  socket.write(frame(1, 8, Buffer.from('ok')));
  const [tooLarge, fine] = await answers;
  t.deepEqual([tooLarge!.kind, tooLarge!.id], [5, 7]);
  t.deepEqual([fine!.kind, fine!.id, fine!.payload.toString()], [2, 8, 'ok']);
  t.is(calls, 1, 'the oversized request never reached the handler');
});

test('garbage on a stream closes that connection only; the server keeps serving', async (t) => {
  const b = await started(t);
  const port = Number(new URL(b.address).port);
  const { socket } = await rawStream(port);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(Buffer.from([0, 0, 0, 1, 0xff, 0xff, 0xff]));
  await closed;
  t.pass('the server closed the garbage stream');
  const a = await started(t);
  t.deepEqual(await a.request(b.address, Uint8Array.of(1, 2), { timeoutMs: 5000 }), Uint8Array.of(2, 1));
});

test('a CONNECT for another path, or one before start, is refused', async (t) => {
  const b = await started(t);
  const port = Number(new URL(b.address).port);
  const other = await rawStream(port, '/somewhere-else');
  other.socket.destroy();
  t.regex(other.head, /^HTTP\/1\.1 405 /);
  const early = new HttpTransport(components('127.0.0.1:0'));
  t.teardown(() => early.stop());
  const server = createServer();
  server.on('connect', (req: IncomingMessage, socket: Duplex, h: Buffer) => {
    if (!early.handleConnect(req, socket, h)) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const refused = await rawStream((server.address() as { port: number }).port);
  refused.socket.destroy();
  t.regex(refused.head, /^HTTP\/1\.1 503 /);
});

test('a handler failure answers that request only, as unreachable', async (t) => {
  const b = await started(
    t,
    {},
    {
      ...reverse,
      onRequest: async (f) => {
        if (f[0] === 0) throw new Error('boom');
        return f;
      },
    },
  );
  const a = await started(t);
  await t.throwsAsync(a.request(b.address, Uint8Array.of(0), { timeoutMs: 5000 }), {
    code: 'KVMESH_ERR_TRANSPORT_UNREACHABLE',
  });
  t.deepEqual(await a.request(b.address, Uint8Array.of(1), { timeoutMs: 5000 }), Uint8Array.of(1));
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setImmediate(resolve));
  }
}
