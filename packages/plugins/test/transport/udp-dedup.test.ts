import { createSocket, type Socket } from 'node:dgram';
import test, { type ExecutionContext } from 'ava';
import {
  DEDUP_ENTRY_BYTES,
  RequestDedup,
  SystemClock,
  SystemRandom,
  VirtualClock,
  silentLogger,
  type TransportHandler,
} from '@kvmesh/core';
import { UDP_HEADER_BYTES, UdpTransport } from '../../src/index.js';
import { until } from './loopback.js';

const clock = new SystemClock();
const components = (address: string) => ({
  node: { address },
  clock,
  random: new SystemRandom(),
  logger: silentLogger,
});

const KIND = { request: 1, response: 2, failure: 4 } as const;

function datagram(kind: number, id: number, frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(UDP_HEADER_BYTES + frame.length);
  out.set([0x4b, 0x56, 1, kind]);
  new DataView(out.buffer).setUint32(4, id);
  out.set(frame, UDP_HEADER_BYTES);
  return out;
}

interface Received {
  kind: number;
  id: number;
  frame: Uint8Array;
}

/** A raw UDP socket that records every datagram it receives. */
async function rawPeer(
  t: ExecutionContext,
): Promise<{ socket: Socket; received: Received[]; send(d: Uint8Array, port: number): Promise<void> }> {
  const socket = createSocket('udp4');
  const received: Received[] = [];
  socket.on('message', (msg) =>
    received.push({ kind: msg[3]!, id: msg.readUInt32BE(4), frame: new Uint8Array(msg.subarray(UDP_HEADER_BYTES)) }),
  );
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => socket.close(resolve)));
  return {
    socket,
    received,
    send: (d, port) =>
      new Promise<void>((resolve, reject) =>
        socket.send(d, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
      ),
  };
}

async function server(
  t: ExecutionContext,
  handler: TransportHandler,
): Promise<{ transport: UdpTransport; port: number }> {
  const transport = new UdpTransport(components('127.0.0.1:0'));
  t.teardown(() => transport.stop());
  transport.setHandler(handler);
  await transport.start();
  return { transport, port: Number(new URL(transport.address).port) };
}

test('the same request datagram sent twice runs the handler once, and both copies get its answer', async (t) => {
  let calls = 0;
  const { transport, port } = await server(t, {
    onRequest: async (frame) => {
      calls++;
      return Uint8Array.from(frame).reverse();
    },
    onMessage: () => undefined,
  });
  const peer = await rawPeer(t);
  const request = datagram(KIND.request, 777, Uint8Array.of(1, 2, 3));
  await peer.send(request, port);
  await peer.send(request, port);
  await until(() => peer.received.length === 2);
  t.is(calls, 1);
  for (const answer of peer.received)
    t.deepEqual(answer, { kind: KIND.response, id: 777, frame: Uint8Array.of(3, 2, 1) });
  t.is(transport.stats().duplicates, 1);
});

test('a copy that arrives while the first is being handled waits for its answer instead of running again', async (t) => {
  let calls = 0;
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  t.teardown(() => release());
  const { transport, port } = await server(t, {
    onRequest: async (frame) => {
      calls++;
      await held;
      return frame;
    },
    onMessage: () => undefined,
  });
  const peer = await rawPeer(t);
  const request = datagram(KIND.request, 42, Uint8Array.of(9));
  await peer.send(request, port);
  await until(() => calls === 1);
  await peer.send(request, port);
  await until(() => transport.stats().duplicates === 1);
  t.is(peer.received.length, 0);
  release();
  await until(() => peer.received.length === 2);
  t.is(calls, 1);
  t.true(peer.received.every((r) => r.kind === KIND.response && r.id === 42 && r.frame[0] === 9));
});

test('requests are told apart by sender and id: another id or another sender runs the handler', async (t) => {
  const seen: string[] = [];
  const { port } = await server(t, {
    onRequest: async (frame, from) => {
      seen.push(`${frame[0]} ${from}`);
      return frame;
    },
    onMessage: () => undefined,
  });
  const first = await rawPeer(t);
  const second = await rawPeer(t);
  await first.send(datagram(KIND.request, 1, Uint8Array.of(1)), port);
  await first.send(datagram(KIND.request, 2, Uint8Array.of(2)), port);
  await second.send(datagram(KIND.request, 1, Uint8Array.of(3)), port);
  await until(() => first.received.length === 2 && second.received.length === 1);
  t.is(seen.length, 3);
  t.deepEqual(
    second.received.map((r) => r.frame[0]),
    [3],
  );
});

