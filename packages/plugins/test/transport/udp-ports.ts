import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/** A port on `host` free for UDP and for TCP right now: where a udp transport (datagrams and stream lane) can listen. */
export async function freeUdpTcpPort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, host, resolve));
    const { port } = socket.address();
    const tcp = createServer();
    const free = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, host, () => resolve(true));
    });
    if (free) await new Promise<void>((resolve) => tcp.close(() => resolve()));
    await new Promise<void>((resolve) => socket.close(resolve));
    if (free) return port;
  }
  throw new Error(`no port free for UDP and TCP on ${host}`);
}

/** Resolves once `port` on `host` can be bound again for both UDP and TCP: nothing holds it. */
export async function portReleased(host: string, port: number): Promise<boolean> {
  const tcp = createServer();
  const tcpFree = await new Promise<boolean>((resolve) => {
    tcp.once('error', () => resolve(false));
    tcp.listen(port, host, () => resolve(true));
  });
  if (tcpFree) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  const socket = createSocket('udp4');
  const udpFree = await new Promise<boolean>((resolve) => {
    socket.once('error', () => resolve(false));
    socket.bind(port, host, () => resolve(true));
  });
  await new Promise<void>((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve();
    }
  });
  return tcpFree && udpFree;
}

/** Byte-for-byte equality without a structural diff, which is slow on megabytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
