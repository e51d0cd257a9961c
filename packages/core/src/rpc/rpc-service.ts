import type { Clock, Timer } from '../contracts/clock.js';
import type { Codec, Message } from '../contracts/codec.js';
import type { Lifecycle } from '../contracts/lifecycle.js';
import type { Logger } from '../contracts/logger.js';
import type {
  CallOptions,
  MessageListener,
  MessageRegistry,
  RequestHandler,
  Rpc,
  RpcContext,
} from '../contracts/rpc.js';
import type { Transport, TransportHandler } from '../contracts/transport.js';
import { KvError, isKvError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { CodecSet } from '../plugin.js';
import { CORE_MESSAGES } from './core-messages.js';
import { FrameKind, readFrame, writeFrame } from './frame.js';

export interface RpcServiceOptions {
  readonly transport: Transport;
  readonly codecs: CodecSet;
  readonly messages: MessageRegistry;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Deadline of a request that names none. */
  readonly timeoutMs: number;
}

/** Counters for metrics; read them, never write them. */
export interface RpcStats {
  requestsSent: number;
  requestsFailed: number;
  requestsServed: number;
  messagesSent: number;
  messagesReceived: number;
  /** Incoming frames that could not be decoded or had no handler. */
  framesRejected: number;
}

// One-way messages have no deadline; one shared signal saves an allocation per message.
const NEVER_ABORTED = new AbortController().signal;

/**
 * What a request handler gets: its signal (aborted at the caller's deadline
 * or when the node stops) is made only if the handler reads it, so the
 * handlers that never do (most) cost no controller and no timer.
 */
class ServingContext implements RpcContext {
  readonly from: string;
  readonly #started: number;
  readonly #deadlineMs: number;
  readonly #clock: Clock;
  readonly #inFlight: Set<AbortController>;
  #controller: AbortController | undefined;
  #timer: Timer | undefined;
  #done = false;

  constructor(from: string, deadlineMs: number, clock: Clock, inFlight: Set<AbortController>) {
    this.from = from;
    this.#deadlineMs = deadlineMs;
    this.#clock = clock;
    this.#started = deadlineMs > 0 ? clock.now() : 0;
    this.#inFlight = inFlight;
  }

  get signal(): AbortSignal {
    if (this.#controller !== undefined) return this.#controller.signal;
    const controller = new AbortController();
    this.#controller = controller;
    if (this.#done) return controller.signal;
    if (this.#deadlineMs > 0) {
      const left = this.#started + this.#deadlineMs - this.#clock.now();
      const timeout = (): void => controller.abort(new KvError('KVMESH_ERR_RPC_TIMEOUT', 'the caller stopped waiting'));
      if (left <= 0) timeout();
      else this.#timer = this.#clock.setTimeout(timeout, left);
    }
    this.#inFlight.add(controller);
    return controller.signal;
  }

  /** The handler answered: the signal, if any, stops watching. */
  done(): void {
    this.#done = true;
    this.#timer?.cancel();
    if (this.#controller !== undefined) this.#inFlight.delete(this.#controller);
  }
}

/**
 * The Rpc contract over any Transport and the node's codecs. Requests go out
 * in the primary codec; every incoming frame is decoded with the codec its
 * header names and answered in that same codec.
 */
export class RpcService implements Rpc, Lifecycle, TransportHandler {
  readonly stats: RpcStats = {
    requestsSent: 0,
    requestsFailed: 0,
    requestsServed: 0,
    messagesSent: 0,
    messagesReceived: 0,
    framesRejected: 0,
  };
  readonly #options: RpcServiceOptions;
  readonly #handlers = new Map<string, RequestHandler>();
  readonly #listeners = new Map<string, Set<MessageListener>>();
  readonly #inFlight = new Set<AbortController>();

  constructor(options: RpcServiceOptions) {
    this.#options = options;
    options.transport.setHandler(this);
  }

  get address(): string {
    return this.#options.transport.address;
  }

  stop(): void {
    const reason = new KvError('KVMESH_ERR_TRANSPORT_CLOSED', 'the node is stopping');
    for (const controller of this.#inFlight) controller.abort(reason);
    this.#inFlight.clear();
  }

  async request<P = any>(to: string, type: string, payload: unknown, options: CallOptions = {}): Promise<Message<P>> {
    const { codecs, transport } = this.#options;
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs;
    const codec = codecs.primary;
    const frame = writeFrame(
      { codecTag: codec.tag, kind: FrameKind.Request, deadlineMs: timeoutMs },
      codec.encode(type, payload),
    );
    this.stats.requestsSent++;
    try {
      const response = readFrame(
        await transport.request(to, frame, { timeoutMs, ...(options.signal ? { signal: options.signal } : {}) }),
      );
      const message = this.#codecFor(response.header.codecTag).decode(response.body);
      if (response.header.kind === FrameKind.Error) throw remoteError(message, to);
      if (response.header.kind !== FrameKind.Response) {
        throw new KvError(
          'KVMESH_ERR_CODEC_DECODE',
          `expected a response from ${to}, got frame kind ${response.header.kind}`,
        );
      }
      return message as Message<P>;
    } catch (err) {
      this.stats.requestsFailed++;
      throw err;
    }
  }

  send(to: string, type: string, payload: unknown): void {
    const codec = this.#options.codecs.primary;
    const frame = writeFrame(
      { codecTag: codec.tag, kind: FrameKind.OneWay, deadlineMs: 0 },
      codec.encode(type, payload),
    );
    this.#options.transport.send(to, frame);
    this.stats.messagesSent++;
  }

  handle(type: string, handler: RequestHandler): void {
    this.#options.messages.get(type);
    if (this.#handlers.has(type)) {
      throw new KvError('KVMESH_ERR_PLUGIN_INVALID', `a handler for '${type}' is already registered`);
    }
    this.#handlers.set(type, handler);
  }

  on(type: string, listener: MessageListener): () => void {
    this.#options.messages.get(type);
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  async onRequest(frame: Uint8Array, from: string): Promise<Uint8Array> {
    let codec = this.#options.codecs.primary;
    let context: ServingContext | undefined;
    try {
      const { header, body } = readFrame(frame);
      codec = this.#codecFor(header.codecTag);
      const message = codec.decode(body);
      if (header.kind !== FrameKind.Request) {
        throw new KvError('KVMESH_ERR_CODEC_DECODE', `expected a request, got frame kind ${header.kind}`);
      }
      const handler = this.#handlers.get(message.type);
      if (!handler)
        throw new KvError('KVMESH_ERR_RPC_NO_HANDLER', `no handler for '${message.type}' on ${this.address}`);
      context = new ServingContext(from, header.deadlineMs, this.#options.clock, this.#inFlight);
      const reply = await handler(message.payload, context);
      this.stats.requestsServed++;
      return writeFrame(
        { codecTag: codec.tag, kind: FrameKind.Response, deadlineMs: 0 },
        codec.encode(reply.type, reply.payload),
      );
    } catch (err) {
      return this.#errorFrame(codec, err, from);
    } finally {
      context?.done();
    }
  }

  onMessage(frame: Uint8Array, from: string): void {
    let message: Message;
    try {
      const { header, body } = readFrame(frame);
      message = this.#codecFor(header.codecTag).decode(body);
    } catch (err) {
      this.stats.framesRejected++;
      this.#options.logger.debug({ from, err: (err as Error).message }, 'dropped an undecodable message');
      return;
    }
    this.stats.messagesReceived++;
    const listeners = this.#listeners.get(message.type);
    if (!listeners || listeners.size === 0) {
      this.stats.framesRejected++;
      return;
    }
    const context = { from, signal: NEVER_ABORTED };
    for (const listener of listeners) {
      try {
        listener(message.payload, context);
      } catch (err) {
        this.#options.logger.error({ type: message.type, err: (err as Error).message }, 'message listener threw');
      }
    }
  }

  #codecFor(tag: number): Codec {
    const codec = this.#options.codecs.byTag(tag);
    if (!codec)
      throw new KvError('KVMESH_ERR_CODEC_UNKNOWN', `frame uses codec tag ${tag}, which this node does not know`);
    return codec;
  }

  #errorFrame(codec: Codec, err: unknown, from: string): Uint8Array {
    let code: ErrorCode = 'KVMESH_ERR_RPC_REMOTE';
    let message = 'the remote handler failed';
    if (isKvError(err)) {
      code = err.code;
      message = err.message;
      if (code === 'KVMESH_ERR_CODEC_DECODE' || code === 'KVMESH_ERR_CODEC_UNKNOWN') this.stats.framesRejected++;
    } else {
      this.#options.logger.error(
        { from, err: err instanceof Error ? err.stack : String(err) },
        'request handler failed',
      );
      if (err instanceof Error) message = `the remote handler failed: ${err.message}`;
    }
    return writeFrame(
      { codecTag: codec.tag, kind: FrameKind.Error, deadlineMs: 0 },
      codec.encode(CORE_MESSAGES.error, { code, message }),
    );
  }
}

function remoteError(message: Message, from: string): KvError {
  const payload = message.payload as { code?: unknown; message?: unknown };
  const text = typeof payload.message === 'string' ? payload.message : 'remote error';
  const code = isKvError({ code: payload.code }) ? (payload.code as ErrorCode) : 'KVMESH_ERR_RPC_REMOTE';
  return new KvError(code, text, { details: { remote: from } });
}
