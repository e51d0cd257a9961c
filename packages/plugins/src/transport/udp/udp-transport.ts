import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP, isIPv6 } from 'node:net';
import {
  KvError,
  type Clock,
  type Logger,
  type NodeInfo,
  type Random,
  type RequestOptions,
  type Timer,
  type Transport,
  type TransportHandler,
} from '@kvmesh/core';
import { formatHostPort, parseHostPort, parseTransportUri, type HostPort } from '../host-port.js';
import { UDP_FAILURE, UDP_HEADER_BYTES, UDP_KIND, decodeDatagram, encodeDatagram, type UdpKind } from './udp-frame.js';

export interface UdpTransportOptions {
  /** Largest datagram sent, header included; frames are refused above `maxDatagramBytes - UDP_HEADER_BYTES`. */
  readonly maxDatagramBytes: number;
}

/**
 * 1200 bytes: the IPv6 minimum MTU (1280, RFC 8200 §5) minus the 40-byte IPv6
 * and 8-byte UDP headers leaves 1232, and QUIC (RFC 9000 §14) settles on
 * 1200 as the datagram size every path must carry. Below it no datagram is
 * fragmented on any standard path, so one lost fragment never loses a frame.
 */
export const UDP_TRANSPORT_DEFAULTS: UdpTransportOptions = Object.freeze({ maxDatagramBytes: 1200 });

/** Largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP). */
export const UDP_MAX_PAYLOAD_BYTES = 65_507;

/**
 * Longest `stop()` waits for datagrams already handed to the socket. node:dgram
 * resolves the destination on a later tick and drops the datagram silently when
 * the socket closed meanwhile, so a goodbye sent just before stop would be lost.
 */
const SEND_FLUSH_TIMEOUT_MS = 1_000;

export interface UdpTransportComponents {
  readonly node: Pick<NodeInfo, 'address'>;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
}

/** Datagrams this endpoint dropped, since start. */
export interface UdpTransportStats {
  /** Not a kvmesh datagram (too short, wrong magic, version or kind). */
  readonly malformed: number;
  /** A response or failure for no pending request (late, duplicated, or from the wrong peer). */
  readonly unmatched: number;
}

interface Pending {
  readonly peer: HostPort;
  readonly resolve: (frame: Uint8Array) => void;
  readonly reject: (err: KvError) => void;
  readonly timer: Timer;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/**
 * Frames in single UDP datagrams (node:dgram), each behind an 8-byte header
 * (see udp-frame.ts) whose 32-bit id pairs a response with its request.
 * Nothing is retransmitted: a lost request or response surfaces as
 * KVMESH_ERR_RPC_TIMEOUT at the caller's deadline (on the injected Clock), and
 * so does a peer that is down, since an unconnected UDP socket hears no
 * ICMP "port unreachable". Datagrams that are not ours are counted and
 * dropped. `address` is `udp://host:port`; port 0 picks a free port, named
 * by `address` once `start()` resolved.
 *
 * A response is accepted only from the host and port the request went to
 * (just the port when the request named a host by name, not IP).
 */
export class UdpTransport implements Transport {
  readonly name = 'udp';
  readonly maxFrameBytes: number;
  readonly maxMessageBytes: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private bind: HostPort;
  private handler: TransportHandler | undefined;
  private socket: Socket | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId: number;
  private malformed = 0;
  private unmatched = 0;
  /** Datagrams of the current socket handed to node:dgram whose send callback has not run yet. */
  private unsent: Unsent = { count: 0, onFlushed: undefined };
  private stopping: Promise<void> | undefined;

  constructor(components: UdpTransportComponents, options: Partial<UdpTransportOptions> = {}) {
    const { maxDatagramBytes } = { ...UDP_TRANSPORT_DEFAULTS, ...options };
    if (!Number.isInteger(maxDatagramBytes) || maxDatagramBytes <= UDP_HEADER_BYTES) {
      throw new RangeError(`maxDatagramBytes must be an integer > ${UDP_HEADER_BYTES} (found ${maxDatagramBytes})`);
    }
    if (maxDatagramBytes > UDP_MAX_PAYLOAD_BYTES) {
      throw new RangeError(`maxDatagramBytes must be at most ${UDP_MAX_PAYLOAD_BYTES} (found ${maxDatagramBytes})`);
    }
    this.maxFrameBytes = maxDatagramBytes - UDP_HEADER_BYTES;
    this.maxMessageBytes = this.maxFrameBytes;
    this.clock = components.clock;
    this.logger = components.logger.child({ transport: 'udp' });
    this.bind = parseHostPort(components.node.address, 'node address');
    // A random first id keeps a restarted node from matching responses meant for its previous run.
    this.nextId = components.random.int(2 ** 32);
  }

