import type { Clock, Logger, TransportHandler } from '@kvmesh/core';
import { HttpTransport } from '../http/http-transport.js';
import { formatHostPort, type HostPort } from '../host-port.js';
import { UDP_FAILURE, UDP_KIND, encodeDatagram } from './udp-frame.js';

/** URL path of the stream lane on every node. */
export const STREAM_PATH = '/_kvmesh/udp';

export interface StreamLaneOptions {
  /** Largest body either way: the largest frame plus the udp header. */
  readonly maxBodyBytes: number;
  readonly connectionsPerPeer: number;
  readonly idleTimeoutMs: number;
}

/** What the lane hands the udp transport. */
export interface StreamReceiver {
  /**
   * A body POSTed to the lane by `from` (`udp://host:port`, the sender's
   * own address); resolves with the body to answer. Must not reject.
   */
  onBody(body: Uint8Array, from: string): Promise<Uint8Array>;
  /** A one-way POST, which the lane never sends: not ours. */
  onStray(from: string): void;
}

/**
 * The stream lane of the udp transport: what does not fit in one datagram
 * travels as an HTTP/1.1 POST body to STREAM_PATH over TCP, at the same host
 * and port number as the datagram socket, which is the http transport's
 * wire, reused as it is. So the lane has that transport's properties:
 * keep-alive connections pooled per peer (`connectionsPerPeer`) and closed
 * after `idleTimeoutMs` idle; a body over `maxBodyBytes` refused (413) from
 * its declared length, before it is buffered; bytes that are not HTTP
 * answered 400 and the connection closed; deadlines and cancellation on the
 * injected Clock; and a node whose API server already holds the TCP port
 * serves the lane through that server (`Transport.hostHttp`), so one node
 * still needs one port number.
 *
 * Every body, both ways, starts with the udp header (udp-frame.ts); the
 * lane itself only moves bytes and names senders by their udp address.
 */
export function createStreamLane(
  bind: HostPort,
  components: { readonly clock: Clock; readonly logger: Logger },
  options: StreamLaneOptions,
  receiver: StreamReceiver,
): HttpTransport {
  const lane = new HttpTransport(
    { node: { address: formatHostPort(bind) }, clock: components.clock, logger: components.logger },
    {
      connectionsPerPeer: options.connectionsPerPeer,
      keepAliveTimeoutMs: options.idleTimeoutMs,
      maxFrameBytes: options.maxBodyBytes,
      path: STREAM_PATH,
    },
  );
  const handler: TransportHandler = {
    onRequest: (body, from) => receiver.onBody(body, udpPeer(from)),
    onMessage: (_body, from) => receiver.onStray(udpPeer(from)),
  };
  lane.setHandler(handler);
  return lane;
}

/** The lane's URI for a peer at `peer`. */
export function laneUri(peer: HostPort): string {
  return `http://${formatHostPort(peer)}`;
}

/** The lane names a sender `http://host:port` (its own listening address); the udp transport names it `udp://host:port`. */
function udpPeer(from: string): string {
  return from.startsWith('http://') ? `udp://${from.slice('http://'.length)}` : from;
}

/**
 * Serves request `id` that came over the stream lane and resolves with the
 * body to answer: its response, or a failure frame when the handler
 * rejects or answers something unsendable. Never rejects.
 */
export async function serveOverStream(
  handler: TransportHandler | undefined,
  id: number,
  frame: Uint8Array,
  from: string,
  maxFrameBytes: number,
  logger: Logger,
): Promise<Uint8Array> {
  const failure = (reason: number): Uint8Array => encodeDatagram(UDP_KIND.failure, id, Uint8Array.of(reason));
  if (handler === undefined) return failure(UDP_FAILURE.handlerFailed);
  let response: Uint8Array;
  try {
    response = await handler.onRequest(frame, from);
  } catch (err) {
    logger.error({ err, from }, 'request handler failed');
    return failure(UDP_FAILURE.handlerFailed);
  }
  if (!(response instanceof Uint8Array)) {
    logger.error({ from }, 'request handler resolved with something other than bytes');
    return failure(UDP_FAILURE.handlerFailed);
  }
  if (response.length > maxFrameBytes) {
    logger.error({ from, bytes: response.length }, 'response over maxFrameBytes');
    return failure(UDP_FAILURE.responseTooLarge);
  }
  return encodeDatagram(UDP_KIND.response, id, response);
}
