import type { Message } from './codec.js';

/** Who sent an incoming message. */
export interface RpcContext {
  /** Transport URI of the sender (as the transport saw it). */
  readonly from: string;
  /** Aborted when the request's deadline passes or the node stops. */
  readonly signal: AbortSignal;
}

export type RequestHandler = (payload: any, context: RpcContext) => Message | Promise<Message>;
export type MessageListener = (payload: any, context: RpcContext) => void;

export interface CallOptions {
  /** Deadline in ms; default: the node's `rpc.timeoutMs`. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Typed messages between nodes: request/response with deadlines and
 * cancellation, and one-way messages for gossip. Every type must be
 * registered in the MessageRegistry first.
 *
 * Safe to call concurrently and from any callback once the node started.
 * A handler that throws a KvError makes the caller's `request` reject with a
 * KvError of the same code and message; any other throw arrives as
 * KVMESH_ERR_RPC_REMOTE (its stack never crosses the wire).
 */
export interface Rpc {
  /** This node's transport URI. */
  readonly address: string;
  /**
   * Sends a request and resolves with the response message.
   * @throws KvError KVMESH_ERR_RPC_TIMEOUT, KVMESH_ERR_RPC_ABORTED,
   *   KVMESH_ERR_RPC_NO_HANDLER, KVMESH_ERR_TRANSPORT_*, or the handler's code.
   */
  request<P = any>(to: string, type: string, payload: unknown, options?: CallOptions): Promise<Message<P>>;
  /** Best-effort one-way message (may be lost). Throws only for unregistered types or oversized frames. */
  send(to: string, type: string, payload: unknown): void;
  /** Serves requests of `type`. One handler per type; registering twice throws. */
  handle(type: string, handler: RequestHandler): void;
  /** Listens to one-way messages of `type`; returns the unsubscribe function. */
  on(type: string, listener: MessageListener): () => void;
}

/** The schema of one registered message type. */
export interface MessageSchema {
  readonly name: string;
  /** Canonical form of `value`, or KVMESH_ERR_MESSAGE_INVALID naming the bad field. */
  normalize(value: unknown): Record<string, unknown>;
  /** Protobuf binary encoding of a (normalized) value. */
  toBinary(value: unknown): Uint8Array;
  /** Decodes protobuf binary into canonical form; throws KVMESH_ERR_CODEC_DECODE. */
  fromBinary(bytes: Uint8Array): Record<string, unknown>;
  /** JSON-safe form: bytes as base64 strings. */
  toJson(value: unknown): Record<string, unknown>;
  /** Canonical form from the JSON-safe form; throws KVMESH_ERR_CODEC_DECODE. */
  fromJson(json: unknown): Record<string, unknown>;
}

/**
 * Every message type a node can send or receive, described in protobuf
 * schema language so that all codecs share one definition. Plugins register
 * their `.proto` sources when they are built; registering the same source
 * twice is harmless.
 */
export interface MessageRegistry {
  /**
   * Adds every message type of a `.proto` source.
   * @returns the fully qualified names it declared.
   * @throws KvError KVMESH_ERR_MESSAGE_DUPLICATE when a name exists with another definition.
   */
  define(protoSource: string): string[];
  /** @throws KvError KVMESH_ERR_MESSAGE_UNKNOWN */
  get(type: string): MessageSchema;
  has(type: string): boolean;
  /** Every registered type name, sorted. */
  names(): string[];
}
