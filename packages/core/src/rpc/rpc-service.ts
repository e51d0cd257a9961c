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
import { FrameKind, isSealedFrame, readFrame, writeFrame } from './frame.js';
import type { FrameHeader } from './frame.js';
import { frameNonce } from './frame-auth.js';
import type { FrameAuth, OpenedFrame } from './frame-auth.js';
import { RefusalLog } from './refusal-log.js';

export interface RpcServiceOptions {
  readonly transport: Transport;
  readonly codecs: CodecSet;
  readonly messages: MessageRegistry;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Deadline of a request that names none. */
  readonly timeoutMs: number;
  /**
   * Seals every outgoing frame and opens every incoming one with the
   * cluster secrets (see FrameAuth). Without it frames travel unsigned, and
   * a sealed frame from a peer is refused.
   */
  readonly auth?: FrameAuth;
  /**
   * Without `auth`: whether this node takes incoming frames now, while it
   * has sent none to another node itself (from its first, it takes them).
   * Called for every incoming frame until then (keep it cheap); a frame
   * arriving while it answers false is refused like an unauthenticated one.
   * Default: always.
   */
  readonly accepting?: () => boolean;
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
  /**
   * Incoming frames dropped unopened: unsigned, sealed with an unknown
   * secret, a bad MAC, outside the replay window, replayed; or, on a node
   * without a secret, sealed ones and any that arrive while it is not
   * accepting frames.
   */
  framesRejectedAuth: number;
}