  get address(): string {
    return `udp://${formatHostPort(this.bind)}`;
  }

  stats(): UdpTransportStats {
    return { malformed: this.malformed, unmatched: this.unmatched };
  }

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  async start(): Promise<void> {
    if (this.socket !== undefined) return;
    // A restart waits until the previous socket closed and freed the port.
    await this.stopping;
    this.stopping = undefined;
    const socket = createSocket({ type: isIPv6(this.bind.host) ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        socket.close();
        reject(
          new KvError('KVMESH_ERR_TRANSPORT_LISTEN', `cannot listen at ${this.address}: ${err.code ?? err.message}`, {
            cause: err,
          }),
        );
      };
      socket.once('error', onError);
      socket.bind({ address: this.bind.host, port: this.bind.port, exclusive: true }, () => {
        socket.off('error', onError);
        resolve();
      });
    });
    socket.on('error', (err) => this.logger.warn({ err }, 'udp socket error'));
    socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    this.bind = { host: this.bind.host, port: socket.address().port };
    this.malformed = 0;
    this.unmatched = 0;
    this.socket = socket;
  }

  /** Fails pending requests, lets datagrams already sent leave (up to SEND_FLUSH_TIMEOUT_MS), then closes. */
  stop(): Promise<void> {
    const socket = this.socket;
    if (socket === undefined) return this.stopping ?? Promise.resolve();
    this.socket = undefined;
    for (const id of [...this.pending.keys()]) {
      this.settle(id, new KvError('KVMESH_ERR_TRANSPORT_CLOSED', `transport ${this.address} stopped`));
    }
    this.stopping = flushed(this.unsent, this.clock).then(
      () => new Promise<void>((resolve) => socket.close(() => resolve())),
    );
    this.unsent = { count: 0, onFlushed: undefined };
    return this.stopping;
  }

  async request(to: string, frame: Uint8Array, options: RequestOptions): Promise<Uint8Array> {
    const socket = this.checkOpen();
    const peer = parseTransportUri(to, 'udp');
    if (frame.length > this.maxFrameBytes) {
      throw new KvError(
        'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE',
        `request frame of ${frame.length} bytes exceeds maxFrameBytes ${this.maxFrameBytes} (one datagram)`,
      );
    }
    const { signal } = options;
    if (signal?.aborted) throw aborted(to);
    return new Promise((resolve, reject) => {
      const id = this.allocateId();
      const onAbort = (): void => this.settle(id, aborted(to));
      const timer = this.clock.setTimeout(
        () =>
          this.settle(
            id,
            new KvError('KVMESH_ERR_RPC_TIMEOUT', `no response from ${to} within ${options.timeoutMs} ms`),
          ),
        options.timeoutMs,
      );
      this.pending.set(id, { peer, resolve, reject, timer, signal, onAbort });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.transmit(socket, UDP_KIND.request, id, frame, peer, (err) =>
        this.settle(
          id,
          new KvError('KVMESH_ERR_TRANSPORT_UNREACHABLE', `cannot send to ${to}: ${errorCode(err)}`, { cause: err }),
        ),
      );
    });
  }

  send(to: string, frame: Uint8Array): void {
    const socket = this.checkOpen();
    const peer = parseTransportUri(to, 'udp');
    if (frame.length > this.maxMessageBytes) {
      throw new KvError(
        'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE',
        `message frame of ${frame.length} bytes exceeds maxMessageBytes ${this.maxMessageBytes} (one datagram)`,
      );
    }
    this.transmit(socket, UDP_KIND.message, 0, frame, peer);
  }

  private checkOpen(): Socket {
    if (this.socket === undefined) {
      throw new KvError('KVMESH_ERR_TRANSPORT_CLOSED', `transport ${this.address} is not started`);
    }
    return this.socket;
  }

  private allocateId(): number {
    do this.nextId = (this.nextId + 1) >>> 0;
    while (this.nextId === 0 || this.pending.has(this.nextId));
    return this.nextId;
  }

