import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import {
  SystemClock,
  SystemRandom,
  VirtualClock,
  runTransportConformance,
  silentLogger,
  type Clock,
  type TransportHandler,
} from '@kvmesh/core';
import { UDP_TRANSPORT_DEFAULTS, UdpTransport, udpTransport, type UdpTransportOptions } from '../../src/index.js';
import { freeTcpPort, freeUdpPort, until } from './loopback.js';
import { duplicatingRelay, type UdpRelay } from './udp-relay.js';

const systemClock = new SystemClock();
const components = (address: string, clock: Clock = systemClock) => ({
  node: { address },
  clock,
  random: new SystemRandom(),
  logger: silentLogger,
});
const reverse: TransportHandler = {
  onRequest: async (frame) => Uint8Array.from(frame).reverse(),
  onMessage: () => undefined,
};

let host = 0;

runTransportConformance(test, {
  title: 'udp transport',
  duplicates: true,
  setup: async () => {
    const relays: UdpRelay[] = [];
    return {
      // 1 MiB frames, as the http transport's suite: the largest cases compare every byte.
      create: (address) =>
        new UdpTransport(components(address?.slice('udp://'.length) ?? `127.0.0.${1 + (host++ % 2)}:0`), {
          maxFrameBytes: 1 << 20,
        }),
      unreachableAddress: `udp://127.0.0.1:${await freeUdpPort()}`,
      duplicating: async (target) => {
        const relay = await duplicatingRelay(target.address);
        relays.push(relay);
        return relay.address;
      },
      cleanup: async () => {
        for (const relay of relays) await relay.close();
      },
    };
  },
});

async function started(
  t: ExecutionContext,
  options: Partial<UdpTransportOptions> = {},
  handler: TransportHandler = reverse,
  clock?: Clock,
): Promise<UdpTransport> {
  const transport = new UdpTransport(components('127.0.0.1:0', clock), options);
  t.teardown(() => transport.stop());
  transport.setHandler(handler);
  await transport.start();
  return transport;
}

