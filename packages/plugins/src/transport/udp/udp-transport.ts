import type { RemoteInfo, Socket } from 'node:dgram';
import {
  KvError,
  RequestDedup,
  isKvError,
  type Clock,
  type HostedHttp,
  type Logger,
  type NodeInfo,
  type Random,
  type RequestOptions,
  type Transport,
  type TransportHandler,
} from '@kvmesh/core';
import type { HttpTransport } from '../http/http-transport.js';
import { formatHostPort, parseHostPort, parseTransportUri, type HostPort } from '../host-port.js';
import { bindDatagramSocket, flushed, type Unsent } from './datagram-socket.js';
import { UDP_MAX_PAYLOAD_BYTES, UDP_TRANSPORT_DEFAULTS, type UdpTransportOptions } from './options.js';
import { PendingRequests } from './pending-requests.js';
import { createStreamLane, laneUri, serveOverStream, type StreamReceiver } from './stream-lane.js';
import { aborted, errorCode, failureError, laneError, tooLargeResponse } from './udp-errors.js';
import { UDP_FAILURE, UDP_HEADER_BYTES, UDP_KIND, decodeDatagram, encodeDatagram, type UdpKind } from './udp-frame.js';
import { checkValueLimits } from '../value-limits.js';

/** Longest a responder spends delivering a large response over the stream; it does not know the caller's deadline. */
const STREAM_PUSH_TIMEOUT_MS = 10_000;
/** With port 0, how many free UDP ports are tried before one whose TCP twin is free too. */
const PORT_ATTEMPTS = 8;
const EMPTY = new Uint8Array(0);

export interface UdpTransportComponents {
  readonly node: Pick<NodeInfo, 'address'>;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  /** The node's config: its `limits` are checked against `maxFrameBytes`. Without it, nothing is checked. */
  readonly config?: Readonly<Record<string, unknown>>;
}

/** What this endpoint dropped or recognised, since start. */
export interface UdpTransportStats {
  /** Not a kvmesh datagram or stream body (too short, wrong magic, version or kind). */
  readonly malformed: number;
  /** A response or failure for no pending request (late, duplicated, or from the wrong peer). */
  readonly unmatched: number;
  /** Request datagrams that repeated one already served or being served: the handler did not run for them. */
  readonly duplicates: number;
}

/**
 * Requests, responses and one-way frames over UDP (node:dgram), each behind
 * an 8-byte header (udp-frame.ts) whose 32-bit id pairs a response with its
 * request, with a stream lane (stream-lane.ts) for the frames that do not
 * fit in one datagram, as memberlist sends over TCP what UDP cannot carry:
 *
 * - A request of at most one datagram's payload goes in one datagram; its
 *   response comes back in one datagram when it fits, or else the responder
 *   POSTs it over the stream lane to the requester's own address (the
 *   datagram's source, which is where the requester listens).
 * - A larger request (up to `maxFrameBytes`) goes over the stream lane and
 *   gets its response in the answer to that POST.
 * - `send` (one-way, gossip) is datagram-only: up to `maxMessageBytes`.
 *
 * Nothing is retransmitted: a lost datagram surfaces as
 * KVMESH_ERR_RPC_TIMEOUT at the caller's deadline (on the injected Clock),
 * and so does a peer that is down, since an unconnected UDP socket hears no
 * ICMP "port unreachable". A datagram duplicated on the way is recognised
 * by (sender, request id) for `dedupWindowMs` (RequestDedup): the handler
 * runs once, and a copy gets the first one's response again if that fitted
 * in a datagram, or nothing. Datagrams and stream bodies that are not ours
 * are counted and dropped (or answered with a failure); nothing from the
 * network throws out of the transport.
 *
 * `address` is `udp://host:port`; the stream lane listens on TCP at the
 * same host and port unless the node's API server hosts it
 * (`Transport.hostHttp`). Port 0 picks a port free for both, named by
 * `address` once `start()` resolved. A response is accepted only from the
 * host and port the request went to (just the port when either side names
 * its host by name, not IP).
 */
