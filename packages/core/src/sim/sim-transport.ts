import type { Clock, Timer } from '../contracts/clock.js';
import type { Logger } from '../contracts/logger.js';
import type { RequestOptions, Transport, TransportHandler } from '../contracts/transport.js';
import { KvError } from '../errors.js';
import { RequestDedup } from '../rpc/request-dedup.js';

/** Scheme of simulated addresses: `sim://n1`. */
export const SIM_SCHEME = 'sim';

/** Default largest request/response frame, as on the http transport: 16 MiB. */
const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** Default largest one-way frame: 64 KiB, about what one UDP datagram can carry. */
const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;

/**
 * How long an endpoint remembers a request it served, in virtual ms: far
 * longer than any link profile delays a duplicate (latency plus reorder
 * delay, at most a few hundred ms in LINK_PROFILES).
 */
const DEDUP_WINDOW_MS = 30_000;
/** Memory for remembered requests per endpoint; responses up to DEDUP_MAX_RESPONSE_BYTES are kept to answer copies. */
const DEDUP_MAX_BYTES = 256 * 1024;
const DEDUP_MAX_RESPONSE_BYTES = 64 * 1024;

const NAME = /^[^\s/?#]+$/;
const PREFIX = `${SIM_SCHEME}://`;
const EMPTY = new Uint8Array(0);

/** What travels on a simulated link. */
export type SimPacketKind = 'request' | 'response' | 'message' | 'failure';

/** Why a request failed, carried as the one byte of a `failure` packet. */
export const SIM_FAILURE = {
  /** The handler rejected. */
  handlerFailed: 1,
  /** The response was over the responder's maxFrameBytes. */
  responseTooLarge: 2,
  /** Nobody listened at the address (the simulated connection was refused or reset). */
  notListening: 3,
} as const;

export interface SimPacket {
  readonly kind: SimPacketKind;
  readonly from: string;
  readonly to: string;
  /** Correlates a request with its response or failure; 0 for one-way messages. */
  readonly id: number;
  readonly frame: Uint8Array;
  /**
   * Set by the network on both copies of a packet it duplicated (before
   * either arrives). Only such a request can reach an endpoint twice (ids
   * are unique network-wide), so only such requests are remembered.
   */
  duplicated?: boolean;
}

/** What a SimTransport uses of its network. SimNetwork builds one; tests rarely need another. */
export interface SimPort {
  readonly clock: Clock;
  readonly logger: Logger;
  /** A request id unique in the whole network, so a restarted endpoint never matches a stale response. */
  nextRequestId(): number;
  /** @throws KvError KVMESH_ERR_TRANSPORT_LISTEN when another endpoint listens at `address`. */
  listen(address: string, receive: (packet: SimPacket) => void): void;
  unlisten(address: string, receive: (packet: SimPacket) => void): void;
  /** Puts a packet on the link from `packet.from` to `packet.to` (loss, delay, duplication applied there). */
  transmit(packet: SimPacket): void;
}

export interface SimTransportOptions {
  /** Largest request/response frame. Default 16 MiB. */
  maxFrameBytes?: number;
  /** Largest one-way frame. Default 64 KiB; 1192 mimics the udp transport's default. */
  maxMessageBytes?: number;
}

/**
 * `sim://name` for `name` or `sim://name`.
 * @throws KvError KVMESH_ERR_TRANSPORT_ADDRESS
 */
export function simAddress(nameOrAddress: string): string {
  const prefixed = nameOrAddress.startsWith(PREFIX);
  const name = prefixed ? nameOrAddress.slice(PREFIX.length) : nameOrAddress;
  if (!NAME.test(name)) {
    throw new KvError(
      'KVMESH_ERR_TRANSPORT_ADDRESS',
      `'${nameOrAddress}' is not a simulated address: use sim://<name>`,
    );
  }
  return prefixed ? nameOrAddress : PREFIX + name;
}

interface PendingRequest {
  readonly to: string;
  readonly resolve: (frame: Uint8Array) => void;
  readonly reject: (err: KvError) => void;
  readonly timer: Timer;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/**
 * One endpoint of a SimNetwork, implementing the Transport contract over
 * simulated links driven by the network's VirtualClock and seeded Random.
 *
 * Requests and responses suffer the link profile like one-way messages do:
 * a lost request or response shows up as KVMESH_ERR_RPC_TIMEOUT at the
 * deadline. A duplicated request reaches the handler once, as the contract
 * requires: later copies get the first copy's answer (kept up to 64 KiB,
 * else none), from a table of recently served (sender, request id) pairs
 * (RequestDedup on the virtual clock) that holds only the requests the
 * network marked as duplicated. A request to an address nobody
 * listens at fails with KVMESH_ERR_TRANSPORT_UNREACHABLE after one round
 * trip, as a refused TCP connection would; across a partition it is
 * dropped and times out, as on a black-holed network. An endpoint that
 * stops while handling a request answers it with a failure (a reset
 * connection).
 */
export class SimTransport implements Transport {
  readonly name = SIM_SCHEME;
  readonly address: string;
  readonly maxFrameBytes: number;
  readonly maxMessageBytes: number;
  private handler: TransportHandler | undefined;
  private listening = false;
  private incarnation = 0;
  private readonly pending = new Map<number, PendingRequest>();
  /**
   * Requests served that the network duplicated, to answer their second copy
   * without running the handler again; built on the first such request, so
   * the endpoints of a run without duplicates keep no table.
   */
  private served: RequestDedup | undefined;
  private readonly receive = (packet: SimPacket): void => this.onPacket(packet);

  constructor(
    address: string,
    private readonly port: SimPort,
    options: SimTransportOptions = {},
  ) {
    this.address = simAddress(address);
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  /** True between `start()` and `stop()`. */
  get isListening(): boolean {
    return this.listening;
  }

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  async start(): Promise<void> {
    if (this.listening) return;
    this.port.listen(this.address, this.receive);
    this.listening = true;
    this.incarnation++;
  }

  async stop(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    this.port.unlisten(this.address, this.receive);
    for (const id of [...this.pending.keys()]) {
      this.settle(id, new KvError('KVMESH_ERR_TRANSPORT_CLOSED', `transport ${this.address} stopped`));
    }
  }

  request(to: string, frame: Uint8Array, options: RequestOptions): Promise<Uint8Array> {
    try {
      this.checkOpen();
      const target = this.target(to);
      if (frame.length > this.maxFrameBytes) {
        throw new KvError(
          'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE',
          `request frame of ${frame.length} bytes exceeds maxFrameBytes ${this.maxFrameBytes}`,
        );
      }
      const { signal } = options;
      if (signal?.aborted) throw aborted(target);
      return new Promise((resolve, reject) => {
        const id = this.port.nextRequestId();
        const onAbort = (): void => this.settle(id, aborted(target));
        const timer = this.port.clock.setTimeout(
          () =>
            this.settle(
              id,
              new KvError('KVMESH_ERR_RPC_TIMEOUT', `no response from ${target} within ${options.timeoutMs} ms`),
            ),
          options.timeoutMs,
        );
        this.pending.set(id, { to: target, resolve, reject, timer, signal, onAbort });
        signal?.addEventListener('abort', onAbort, { once: true });
        this.port.transmit({ kind: 'request', from: this.address, to: target, id, frame: frame.slice() });
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  send(to: string, frame: Uint8Array): void {
    this.checkOpen();
    const target = this.target(to);
    if (frame.length > this.maxMessageBytes) {
      throw new KvError(
        'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE',
        `message frame of ${frame.length} bytes exceeds maxMessageBytes ${this.maxMessageBytes}`,
      );
    }
    this.port.transmit({ kind: 'message', from: this.address, to: target, id: 0, frame: frame.slice() });
  }

  private checkOpen(): void {
    if (!this.listening) throw new KvError('KVMESH_ERR_TRANSPORT_CLOSED', `transport ${this.address} is not started`);
  }

  private target(to: string): string {
    if (!to.startsWith(PREFIX)) {
      throw new KvError('KVMESH_ERR_TRANSPORT_ADDRESS', `'${to}' is not a simulated address: use sim://<name>`);
    }
    return simAddress(to);
  }

  private onPacket(packet: SimPacket): void {
    switch (packet.kind) {
      case 'request':
        this.serve(packet);
        return;
      case 'message':
        try {
          this.handler?.onMessage(packet.frame, packet.from);
        } catch (err) {
          this.port.logger.error({ err, from: packet.from }, 'one-way message handler threw');
        }
        return;
      case 'response':
        if (this.pending.get(packet.id)?.to !== packet.from) return;
        if (packet.frame.length > this.maxFrameBytes) {
          this.settle(packet.id, tooLargeResponse(packet.frame.length, this.maxFrameBytes));
        } else {
          this.settle(packet.id, undefined, packet.frame);
        }
        return;
      case 'failure':
        if (this.pending.get(packet.id)?.to !== packet.from) return;
        this.settle(packet.id, failureError(packet));
        return;
    }
  }

  private serve(packet: SimPacket): void {
    const incarnation = this.incarnation;
    const reply = (kind: SimPacketKind, frame: Uint8Array): void =>
      this.port.transmit({ kind, from: this.address, to: packet.from, id: packet.id, frame });
    const fail = (reason: number): void => reply('failure', Uint8Array.of(reason));
    const handler = this.handler;
    if (handler === undefined) {
      fail(SIM_FAILURE.handlerFailed);
      return;
    }
    const delivery =
      packet.duplicated === true
        ? this.dedup().deliver(packet.from, packet.id, () => handler.onRequest(packet.frame, packet.from))
        : { duplicate: false, answer: firstAnswer(handler, packet) };
    delivery.answer.then(
      (response: Uint8Array | undefined) => {
        // A copy whose first answer was not kept gets none.
        if (response === undefined && delivery.duplicate) return;
        if (!this.listening || this.incarnation !== incarnation) {
          fail(SIM_FAILURE.notListening);
        } else if (!(response instanceof Uint8Array)) {
          this.port.logger.error({ from: packet.from }, 'request handler resolved with something other than bytes');
          fail(SIM_FAILURE.handlerFailed);
        } else if (response.length > this.maxFrameBytes) {
          this.port.logger.error({ from: packet.from, bytes: response.length }, 'response over maxFrameBytes');
          fail(SIM_FAILURE.responseTooLarge);
        } else {
          reply('response', response.slice());
        }
      },
      (err: unknown) => {
        if (!delivery.duplicate) this.port.logger.error({ err, from: packet.from }, 'request handler failed');
        fail(SIM_FAILURE.handlerFailed);
      },
    );
  }

  private dedup(): RequestDedup {
    this.served ??= new RequestDedup({
      clock: this.port.clock,
      windowMs: DEDUP_WINDOW_MS,
      maxBytes: DEDUP_MAX_BYTES,
      maxResponseBytes: DEDUP_MAX_RESPONSE_BYTES,
    });
    return this.served;
  }

  private settle(id: number, error: KvError | undefined, frame: Uint8Array = EMPTY): void {
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    this.pending.delete(id);
    pending.timer.cancel();
    pending.signal?.removeEventListener('abort', pending.onAbort);
    if (error === undefined) pending.resolve(frame);
    else pending.reject(error);
  }
}

/** The handler's answer to the only copy of a request, as RequestDedup gives a first copy's (a throw rejects). */
function firstAnswer(handler: TransportHandler, packet: SimPacket): Promise<Uint8Array> {
  try {
    return Promise.resolve(handler.onRequest(packet.frame, packet.from));
  } catch (err) {
    return Promise.reject(err);
  }
}

function aborted(to: string): KvError {
  return new KvError('KVMESH_ERR_RPC_ABORTED', `request to ${to} was aborted by the caller`);
}

function tooLargeResponse(bytes: number, max: number): KvError {
  return new KvError('KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE', `response of ${bytes} bytes exceeds maxFrameBytes ${max}`);
}

function failureError(packet: SimPacket): KvError {
  switch (packet.frame[0]) {
    case SIM_FAILURE.responseTooLarge:
      return new KvError(
        'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE',
        `${packet.from} refused to send a response over its maxFrameBytes`,
      );
    case SIM_FAILURE.notListening:
      return new KvError('KVMESH_ERR_TRANSPORT_UNREACHABLE', `nothing listens at ${packet.from}`);
    default:
      return new KvError('KVMESH_ERR_TRANSPORT_UNREACHABLE', `${packet.from} failed to handle the request`);
  }
}
