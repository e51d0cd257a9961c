import { createSocket } from 'node:dgram';
import { connect, createServer, type Socket } from 'node:net';

/** A TCP port on `host` that nothing listens on right now. */
export async function freeTcpPort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A UDP port on `host` that nothing listens on right now. */
export async function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

/**
 * Opens a raw TCP connection, lets `write` feed it, and resolves with
 * everything the server sent once it has sent a complete response head (or
 * closed the connection).
 */
export function rawHttp(
  host: string,
  port: number,
  write: (socket: Socket, answered: () => boolean) => void,
): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const socket = connect(port, host, () => write(socket, () => text.includes('\r\n\r\n')));
    const done = (): void => {
      socket.destroy();
      resolve(text);
    };
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n\r\n')) done();
    });
    socket.on('error', done);
    socket.on('close', done);
  });
}

/** Resolves once `condition()` holds, checking on every event-loop turn; rejects after `limitMs`. */
export async function until(condition: () => boolean, limitMs = 5000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > limitMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