test('a copy of a request whose answer went over the stream gets no answer, and the handler ran once', async (t) => {
  let calls = 0;
  const { transport, port } = await server(t, {
    onRequest: async (frame) => {
      calls++;
      return frame[0] === 1 ? new Uint8Array(5000) : frame;
    },
    onMessage: () => undefined,
  });
  const peer = await rawPeer(t);
  const large = datagram(KIND.request, 10, Uint8Array.of(1));
  await peer.send(large, port);
  // The raw peer has no stream lane, so the pushed answer fails and a failure datagram says so.
  await until(() => peer.received.length === 1);
  t.deepEqual(peer.received[0], { kind: KIND.failure, id: 10, frame: Uint8Array.of(3) });
  await peer.send(large, port);
  await until(() => transport.stats().duplicates === 1);
  // Datagrams from one sender are served in order: the answer to this one comes after any to the copy.
  await peer.send(datagram(KIND.request, 11, Uint8Array.of(2)), port);
  await until(() => peer.received.length === 2);
  t.deepEqual(peer.received[1], { kind: KIND.response, id: 11, frame: Uint8Array.of(2) });
  t.is(calls, 2);
});

test('a copy of a request whose handler failed is answered with a failure again, without running it', async (t) => {
  let calls = 0;
  const { port } = await server(t, {
    onRequest: async () => {
      calls++;
      throw new Error('refused on purpose');
    },
    onMessage: () => undefined,
  });
  const peer = await rawPeer(t);
  const request = datagram(KIND.request, 5, Uint8Array.of(1));
  await peer.send(request, port);
  await peer.send(request, port);
  await until(() => peer.received.length === 2);
  t.is(calls, 1);
  t.true(peer.received.every((r) => r.kind === KIND.failure && r.id === 5));
});

test('RequestDedup forgets a request after its window, on the injected clock', async (t) => {
  const virtual = new VirtualClock();
  const dedup = new RequestDedup({ clock: virtual, windowMs: 1000, maxBytes: 1 << 20, maxResponseBytes: 64 });
  let calls = 0;
  const handle = async (): Promise<Uint8Array> => (calls++, Uint8Array.of(calls));
  t.false(dedup.deliver('p', 1, handle).duplicate);
  await Promise.resolve();
  await new Promise(setImmediate);
  const copy = dedup.deliver('p', 1, handle);
  t.true(copy.duplicate);
  t.deepEqual(await copy.answer, Uint8Array.of(1));
  virtual.advance(999);
  t.true(dedup.deliver('p', 1, handle).duplicate);
  virtual.advance(2);
  t.false(dedup.deliver('p', 1, handle).duplicate, 'past the window a copy is served as new');
  t.is(calls, 2);
});

test('RequestDedup keeps its memory under maxBytes, forgetting the oldest first, and keeps no large answers', async (t) => {
  const dedup = new RequestDedup({ clock, windowMs: 60_000, maxBytes: 64 * 1024, maxResponseBytes: 100 });
  for (let id = 0; id < 10_000; id++) await dedup.deliver('p', id, async () => new Uint8Array(100)).answer;
  await new Promise(setImmediate);
  const most = Math.floor((64 * 1024) / (DEDUP_ENTRY_BYTES + 100));
  t.true(dedup.size <= most, `${dedup.size} remembered, at most ${most}`);
  t.true(dedup.deliver('p', 9_999, async () => new Uint8Array(0)).duplicate, 'the newest are remembered');
  t.false(dedup.deliver('p', 0, async () => new Uint8Array(0)).duplicate, 'the oldest were forgotten');

  const large = await dedup.deliver('q', 1, async () => new Uint8Array(101)).answer;
  t.is(large?.length, 101);
  await new Promise(setImmediate);
  const copy = dedup.deliver('q', 1, async () => new Uint8Array(0));
  t.true(copy.duplicate);
  t.is(await copy.answer, undefined, 'an answer over maxResponseBytes is not kept');
});