/** What a node answers a request it refused unopened: the same words to everyone, unsigned. */
const REFUSED_MESSAGE = 'refused: the frame is not authenticated for this cluster (see cluster.secrets)';

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
    framesRejectedAuth: 0,
  };
  readonly #options: RpcServiceOptions;
  readonly #handlers = new Map<string, RequestHandler>();
  readonly #listeners = new Map<string, Set<MessageListener>>();
  readonly #inFlight = new Set<AbortController>();
  readonly #auth: FrameAuth | undefined;
  readonly #refusals: RefusalLog;
  /** This node sent a frame to another: it has a peer, whatever `accepting` says. */
  #spoke = false;

  constructor(options: RpcServiceOptions) {
    this.#options = options;
    this.#auth = options.auth;
    this.#refusals = new RefusalLog(options.logger, options.clock);
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
    const frame = this.#frame(
      { codecTag: codec.tag, kind: FrameKind.Request, deadlineMs: timeoutMs },
      codec.encode(type, payload),
    );
    this.stats.requestsSent++;
    if (!this.#spoke) this.#spoke = to !== this.address;
    try {
      const bytes = await transport.request(to, frame, {
        timeoutMs,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const response = this.#auth ? this.#openResponse(bytes, frameNonce(frame), to) : readFrame(bytes);
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
    const frame = this.#frame(
      { codecTag: codec.tag, kind: FrameKind.OneWay, deadlineMs: 0 },
      codec.encode(type, payload),
    );
    this.#options.transport.send(to, frame);
    this.stats.messagesSent++;
    if (!this.#spoke) this.#spoke = to !== this.address;
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
    const opened = this.#openIncoming(frame, from, 'request');
    if (opened === undefined) return this.#refusal(frame);
    const replyTo = opened === true ? undefined : opened.nonce;
    try {
      const { header, body } = opened === true ? readFrame(frame) : opened;
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
      return this.#frame(
        { codecTag: codec.tag, kind: FrameKind.Response, deadlineMs: 0 },
        codec.encode(reply.type, reply.payload),
        replyTo,
      );
    } catch (err) {
      return this.#errorFrame(codec, err, from, replyTo);
    } finally {
      context?.done();
    }
  }

  onMessage(frame: Uint8Array, from: string): void {
    let message: Message;
    const opened = this.#openIncoming(frame, from, 'message');
    if (opened === undefined) return;
    try {
      const { header, body } = opened === true ? readFrame(frame) : opened;
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

  /** An outgoing frame: sealed when the node has secrets. */
  #frame(header: FrameHeader, body: Uint8Array, replyTo?: Uint8Array): Uint8Array {
    return this.#auth ? this.#auth.seal(header, body, replyTo) : writeFrame(header, body);
  }

  /**
   * Whether an incoming request or one-way frame may be served: its opened
   * parts (with secrets), true (without: read it as it is), or undefined
   * when it is refused (counted and logged here).
   */
  #openIncoming(frame: Uint8Array, from: string, what: string): OpenedFrame | true | undefined {
    const auth = this.#auth;
    if (auth === undefined) {
      const accepting = this.#options.accepting;
      if (accepting !== undefined && !this.#spoke && !accepting()) {
        return this.#refuse(from, 'this node has no peers', what);
      }
      if (isSealedFrame(frame)) return this.#refuse(from, 'sealed with a secret, and this node has none', what);
      return true;
    }
    const opened = auth.open(frame);
    if (typeof opened === 'string') return this.#refuse(from, opened, what);
    if (opened.header.kind !== (what === 'request' ? FrameKind.Request : FrameKind.OneWay)) {
      return this.#refuse(from, 'malformed', what);
    }
    return opened;
  }

  #refuse(from: string, reason: string, what: string): undefined {
    this.stats.framesRejectedAuth++;
    this.#refusals.refused(from, reason, what);
    return undefined;
  }

  /** The unsigned answer to a refused request, in the codec its header names when this node knows it. */
  #refusal(frame: Uint8Array): Uint8Array {
    const codec =
      (frame.length > 2 ? this.#options.codecs.byTag(frame[2]!) : undefined) ?? this.#options.codecs.primary;
    return writeFrame(
      { codecTag: codec.tag, kind: FrameKind.Error, deadlineMs: 0 },
      codec.encode(CORE_MESSAGES.error, { code: 'KVMESH_ERR_RPC_UNAUTHENTICATED', message: REFUSED_MESSAGE }),
    );
  }

  /**
   * A response to a sealed request: it must be sealed for that request. The
   * one unsigned answer taken is a peer's refusal of the request itself
   * (it could not open it), which becomes KVMESH_ERR_RPC_UNAUTHENTICATED.
   */
  #openResponse(bytes: Uint8Array, nonce: Uint8Array, to: string): { header: FrameHeader; body: Uint8Array } {
    const opened = this.#auth!.open(bytes, nonce);
    if (typeof opened !== 'string') return opened;
    if (opened === 'unsigned') {
      let refusal: Message | undefined;
      try {
        const plain = readFrame(bytes);
        if (plain.header.kind === FrameKind.Error) refusal = this.#codecFor(plain.header.codecTag).decode(plain.body);
      } catch {
        refusal = undefined;
      }
      if ((refusal?.payload as { code?: unknown } | undefined)?.code === 'KVMESH_ERR_RPC_UNAUTHENTICATED') {
        throw new KvError(
          'KVMESH_ERR_RPC_UNAUTHENTICATED',
          `${to} refused this node's frame as not authenticated: give every node of the cluster the same secrets (cluster.secrets)`,
          { details: { remote: to } },
        );
      }
    }
    this.#refuse(to, opened, 'response');
    throw new KvError(
      'KVMESH_ERR_RPC_UNAUTHENTICATED',
      `the response from ${to} is not authenticated (${opened}); it was dropped`,
      { details: { remote: to } },
    );
  }

  #errorFrame(codec: Codec, err: unknown, from: string, replyTo?: Uint8Array): Uint8Array {
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
    return this.#frame(
      { codecTag: codec.tag, kind: FrameKind.Error, deadlineMs: 0 },
      codec.encode(CORE_MESSAGES.error, { code, message }),
      replyTo,
    );
  }
}

function remoteError(message: Message, from: string): KvError {
  const payload = message.payload as { code?: unknown; message?: unknown };
  const text = typeof payload.message === 'string' ? payload.message : 'remote error';
  const code = isKvError({ code: payload.code }) ? (payload.code as ErrorCode) : 'KVMESH_ERR_RPC_REMOTE';
  return new KvError(code, text, { details: { remote: from } });
}
