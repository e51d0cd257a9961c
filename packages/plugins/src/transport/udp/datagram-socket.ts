import { createSocket, type Socket } from 'node:dgram';
import { isIP, isIPv6 } from 'node:net';
import { KvError, type Clock } from '@kvmesh/core';
import { formatHostPort, type HostPort } from '../host-port.js';

/**
 * Longest `stop()` waits for datagrams already handed to the socket. node:dgram
 * resolves the destination on a later tick and drops the datagram silently when
 * the socket closed meanwhile, so a goodbye sent just before stop would be lost.
 */
const SEND_FLUSH_TIMEOUT_MS = 1_000;

export interface Unsent {
  count: number;
  onFlushed: (() => void) | undefined;
}

/** Resolves once `unsent` drops to zero, or after SEND_FLUSH_TIMEOUT_MS. */
export function flushed(unsent: Unsent, clock: Clock): Promise<void> {
  if (unsent.count === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = clock.setTimeout(() => {
      unsent.onFlushed = undefined;
      resolve();
    }, SEND_FLUSH_TIMEOUT_MS);
    unsent.onFlushed = () => {
      timer.cancel();
      resolve();
    };
  });
}

/**
 * True when an answer from `actual` may be for a request sent to
 * `expected`: the same port, and the same host unless either is a name
 * rather than an IP (a name and the address it resolves to cannot be
 * compared here).
 */
export function samePeer(expected: HostPort, actual: HostPort): boolean {
  if (expected.port !== actual.port) return false;
  return isIP(expected.host) === 0 || isIP(actual.host) === 0 || expected.host === actual.host;
}

/**
 * A UDP socket bound at `bind` (port 0: any free port), exclusively, so two
 * transports never share a port.
 * @throws KvError KVMESH_ERR_TRANSPORT_LISTEN
 */
export function bindDatagramSocket(bind: HostPort): Promise<Socket> {
  const socket = createSocket({ type: isIPv6(bind.host) ? 'udp6' : 'udp4' });
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      socket.close();
      reject(
        new KvError(
          'KVMESH_ERR_TRANSPORT_LISTEN',
          `cannot listen at udp://${formatHostPort(bind)}: ${err.code ?? err.message}`,
          { cause: err },
        ),
      );
    };
    socket.once('error', onError);
    socket.bind({ address: bind.host, port: bind.port, exclusive: true }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}
