import { createSocket } from 'node:dgram';

export interface UdpRelay {
  /** `udp://host:port` of the relay: requests sent here reach the target. */
  readonly address: string;
  /** Datagrams the relay has sent to the target, copies included. */
  readonly forwarded: () => number;
  close(): Promise<void>;
}

/**
 * A UDP relay that sends every datagram a client gives it to `target`
 * `copies` times in a row, and every datagram from `target` once to the
 * client that last wrote: a network that duplicates requests. The target
 * sees the relay as the sender.
 */
export async function duplicatingRelay(target: string, copies = 2, host = '127.0.0.1'): Promise<UdpRelay> {
  const { hostname, port } = new URL(target);
  const socket = createSocket('udp4');
  let client: { address: string; port: number } | undefined;
  let forwarded = 0;
  socket.on('message', (msg, rinfo) => {
    if (rinfo.address === hostname && rinfo.port === Number(port)) {
      if (client) socket.send(msg, client.port, client.address);
      return;
    }
    client = { address: rinfo.address, port: rinfo.port };
    for (let i = 0; i < copies; i++) {
      forwarded++;
      socket.send(msg, Number(port), hostname);
    }
  });
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  return {
    address: `udp://${host}:${socket.address().port}`,
    forwarded: () => forwarded,
    close: () => new Promise<void>((resolve) => socket.close(resolve)),
  };
}