export class UdpTransport implements Transport {
  readonly name = 'udp';
  readonly maxFrameBytes: number;
  readonly maxMessageBytes: number;
  private readonly options: UdpTransportOptions;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly served: RequestDedup;
  private readonly receiver: StreamReceiver = {
    onBody: (body, from) => this.onStreamBody(body, from),
    onStray: (from) => {
      this.malformed++;
      this.logger.debug({ from }, 'one-way frame on the stream lane dropped');
    },
  };
  private bind: HostPort;
  private handler: TransportHandler | undefined;
  private socket: Socket | undefined;
  /** The stream lane while started; with a host, the one `hostHttp` built, kept across restarts. */
  private lane: HttpTransport | undefined;
  private hostedLane: HttpTransport | undefined;
  private readonly pending: PendingRequests;
  private malformed = 0;
  private unmatched = 0;
  private duplicatesAtStart = 0;
  /** Datagrams of the current socket handed to node:dgram whose send callback has not run yet. */
  private unsent: Unsent = { count: 0, onFlushed: undefined };
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  /**
   * @throws RangeError for options out of range;
   *   KvError KVMESH_ERR_CONFIG_INVALID when the config's value limit needs larger frames than `maxFrameBytes`.
   */
  constructor(components: UdpTransportComponents, options: Partial<UdpTransportOptions> = {}) {
    this.options = { ...UDP_TRANSPORT_DEFAULTS, ...options };
    const { maxDatagramBytes, maxFrameBytes } = this.options;
    if (!Number.isInteger(maxDatagramBytes) || maxDatagramBytes <= UDP_HEADER_BYTES) {
      throw new RangeError(`maxDatagramBytes must be an integer > ${UDP_HEADER_BYTES} (found ${maxDatagramBytes})`);
    }
    if (maxDatagramBytes > UDP_MAX_PAYLOAD_BYTES) {
      throw new RangeError(`maxDatagramBytes must be at most ${UDP_MAX_PAYLOAD_BYTES} (found ${maxDatagramBytes})`);
    }
    this.maxMessageBytes = maxDatagramBytes - UDP_HEADER_BYTES;
    if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < this.maxMessageBytes) {
      throw new RangeError(
        `maxFrameBytes must be an integer of at least one datagram's frame, ${this.maxMessageBytes} (found ${maxFrameBytes})`,
      );
    }
    this.maxFrameBytes = maxFrameBytes;
    checkValueLimits(components.config, maxFrameBytes, 'udp');
    this.clock = components.clock;
    this.logger = components.logger.child({ transport: 'udp' });
    this.bind = parseHostPort(components.node.address, 'node address');
    // Responses kept for duplicates are those that travel in a datagram; larger ones would cost memory for a rare case.
    this.served = new RequestDedup({
      clock: this.clock,
      windowMs: this.options.dedupWindowMs,
      maxBytes: this.options.dedupMaxBytes,
      maxResponseBytes: this.maxMessageBytes,
    });
    this.pending = new PendingRequests(this.clock, components.random.int(2 ** 32));
  }

  get address(): string {
    return `udp://${formatHostPort(this.bind)}`;
  }

  stats(): UdpTransportStats {
    return {
      malformed: this.malformed,
      unmatched: this.unmatched,
      duplicates: this.served.stats.duplicates - this.duplicatesAtStart,
    };
  }

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  /**
   * Serves the stream lane through the host's HTTP server at `hostPort`
   * (Transport.hostHttp): `start()` then binds only the datagram socket, at
   * `hostPort`'s port number, and the host offers lane requests (under
   * `/_kvmesh/udp`) to the returned `handle`.
   * @throws KvError KVMESH_ERR_KERNEL_STATE after `start()`, KVMESH_ERR_TRANSPORT_ADDRESS for a bad `hostPort`.
   */
  hostHttp(hostPort: string): HostedHttp {
    if (this.socket !== undefined || this.starting !== undefined) {
      throw new KvError('KVMESH_ERR_KERNEL_STATE', 'serving through a host must be arranged before start()');
    }
    const bind = parseHostPort(hostPort, 'host address');
    const lane = this.createLane(bind);
    const hosted = lane.hostHttp(hostPort);
    this.bind = bind;
    this.hostedLane = lane;
    return hosted;
  }

  start(): Promise<void> {
    if (this.socket !== undefined) return Promise.resolve();
    this.starting ??= this.open().finally(() => (this.starting = undefined));
    return this.starting;
  }

  /** Fails pending requests, lets datagrams already sent leave (up to SEND_FLUSH_TIMEOUT_MS), then closes both lanes. */
  stop(): Promise<void> {
    if (this.starting !== undefined)
      return this.starting.then(
        () => this.stop(),
        () => this.stop(),
      );
    const socket = this.socket;
    if (socket === undefined) return this.stopping ?? Promise.resolve();
    this.socket = undefined;
    const lane = this.lane;
    this.lane = undefined;
    this.pending.failAll(new KvError('KVMESH_ERR_TRANSPORT_CLOSED', `transport ${this.address} stopped`));
    const datagrams = flushed(this.unsent, this.clock).then(
      () => new Promise<void>((resolve) => socket.close(() => resolve())),
    );
    this.unsent = { count: 0, onFlushed: undefined };
    this.stopping = Promise.all([datagrams, lane?.stop()]).then(() => undefined);
    return this.stopping;
  }

  async request(to: string, frame: Uint8Array, options: RequestOptions): Promise<Uint8Array> {
    const socket = this.checkOpen();
    const peer = parseTransportUri(to, 'udp');
    if (frame.length > this.maxFrameBytes) {
      throw new KvError(
        'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE',
        `request frame of ${frame.length} bytes exceeds maxFrameBytes ${this.maxFrameBytes}`,
      );
    }
    const { signal } = options;
    if (signal?.aborted) throw aborted(to);
    if (frame.length > this.maxMessageBytes) return this.requestOverStream(to, peer, frame, options);
    const id = this.pending.nextId();
    return this.pending.wait(id, to, peer, options, () =>
      this.transmit(socket, UDP_KIND.request, id, frame, peer, (err) =>
        this.pending.settle(
          id,
          new KvError('KVMESH_ERR_TRANSPORT_UNREACHABLE', `cannot send to ${to}: ${errorCode(err)}`, { cause: err }),
        ),
      ),
    );
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

  /**
   * Binds the datagram socket, then starts the stream lane at the same port
   * number: on TCP of its own, or nothing to bind when a host serves it.
   * With port 0 the UDP port comes first; if its TCP twin is taken, another
   * is tried.
   */
  private async open(): Promise<void> {
    await this.stopping;
    this.stopping = undefined;
    for (let attempt = 1; ; attempt++) {
      const socket = await bindDatagramSocket(this.bind);
      const bound: HostPort = { host: this.bind.host, port: socket.address().port };
      const lane = this.hostedLane ?? this.createLane(bound);
      try {
        await lane.start();
      } catch (err) {
        await new Promise<void>((resolve) => socket.close(() => resolve()));
        const retry = this.hostedLane === undefined && this.bind.port === 0 && attempt < PORT_ATTEMPTS;
        if (retry && isKvError(err, 'KVMESH_ERR_TRANSPORT_LISTEN')) continue;
        throw new KvError(
          isKvError(err) ? err.code : 'KVMESH_ERR_TRANSPORT_LISTEN',
          `cannot listen at udp://${formatHostPort(bound)} for frames over one datagram (TCP port ${bound.port}): ${
            err instanceof Error ? err.message : String(err)
          }`,
          { cause: err },
        );
      }
      socket.on('error', (err) => this.logger.warn({ err }, 'udp socket error'));
      socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
      this.bind = bound;
      this.malformed = 0;
      this.unmatched = 0;
      this.duplicatesAtStart = this.served.stats.duplicates;
      this.lane = lane;
      this.socket = socket;
      return;
    }
  }

  private createLane(bind: HostPort): HttpTransport {
    return createStreamLane(
      bind,
      { clock: this.clock, logger: this.logger.child({ lane: 'stream' }) },
      {
        maxBodyBytes: this.maxFrameBytes + UDP_HEADER_BYTES,
        connectionsPerPeer: this.options.streamConnectionsPerPeer,
        idleTimeoutMs: this.options.streamIdleTimeoutMs,
      },
      this.receiver,
    );
  }

  private checkOpen(): Socket {
    if (this.socket === undefined) {
      throw new KvError('KVMESH_ERR_TRANSPORT_CLOSED', `transport ${this.address} is not started`);
    }
    return this.socket;
  }

  /** A request over the stream lane: the response is the answer to the POST. */
  private async requestOverStream(
    to: string,
    peer: HostPort,
    frame: Uint8Array,
    options: RequestOptions,
  ): Promise<Uint8Array> {
    const lane = this.lane!;
    const id = this.pending.nextId();
    let body: Uint8Array;
    try {
      body = await lane.request(laneUri(peer), encodeDatagram(UDP_KIND.request, id, frame), options);
    } catch (err) {
      throw laneError(err, to);
    }
    const reply = decodeDatagram(body);
    if (
      reply === undefined ||
      reply.id !== id ||
      (reply.kind !== UDP_KIND.response && reply.kind !== UDP_KIND.failure)
    ) {
      throw new KvError('KVMESH_ERR_TRANSPORT_UNREACHABLE', `${to} answered over the stream with something not ours`);
    }
    if (reply.kind === UDP_KIND.failure) throw failureError(reply.frame, to);
    if (reply.frame.length > this.maxFrameBytes) throw tooLargeResponse(reply.frame.length, this.maxFrameBytes);
    return reply.frame;
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
      case UDP_KIND.failure:
        this.onAnswer(datagram.kind, datagram.id, datagram.frame, sender, from);
        return;
    }
  }

  /** A response or failure, by datagram or pushed over the stream lane. */
  private onAnswer(kind: UdpKind, id: number, frame: Uint8Array, sender: HostPort, from: string): void {
    if (!this.pending.expects(id, sender)) {
      this.unmatched++;
      return;
    }
    if (kind === UDP_KIND.failure) this.pending.settle(id, failureError(frame, from));
    else if (frame.length > this.maxFrameBytes)
      this.pending.settle(id, tooLargeResponse(frame.length, this.maxFrameBytes));
    else this.pending.settle(id, frame);
  }

  /** A request datagram: the first copy of (sender, id) runs the handler, later copies replay its answer. */
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
    const delivery = this.served.deliver(from, id, () => handler.onRequest(frame, from));
    delivery.answer.then(
      (response: Uint8Array | undefined) => {
        if (this.socket !== socket || socket === undefined) return;
        // A copy whose first answer was not kept (it went over the stream) gets none.
        if (response === undefined && delivery.duplicate) return;
        if (!(response instanceof Uint8Array)) {
          this.logger.error({ from }, 'request handler resolved with something other than bytes');
          fail(UDP_FAILURE.handlerFailed);
        } else if (response.length <= this.maxMessageBytes) {
          this.transmit(socket, UDP_KIND.response, id, response, sender);
        } else if (response.length > this.maxFrameBytes) {
          this.logger.error({ from, bytes: response.length }, 'response over maxFrameBytes');
          fail(UDP_FAILURE.responseTooLarge);
        } else {
          this.push(id, response, sender, fail);
        }
      },
      (err: unknown) => {
        if (!delivery.duplicate) this.logger.error({ err, from }, 'request handler failed');
        fail(UDP_FAILURE.handlerFailed);
      },
    );
  }

  /** Delivers a response too large for a datagram over the stream lane, to where the request came from. */
  private push(id: number, response: Uint8Array, requester: HostPort, fail: (reason: number) => void): void {
    const lane = this.lane;
    if (lane === undefined) return;
    lane
      .request(laneUri(requester), encodeDatagram(UDP_KIND.response, id, response), {
        timeoutMs: STREAM_PUSH_TIMEOUT_MS,
      })
      .then(
        () => undefined,
        (err: unknown) => {
          this.logger.debug(
            { err: (err as Error).message, to: formatHostPort(requester) },
            'response not delivered over the stream',
          );
          fail(
            isKvError(err, 'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE')
              ? UDP_FAILURE.responseTooLarge
              : UDP_FAILURE.streamFailed,
          );
        },
      );
  }

  /** A body POSTed to the stream lane: a large request to serve, or a large response pushed to us. */
  private async onStreamBody(body: Uint8Array, from: string): Promise<Uint8Array> {
    const frame = decodeDatagram(body);
    if (frame === undefined || (frame.kind !== UDP_KIND.request && frame.kind !== UDP_KIND.response)) {
      this.malformed++;
      this.logger.debug({ from, bytes: body.length }, 'stream body that is not ours refused');
      return encodeDatagram(UDP_KIND.failure, frame?.id ?? 0, Uint8Array.of(UDP_FAILURE.handlerFailed));
    }
    if (frame.kind === UDP_KIND.response) {
      let sender: HostPort | undefined;
      try {
        sender = parseTransportUri(from, 'udp');
      } catch {
        sender = undefined;
      }
      if (sender === undefined) this.unmatched++;
      else this.onAnswer(UDP_KIND.response, frame.id, frame.frame, sender, from);
      return encodeDatagram(UDP_KIND.response, frame.id, EMPTY);
    }
    return serveOverStream(this.handler, frame.id, frame.frame, from, this.maxFrameBytes, this.logger);
  }
}
