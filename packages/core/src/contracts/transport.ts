import type { Lifecycle } from './lifecycle.js';

/** What a transport calls when bytes arrive. Installed with `setHandler` before `start()`. */
export interface TransportHandler {
  /**
   * One incoming request; the resolved bytes are sent back as its response.
   * Called concurrently for concurrent requests. A rejection is a bug in the
   * handler: the transport answers with a failure the caller sees as
   * KVMESH_ERR_TRANSPORT_UNREACHABLE and logs it.
   */
  onRequest(frame: Uint8Array, from: string): Promise<Uint8Array>;
  /** One incoming one-way frame (gossip). Must not throw; must not block. */
  onMessage(frame: Uint8Array, from: string): void;
}

export interface RequestOptions {
  /** Deadline: the request fails with KVMESH_ERR_RPC_TIMEOUT after this many ms. */
  timeoutMs: number;
  /** Cancels the request: it fails with KVMESH_ERR_RPC_ABORTED. */
  signal?: AbortSignal;
}

/**
 * Moves opaque frames between nodes. Addresses are URIs whose scheme names
 * the transport: `http://127.0.0.1:4000`, `udp://127.0.0.2:7946`, `sim://n1`.
 *
 * `request` and `send` may be called concurrently, from any callback, only
 * between `start()` and `stop()` (otherwise KVMESH_ERR_TRANSPORT_CLOSED).
 * A transport never decodes frames and never retries a request on its own:
 * retry policy belongs to the caller.
 */
export interface Transport extends Lifecycle {
  /** Strategy name, e.g. `udp`. */
  readonly name: string;
  /**
   * This endpoint's own URI, known from construction on. When it was built
   * with port 0 (any free port), `start()` replaces the 0 with the port it
   * got, so read it again after `start()` resolves before telling peers.
   */
  readonly address: string;
  /** Largest frame `request` accepts (and the largest response it reads). */
  readonly maxFrameBytes: number;
  /** Largest frame `send` accepts: a datagram-safe size on datagram transports. */
  readonly maxMessageBytes: number;
  /** Installs the receiver. Called exactly once, before `start()`. */
  setHandler(handler: TransportHandler): void;
  /** Begins listening at `address`. */
  start(): Promise<void>;
  /** Stops listening, fails in-flight requests with KVMESH_ERR_TRANSPORT_CLOSED, frees sockets. Idempotent. */
  stop(): Promise<void>;
  /**
   * Sends `frame` to `to` and resolves with the response frame.
   * @throws KvError KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE (before sending),
   *   KVMESH_ERR_TRANSPORT_ADDRESS, KVMESH_ERR_TRANSPORT_UNREACHABLE,
   *   KVMESH_ERR_RPC_TIMEOUT, KVMESH_ERR_RPC_ABORTED, KVMESH_ERR_TRANSPORT_CLOSED.
   */
  request(to: string, frame: Uint8Array, options: RequestOptions): Promise<Uint8Array>;
  /**
   * Best-effort one-way frame: it may be lost, duplicated or reordered, and no
   * error reports that. Throws synchronously only for a frame over
   * `maxMessageBytes` (KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE) or a bad address.
   */
  send(to: string, frame: Uint8Array): void;
}