  private transmit(
    socket: Socket,
    kind: UdpKind,
    id: number,
    frame: Uint8Array,
    peer: HostPort,
    onError?: (err: Error) => void,
  ): void {
    const unsent = this.unsent;
    const sent = (): void => {
      unsent.count--;
      if (unsent.count === 0) unsent.onFlushed?.();
    };
    unsent.count++;
    try {
      socket.send(encodeDatagram(kind, id, frame), peer.port, peer.host, (err) => {
        sent();
        if (!err) return;
        if (onError) onError(err);
        else this.logger.debug({ err: errorCode(err), to: formatHostPort(peer) }, 'datagram not sent');
      });
    } catch (err) {
      sent();
      throw err;
    }
  }

  private onDatagram(msg: Buffer, rinfo: RemoteInfo): void {
    const datagram = decodeDatagram(msg);
    if (datagram === undefined) {
      this.malformed++;
      return;
    }
    const sender: HostPort = { host: rinfo.address, port: rinfo.port };
    const from = `udp://${formatHostPort(sender)}`;
    switch (datagram.kind) {
      case UDP_KIND.request:
        this.serve(datagram.id, datagram.frame, sender, from);
        return;
      case UDP_KIND.message:
        try {
          this.handler?.onMessage(datagram.frame, from);
        } catch (err) {
          this.logger.error({ err, from }, 'one-way message handler threw');
        }
        return;
      case UDP_KIND.response:
      case UDP_KIND.failure: {
        const pending = this.pending.get(datagram.id);
        if (pending === undefined || !samePeer(pending.peer, sender)) {
          this.unmatched++;
          return;
        }
        this.settle(
          datagram.id,
          datagram.kind === UDP_KIND.failure ? failureError(datagram.frame, from) : undefined,
          datagram.frame,
        );
        return;
      }
    }
  }

  private serve(id: number, frame: Uint8Array, sender: HostPort, from: string): void {
    const socket = this.socket;
    const handler = this.handler;
    const fail = (reason: number): void => {
      if (this.socket === socket && socket) this.transmit(socket, UDP_KIND.failure, id, Uint8Array.of(reason), sender);
    };
    if (handler === undefined) {
      fail(UDP_FAILURE.handlerFailed);
      return;
    }
    let answer: Promise<Uint8Array>;
    try {
      answer = Promise.resolve(handler.onRequest(frame, from));
    } catch (err) {
      answer = Promise.reject(err);
    }
    answer.then(
      (response) => {
        if (this.socket !== socket || socket === undefined) return;
        if (!(response instanceof Uint8Array) || response.length > this.maxFrameBytes) {
          this.logger.error({ from, bytes: response?.length }, 'response does not fit in one datagram');
          fail(response instanceof Uint8Array ? UDP_FAILURE.responseTooLarge : UDP_FAILURE.handlerFailed);
          return;
        }
        this.transmit(socket, UDP_KIND.response, id, response, sender);
      },
      (err: unknown) => {
        this.logger.error({ err, from }, 'request handler failed');
        fail(UDP_FAILURE.handlerFailed);
      },
    );
  }

  private settle(id: number, error: KvError | undefined, frame?: Uint8Array): void {
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    this.pending.delete(id);
    pending.timer.cancel();
    pending.signal?.removeEventListener('abort', pending.onAbort);
    if (error !== undefined) pending.reject(error);
    else if (frame !== undefined && frame.length > this.maxFrameBytes) {
      pending.reject(
        new KvError(
          'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE',
          `response of ${frame.length} bytes exceeds maxFrameBytes ${this.maxFrameBytes}`,
        ),
      );
    } else pending.resolve(frame ?? new Uint8Array(0));
  }
}

interface Unsent {
  count: number;
  onFlushed: (() => void) | undefined;
}

/** Resolves once `unsent` drops to zero, or after SEND_FLUSH_TIMEOUT_MS. */
function flushed(unsent: Unsent, clock: Clock): Promise<void> {
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

function samePeer(expected: HostPort, actual: HostPort): boolean {
  if (expected.port !== actual.port) return false;
  return isIP(expected.host) === 0 || expected.host === actual.host;
}

function aborted(to: string): KvError {
  return new KvError('KVMESH_ERR_RPC_ABORTED', `request to ${to} was aborted by the caller`);
}

function failureError(frame: Uint8Array, from: string): KvError {
  if (frame[0] === UDP_FAILURE.responseTooLarge) {
    return new KvError('KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE', `${from} has a response too large for one datagram`);
  }
  return new KvError('KVMESH_ERR_TRANSPORT_UNREACHABLE', `${from} failed to handle the request`);
}

function errorCode(err: Error): string {
  return (err as NodeJS.ErrnoException).code ?? err.message;
}
