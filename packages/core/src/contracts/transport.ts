import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Lifecycle } from './lifecycle.js';

/** What a transport calls when bytes arrive. Installed with `setHandler` before `start()`. */
export interface TransportHandler {
  /**
   * One incoming request; the resolved bytes are sent back as its response.
   * Called concurrently for concurrent requests, and at most once per
   * request: copies the network made of it are not handed over again (see
   * "Delivery" on Transport), so the handler may apply what it carries
   * without guarding against duplicates. A rejection is a bug in the
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
 * A transport's incoming side served by a host's HTTP/1.1 server (what
 * `Transport.hostHttp` returns).
 */
export interface HostedHttp {
  /**
   * Every path the transport serves starts with this (e.g. `/_kvmesh/rpc`),
   * so the host offers `handle` only those requests and every other request
   * costs one string comparison. `/` offers it everything.
   */
  readonly pathPrefix: string;
  /**
   * Offered each request whose URL starts with `pathPrefix`, before the
   * host's own routes. Returns true when the request is the transport's: it
   * then owns `req` and `res` and answers them itself, also on failure (a 5xx,
   * or a destroyed response), so nothing it does may throw or reject out of
   * it. Returns false for a request that is not its own, having touched
   * neither `req` nor `res` (no body read, no header set): the host serves it.
   *
   * Called concurrently for requests on different connections; requests on
   * one connection are offered one at a time, in arrival order, each after
   * the response to the one before it finished. Must not block (serve
   * asynchronously). May be called before `start()` and after `stop()`: a
   * transport that is not started answers its own paths with 503.
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /**
   * Optional: offered every `CONNECT` request the host's server receives
   * (node:http's 'connect' event), so a transport can take the connection
   * over as a stream of its own (the http transport's frame stream). Returns
   * true when the request is the transport's: it then owns `socket` (and the
   * bytes already read past the header, `head`) and answers on it itself,
   * also on failure. Returns false, having touched nothing, for a `CONNECT`
   * that is not its own: the host refuses it (it proxies nothing). Never
   * throws. May be called before `start()` and after `stop()`: a transport
   * that is not started refuses its own with 503.
   */
  connect?(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /**
   * Optional, with `connect`: the host stopped accepting connections and
   * waits for its open ones to end (a graceful stop). The connections taken
   * over with `connect` count among them, so the transport ends each of them
   * now, gracefully: the peer learns which of its requests were taken and
   * sends the rest elsewhere. Requests already taken are still answered if
   * they finish before the connection ends. Never throws; idempotent.
   */
  drain?(): void;
}

/**
 * Moves opaque frames between nodes. Addresses are URIs whose scheme names
 * the transport: `http://127.0.0.1:4000`, `udp://127.0.0.2:7946`, `sim://n1`.
 *
 * `request` and `send` may be called concurrently, from any callback, only
 * between `start()` and `stop()` (otherwise KVMESH_ERR_TRANSPORT_CLOSED).
 * A transport never decodes frames and never retries a request on its own:
 * retry policy belongs to the caller.
 *
 * Delivery: a request may arrive more than once at the transport level (a
 * datagram network duplicates packets). A transport calls
 * `TransportHandler.onRequest` at most once per (peer, request id), the
 * request id being whatever its wire pairs a response with: a copy of a
 * request still being handled is not handed over again, and a copy of one
 * already answered gets that same answer again if the transport kept it
 * (it may keep only small answers, in bounded memory) or none. So a freeze
 * token or a conditional write is never applied twice because the network
 * repeated it. A transport whose wire never duplicates (one request per
 * exchange on a TCP connection, as http) satisfies this as it is; one that
 * can (udp, the simulated one) keeps a bounded table of the requests it
 * served recently (`RequestDedup`), and a copy arriving after the table
 * forgot its request (past the transport's window, or pushed out by newer
 * requests) is served as new. A caller sending the same bytes again is a
 * new request.
 */
export interface Transport extends Lifecycle {
  /** Strategy name, e.g. `udp`. */
  readonly name: string;
  /**
   * This endpoint's own URI, known from construction on. When it was built
   * with port 0 (any free port), `start()` replaces the 0 with the port it
   * got, so read it again after `start()` resolves before telling peers.
   * It is `<scheme>://<host>:<port>` for a transport reached at a host and
   * port, and a peer of the same transport at `host:port` (a join seed, an
   * entry of a view) is `<scheme>://host:port` with the same scheme: that is
   * how the server turns `host:port` seeds into transport URIs.
   */
  readonly address: string;
  /**
   * Largest frame `request` accepts (and the largest response it reads).
   * Not bounded by a datagram: a datagram transport carries frames larger
   * than one datagram some other way (udp: over a stream).
   */
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
  /**
   * Optional: serve incoming frames through an HTTP/1.1 server the host
   * already runs, so one node needs one port. A transport whose wire is not
   * HTTP leaves it out; the host then lets `start()` bind the transport's own
   * socket.
   *
   * Called at most once, before `start()` (after `setHandler` or before it),
   * by a host whose server listens at `hostPort`: the address it really
   * listens on, when it asked for port 0. From then on `start()` binds no
   * server of its own for what the host serves (a transport with a datagram
   * side still binds its datagram socket, at `hostPort`'s port number),
   * `address` names `hostPort`, and incoming HTTP requests reach the
   * transport only through the returned `handle`, which the host
   * offers every request under `pathPrefix` for as long as it serves (before
   * `start()` and after `stop()` included). `stop()` still fails in-flight
   * requests and frees the client side; closing the host's server is the
   * host's job.
   *
   * Must not bind, connect or block; must not be called concurrently with
   * itself or with `start()`.
   * @throws KvError KVMESH_ERR_KERNEL_STATE when called after `start()`;
   *   KVMESH_ERR_TRANSPORT_ADDRESS when `hostPort` is not `host:port`.
   */
  hostHttp?(hostPort: string): HostedHttp;
}