async function rawSend(port: number, datagrams: Uint8Array[]): Promise<void> {
  const socket = createSocket('udp4');
  for (const d of datagrams) {
    await new Promise<void>((resolve, reject) =>
      socket.send(d, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
    );
  }
  await new Promise<void>((resolve) => socket.close(resolve));
}

const header = (magic0: number, magic1: number, version: number, kind: number, id: number) => {
  const out = new Uint8Array(8);
  out.set([magic0, magic1, version, kind]);
  new DataView(out.buffer).setUint32(4, id);
  return out;
};

test('garbage datagrams are counted and dropped, and the transport keeps working', async (t) => {
  const b = await started(t);
  const port = Number(new URL(b.address).port);
  const garbage = [
    new Uint8Array(0),
    Uint8Array.of(0x4b, 0x56, 1),
    header(0x00, 0x56, 1, 1, 7),
    header(0x4b, 0x56, 9, 1, 7),
    header(0x4b, 0x56, 1, 0, 7),
    header(0x4b, 0x56, 1, 200, 7),
    new Uint8Array(500).fill(0xff),
  ];
  await rawSend(port, garbage);
  await until(() => b.stats().malformed === garbage.length);
  const a = await started(t);
  t.deepEqual(await a.request(b.address, Uint8Array.of(1, 2, 3), { timeoutMs: 5000 }), Uint8Array.of(3, 2, 1));
  t.is(b.stats().malformed, garbage.length);
});

test('responses nobody asked for are counted as unmatched and ignored', async (t) => {
  const a = await started(t);
  const port = Number(new URL(a.address).port);
  const forged = new Uint8Array(10);
  forged.set(header(0x4b, 0x56, 1, 2, 12345));
  await rawSend(port, [forged]);
  await until(() => a.stats().unmatched === 1);
  t.is(a.stats().malformed, 0);
});

test('one-way frames are one datagram; requests and responses over one datagram take the stream lane', async (t) => {
  const a = await started(t, { maxDatagramBytes: 100 });
  const b = await started(t, { maxDatagramBytes: 100 });
  t.is(a.maxMessageBytes, 92);
  t.is(a.maxFrameBytes, UDP_TRANSPORT_DEFAULTS.maxFrameBytes);
  t.throws(() => a.send(b.address, new Uint8Array(93)), { code: 'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE' });
  const frame = Uint8Array.from({ length: 93 }, (_, i) => i);
  t.deepEqual(await a.request(b.address, frame, { timeoutMs: 5000 }), Uint8Array.from(frame).reverse());
  t.throws(() => new UdpTransport(components('127.0.0.1:0'), { maxDatagramBytes: 70_000 }), {
    instanceOf: RangeError,
  });
  t.throws(() => new UdpTransport(components('127.0.0.1:0'), { maxFrameBytes: 1000 }), { instanceOf: RangeError });
});

test('an answer over the responder maxFrameBytes fails the request with KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE', async (t) => {
  const b = await started(t, { maxFrameBytes: 65_536 }, { ...reverse, onRequest: async () => new Uint8Array(70_000) });
  const a = await started(t);
  await t.throwsAsync(a.request(b.address, Uint8Array.of(1), { timeoutMs: 5000 }), {
    code: 'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE',
  });
  await t.throwsAsync(a.request(b.address, new Uint8Array(5000), { timeoutMs: 5000 }), {
    code: 'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE',
  });
});

test('an answer over the requester maxFrameBytes fails the request with KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE', async (t) => {
  const b = await started(t, {}, { ...reverse, onRequest: async () => new Uint8Array(70_000) });
  const a = await started(t, { maxFrameBytes: 65_536 });
  await t.throwsAsync(a.request(b.address, Uint8Array.of(1), { timeoutMs: 5000 }), {
    code: 'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE',
  });
  await t.throwsAsync(a.request(b.address, new Uint8Array(5000), { timeoutMs: 5000 }), {
    code: 'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE',
  });
});

test('deadlines run on the injected clock', async (t) => {
  const clock = new VirtualClock();
  const a = await started(t, {}, reverse, clock);
  const silent = `udp://127.0.0.1:${await freeUdpPort()}`;
  let settled = false;
  const call = a.request(silent, Uint8Array.of(1), { timeoutMs: 60_000 }).finally(() => (settled = true));
  clock.advance(59_999);
  await new Promise(setImmediate);
  t.false(settled);
  clock.advance(1);
  await t.throwsAsync(call, { code: 'KVMESH_ERR_RPC_TIMEOUT' });
});

test('start fails with KVMESH_ERR_TRANSPORT_LISTEN when the port is taken', async (t) => {
  const a = await started(t);
  const twin = new UdpTransport(components(new URL(a.address).host));
  t.teardown(() => twin.stop());
  await t.throwsAsync(twin.start(), { code: 'KVMESH_ERR_TRANSPORT_LISTEN' });
});

test('start fails with KVMESH_ERR_TRANSPORT_LISTEN, freeing the UDP port, when the TCP port for the stream lane is taken', async (t) => {
  const port = await freeTcpPort();
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  const transport = new UdpTransport(components(`127.0.0.1:${port}`));
  t.teardown(() => transport.stop());
  const error = await t.throwsAsync(transport.start(), { code: 'KVMESH_ERR_TRANSPORT_LISTEN' });
  t.regex(error!.message, new RegExp(`TCP port ${port}`));
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, '127.0.0.1', () => resolve());
  });
  await new Promise<void>((resolve) => socket.close(resolve));
  t.pass();
});

test('port 0 picks a port free for both UDP and TCP', async (t) => {
  const a = await started(t);
  const b = await started(t);
  const port = Number(new URL(a.address).port);
  const probe = createServer();
  const taken = await new Promise<boolean>((resolve) => {
    probe.once('error', () => resolve(true));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(false)));
  });
  t.true(taken, 'the stream lane holds the TCP port of the same number');
  t.deepEqual(await a.request(b.address, new Uint8Array(4000), { timeoutMs: 5000 }), new Uint8Array(4000));
});

test('the manifest builds a transport named udp at udp://<node address>, with the limits it declares', async (t) => {
  t.is(udpTransport.name, 'udp');
  t.deepEqual([...udpTransport.needs].sort(), ['clock', 'config', 'logger', 'node', 'random']);
  const transport = await udpTransport.create(UDP_TRANSPORT_DEFAULTS)({
    ...components('127.0.0.3:7946'),
    node: { id: 'n1', address: '127.0.0.3:7946', role: 'storage', dataDir: '/tmp', configDir: '/tmp' },
    config: { limits: { maxValueBytes: 1024 * 1024, maxKeyBytes: 1024 } },
  });
  t.is(transport.address, 'udp://127.0.0.3:7946');
  t.is(transport.maxMessageBytes, 1192);
  t.is(transport.maxFrameBytes, 4 * 1024 * 1024);
  t.deepEqual(udpTransport.frameLimits, {
    maxMessageBytes: transport.maxMessageBytes,
    maxFrameBytes: transport.maxFrameBytes,
  });
});
