import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  KvError,
  isKvError,
  type Clock,
  type HostedHttp,
  type Logger,
  type NodeInfo,
  type RequestOptions,
  type Transport,
  type TransportHandler,
} from '@kvmesh/core';
import { Agent } from 'undici';
import { formatHostPort, parseHostPort, parseTransportUri, type HostPort } from '../host-port.js';
import { FrameKind, FrameReader, FrameStreamError, FrameWriter } from './frame-stream.js';
import { BODY_TOO_LARGE, readBody } from './read-body.js';
import { STREAM_HEADER, StreamClient, isNotSent, isStreamRefused } from './stream-client.js';

export interface HttpTransportOptions {
  /** Keep-alive connections kept per peer; also the most requests in flight to one peer. */
  readonly connectionsPerPeer: number;
  /** How long an idle connection stays open, on both the client and the server side. */
  readonly keepAliveTimeoutMs: number;
  /** Largest request or response body. */
  readonly maxFrameBytes: number;
  /** URL path of requests; one-way messages go to `path + '/msg'`. Must be the same on every node. */
  readonly path: string;
  /**
   * Frames to a peer ride one multiplexed connection (a `CONNECT` to its
   * port, then frames both ways), frames of one turn of the event loop in
   * one write. False: one POST per frame. A peer that serves no stream gets
   * POSTs either way.
   */
  readonly stream: boolean;
}

export const HTTP_TRANSPORT_DEFAULTS: HttpTransportOptions = Object.freeze({
  connectionsPerPeer: 8,
  keepAliveTimeoutMs: 10_000,
  maxFrameBytes: 16 * 1024 * 1024,
  path: '/_kvmesh/rpc',
  stream: true,
});

export interface HttpTransportComponents {
  readonly node: Pick<NodeInfo, 'address'>;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** Header carrying the sender's own transport URI (its listening address, not its ephemeral client port). */
export const FROM_HEADER = 'x-kvmesh-from';
/** A one-way POST that gets no answer in this time is abandoned (it may still have arrived). */
const MESSAGE_TIMEOUT_MS = 10_000;
const OCTET_STREAM = 'application/octet-stream';
/** How long a connection whose oversized body was refused stays open, so the client can read the 413. */
const LINGER_MS = 2_000;
/** How long a peer that refused a frame stream gets POSTs before the stream is tried again. */
const STREAM_RETRY_MS = 60_000;
/** A served frame stream with no traffic for this many keep-alive timeouts is closed (its client is gone). */
const STREAM_IDLE_FACTOR = 3;
const EMPTY = new Uint8Array(0);

interface InFlight {
  fail(error: KvError): void;
}

/**
 * Frames over HTTP/1.1: a request is `POST {path}` with the frame as body and
 * the response frame as the 200 body; a one-way message is
 * `POST {path}/msg`, answered 204 as soon as its body is read. The client is
 * an undici Agent keeping `connectionsPerPeer` keep-alive connections per
 * peer; deadlines run on the injected Clock.
 *
 * Two ways to serve:
 * - on its own (default): `start()` binds a node:http server at the node
 *   address (`host:port`; port 0 picks a free port and `address` names it
 *   once `start()` resolved).
 * - through a host (`Transport.hostHttp`): a server that already listens on
 *   the node's port (the node's API server) calls `hostHttp(hostPort)`
 *   before `start()` and offers the returned `handle` every request under
 *   `path`; it returns false for paths that are not the transport's, which
 *   the host serves itself. `start()` then binds nothing, so one node needs
 *   one port.
 *
 * Requests and garbage from the network never throw out of the server: an
 * oversized body gets 413 without being buffered whole, a malformed request
 * gets 400, a failing handler gets 500 (the caller sees
 * KVMESH_ERR_TRANSPORT_UNREACHABLE).
 */
export class HttpTransport implements Transport {
  readonly name = 'http';
  readonly maxFrameBytes: number;
  readonly maxMessageBytes: number;
  private readonly options: HttpTransportOptions;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private bind: HostPort;
  private handler: TransportHandler | undefined;
  private server: Server | undefined;
  private agent: Agent | undefined;
  private accepting = false;
  private hosted = false;
  private readonly inFlight = new Set<InFlight>();
  /** Open frame streams to peers, by `host:port`. */
  private readonly streams = new Map<string, StreamClient>();
  /** Frame streams this transport serves; `fail` ends one gracefully. */
  private readonly served = new Set<InFlight>();
  /** Peers that refused a frame stream, until when (clock ms) they get POSTs. */
  private readonly noStream = new Map<string, number>();

  constructor(components: HttpTransportComponents, options: Partial<HttpTransportOptions> = {}) {
    this.options = { ...HTTP_TRANSPORT_DEFAULTS, ...options };
    if (!this.options.path.startsWith('/')) {
      throw new KvError('KVMESH_ERR_TRANSPORT_ADDRESS', `path must start with '/' (found '${this.options.path}')`);
    }
    this.maxFrameBytes = this.options.maxFrameBytes;
    this.maxMessageBytes = this.options.maxFrameBytes;
    this.clock = components.clock;
    this.logger = components.logger.child({ transport: 'http' });
    this.bind = parseHostPort(components.node.address, 'node address');
  }

  get address(): string {
    return `http://${formatHostPort(this.bind)}`;
  }

  /** The path this transport serves requests on; one-way messages use `path + '/msg'`. */
  get path(): string {
    return this.options.path;
  }

  /**
   * Hands serving to the host's server at `hostPort` (Transport.hostHttp):
   * requests under `path` are offered to `handleHttp`.
   * @throws KvError KVMESH_ERR_KERNEL_STATE after `start()`, KVMESH_ERR_TRANSPORT_ADDRESS for a bad `hostPort`.
   */
  hostHttp(hostPort: string): HostedHttp {
    this.serveThroughHost(hostPort);
    return {
      pathPrefix: this.options.path,
      handle: (req, res) => this.handleHttp(req, res),
      connect: (req, socket, head) => this.handleConnect(req, socket, head),
      drain: () => this.drainStreams(),
    };
  }

  /**
   * The binding half of `hostHttp`: `start()` will bind nothing and the
   * address becomes `hostPort` (the address the host really listens on, when
   * it was given port 0); the host passes requests to `handleHttp`. Call
   * before `start()`.
   */
  serveThroughHost(hostPort: string): void {
    if (this.accepting) {
      throw new KvError('KVMESH_ERR_KERNEL_STATE', 'serving through a host must be arranged before start()');
    }
    this.bind = parseHostPort(hostPort, 'host address');
    this.hosted = true;
  }

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  async start(): Promise<void> {
    if (this.accepting) return;
    if (!this.hosted) await this.listen();
    this.agent = new Agent({
      connections: this.options.connectionsPerPeer,
      pipelining: 1,
      keepAliveTimeout: this.options.keepAliveTimeoutMs,
      keepAliveMaxTimeout: this.options.keepAliveTimeoutMs,
      maxResponseSize: this.maxFrameBytes,
    });
    this.accepting = true;
  }

  async stop(): Promise<void> {
    if (!this.accepting && this.server === undefined) return;
    this.accepting = false;
    const closed = new KvError('KVMESH_ERR_TRANSPORT_CLOSED', `transport ${this.address} stopped`);
    for (const request of [...this.inFlight]) request.fail(closed);
    for (const client of [...this.streams.values()]) client.close(closed);
    this.streams.clear();
    const agent = this.agent;
    this.agent = undefined;
    const server = this.server;
    this.server = undefined;
    await Promise.all([
      agent?.destroy().catch((err: unknown) => this.logger.debug({ err }, 'closing client connections failed')),
      server && closeServer(server),
    ]);
  }

  /**
   * Serves `req` if its path is this transport's (`path` or `path/msg`) and
   * returns true; returns false, without touching `req` or `res`, otherwise.
   * While the transport is not started, its paths get 503.
   */
  handleHttp(req: IncomingMessage, res: ServerResponse): boolean {
    const path = (req.url ?? '').split('?', 1)[0];
    const oneWay = path === `${this.options.path}/msg`;
    if (path !== this.options.path && !oneWay) return false;
    this.serve(req, res, oneWay).catch((err: unknown) => {
      this.logger.error({ err }, 'serving a transport request failed');
      if (!res.headersSent) reply(res, 500);
      else res.destroy();
    });
    return true;
  }

  async request(to: string, frame: Uint8Array, options: RequestOptions): Promise<Uint8Array> {
    const agent = this.checkOpen();
    const origin = this.origin(to);
    if (frame.length > this.maxFrameBytes) {
      throw new KvError(
        'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE',
        `request frame of ${frame.length} bytes exceeds maxFrameBytes ${this.maxFrameBytes}`,
      );
    }
    const { signal } = options;
    if (signal?.aborted) throw aborted(to);
    for (let attempt = 0; ; attempt++) {
      const stream = this.streamTo(to);
      if (stream === undefined) break;
      try {
        return await this.streamRequest(stream, to, frame, options);
      } catch (err) {
        // A connection found closed before the frame left (the peer
        // restarted since the last request) gets one fresh connection.
        if (isNotSent(err) && attempt === 0) continue;
        if (!isStreamRefused(err)) throw err;
        break;
      }
    }
    const controller = new AbortController();
    let failure: KvError | undefined;
    const entry: InFlight = {
      fail: (error) => {
        if (failure !== undefined) return;
        failure = error;
        controller.abort(error);
      },
    };
    const timer = this.clock.setTimeout(
      () => entry.fail(new KvError('KVMESH_ERR_RPC_TIMEOUT', `no response from ${to} within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    const onAbort = (): void => entry.fail(aborted(to));
    signal?.addEventListener('abort', onAbort, { once: true });
    this.inFlight.add(entry);
    try {
      const res = await agent.request({
        origin,
        path: this.options.path,
        method: 'POST',
        body: frame,
        headers: { 'content-type': OCTET_STREAM, [FROM_HEADER]: this.address },
        signal: controller.signal,
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      if (res.statusCode !== 200) {
        await res.body.dump().catch(() => undefined);
        throw statusError(res.statusCode, to);
      }
      const length = Number(res.headers['content-length'] ?? 0);
      if (length > this.maxFrameBytes) {
        res.body.destroy();
        throw tooLargeResponse(length, this.maxFrameBytes);
      }
      const body = new Uint8Array(await res.body.arrayBuffer());
      if (failure !== undefined) throw failure;
      return body;
    } catch (err) {
      if (failure !== undefined) throw failure;
      throw clientError(err, to, this.maxFrameBytes);
    } finally {
      timer.cancel();
      signal?.removeEventListener('abort', onAbort);
      this.inFlight.delete(entry);
    }
  }

  send(to: string, frame: Uint8Array): void {
    const agent = this.checkOpen();
    const origin = this.origin(to);
    if (frame.length > this.maxMessageBytes) {
      throw new KvError(
        'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE',
        `message frame of ${frame.length} bytes exceeds maxMessageBytes ${this.maxMessageBytes}`,
      );
    }
    const stream = this.streamTo(to);
    if (stream !== undefined) {
      stream.send(frame);
      return;
    }
    const controller = new AbortController();
    const entry: InFlight = { fail: (error) => controller.abort(error) };
    const timer = this.clock.setTimeout(() => controller.abort(), MESSAGE_TIMEOUT_MS);
    this.inFlight.add(entry);
    agent
      .request({
        origin,
        path: `${this.options.path}/msg`,
        method: 'POST',
        body: frame,
        headers: { 'content-type': OCTET_STREAM, [FROM_HEADER]: this.address },
        signal: controller.signal,
        headersTimeout: 0,
        bodyTimeout: 0,
      })
      .then((res) => res.body.dump())
      .catch((err: unknown) => this.logger.debug({ err, to }, 'one-way message not delivered'))
      .finally(() => {
        timer.cancel();
        this.inFlight.delete(entry);
      });
  }

  /**
   * Serves a `CONNECT` whose STREAM_HEADER names this transport's path as a
   * frame stream and returns true; returns false, touching nothing, for any
   * other `CONNECT` (the host answers it). Before `start()` and after
   * `stop()` the stream is refused with 503.
   */
  handleConnect(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (req.headers[STREAM_HEADER] !== this.options.path) return false;
    socket.on('error', () => undefined);
    if (!this.accepting || this.handler === undefined) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return true;
    }
    this.serveStream(socket as Socket, head, senderOf(req));
    return true;
  }

  /**
   * Ends every frame stream this transport serves, gracefully (GoAway, then
   * the connection's end): a host that drains waits for them. New streams
   * are still taken while the transport runs.
   */
  drainStreams(): void {
    for (const stream of [...this.served]) stream.fail(new KvError('KVMESH_ERR_TRANSPORT_CLOSED', 'draining'));
  }

  /** The frame stream to use for `to`, opening one if none is open; undefined to send POSTs. */
  private streamTo(to: string): StreamClient | undefined {
    if (!this.options.stream) return undefined;
    const peer = parseTransportUri(to, 'http');
    const key = formatHostPort(peer);
    const open = this.streams.get(key);
    if (open !== undefined) return open;
    const until = this.noStream.get(key);
    if (until !== undefined) {
      if (this.clock.now() < until) return undefined;
      this.noStream.delete(key);
    }
    const client = new StreamClient({
      peer,
      from: this.address,
      path: this.options.path,
      fromHeader: FROM_HEADER,
      maxFrameBytes: this.maxFrameBytes,
      idleMs: this.options.keepAliveTimeoutMs,
      clock: this.clock,
      logger: this.logger,
      onClose: (closed, refused) => {
        if (this.streams.get(key) === closed) this.streams.delete(key);
        if (refused) {
          this.logger.info({ peer: key }, 'peer serves no frame stream: one POST per frame to it for a while');
          this.noStream.set(key, this.clock.now() + STREAM_RETRY_MS);
        }
      },
    });
    this.streams.set(key, client);
    return client;
  }

  /** One request over a frame stream, with the caller's deadline and abort signal. */
  private streamRequest(
    stream: StreamClient,
    to: string,
    frame: Uint8Array,
    options: RequestOptions,
  ): Promise<Uint8Array> {
    const { signal, timeoutMs } = options;
    return new Promise<Uint8Array>((resolve, reject) => {
      let id = 0;
      let done = false;
      const finish = (error: unknown, value?: Uint8Array): void => {
        if (done) return;
        done = true;
        timer.cancel();
        signal?.removeEventListener('abort', onAbort);
        if (error === undefined) resolve(value!);
        else {
          stream.abandon(id);
          reject(error);
        }
      };
      const timer = this.clock.setTimeout(
        () => finish(new KvError('KVMESH_ERR_RPC_TIMEOUT', `no response from ${to} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onAbort = (): void => finish(aborted(to));
      signal?.addEventListener('abort', onAbort, { once: true });
      stream
        .request(frame, (assigned) => {
          id = assigned;
        })
        .then(
          (response) => finish(undefined, response),
          (err: unknown) => finish(err),
        );
    });
  }

  /**
   * The serving side of a frame stream: answers the `CONNECT` with 200, then
   * hands each request frame to the handler (concurrently, as separate
   * connections would) and queues its response; a one-way frame goes to
   * `onMessage`. Bytes that are no frame end the connection. Reading pauses
   * while the socket cannot take more responses.
   */
  private serveStream(socket: Socket, head: Buffer, from: string): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true);
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    const writer = new FrameWriter(socket, {
      onFull: () => {
        socket.pause();
        socket.once('drain', () => socket.resume());
      },
    });
    let lastId = 0;
    let closing = false;
    const entry: InFlight = {
      // On stop: tell the client which requests were taken (it sends the
      // others again elsewhere), end the connection, and keep reading what
      // it still sends until it closes too (closing with unread bytes would
      // reset the connection and could lose the GoAway).
      fail: () => {
        if (closing) return;
        closing = true;
        writer.enqueue(FrameKind.GoAway, lastId, EMPTY);
        writer.flush();
        socket.end();
        setTimeout(() => socket.destroy(), LINGER_MS).unref();
      },
    };
    this.inFlight.add(entry);
    this.served.add(entry);
    socket.once('close', () => {
      this.inFlight.delete(entry);
      this.served.delete(entry);
    });
    socket.setTimeout(this.options.keepAliveTimeoutMs * STREAM_IDLE_FACTOR, () => socket.destroy());
    const reader = new FrameReader(
      this.maxFrameBytes,
      (kind, id, payload) => {
        if (closing) return;
        if (kind === FrameKind.Request) {
          lastId = id;
          this.serveFrame(writer, id, payload, from);
        } else if (kind === FrameKind.Message) {
          try {
            this.handler?.onMessage(payload, from);
          } catch (err) {
            this.logger.error({ err, from }, 'one-way message handler threw');
          }
        } else throw new FrameStreamError(`a client sent frame kind ${kind}`);
      },
      (kind, id) => {
        this.logger.warn({ from, kind }, 'a frame over maxFrameBytes arrived on a frame stream: refused');
        if (kind === FrameKind.Request) writer.enqueue(FrameKind.TooLarge, id, EMPTY);
      },
    );
    const onData = (chunk: Buffer): void => {
      try {
        reader.push(chunk);
      } catch (err) {
        if (!(err instanceof FrameStreamError)) throw err;
        this.logger.warn({ from, err: err.message }, 'garbage on a frame stream: closing it');
        socket.destroy();
      }
    };
    socket.on('data', onData);
    if (head.length > 0) onData(head);
  }

  private serveFrame(writer: FrameWriter, id: number, payload: Uint8Array, from: string): void {
    const handler = this.handler;
    if (!this.accepting || handler === undefined) {
      writer.enqueue(FrameKind.Failure, id, EMPTY);
      return;
    }
    handler.onRequest(payload, from).then(
      (response) => {
        if (!(response instanceof Uint8Array) || response.length > this.maxFrameBytes) {
          this.logger.error({ from, bytes: response?.length }, 'request handler answered something unsendable');
          writer.enqueue(response instanceof Uint8Array ? FrameKind.TooLarge : FrameKind.Failure, id, EMPTY);
        } else writer.enqueue(FrameKind.Response, id, response);
      },
      (err: unknown) => {
        this.logger.error({ err, from }, 'request handler failed');
        writer.enqueue(FrameKind.Failure, id, EMPTY);
      },
    );
  }

  private checkOpen(): Agent {
    if (!this.accepting || this.agent === undefined) {
      throw new KvError('KVMESH_ERR_TRANSPORT_CLOSED', `transport ${this.address} is not started`);
    }
    return this.agent;
  }

  private origin(to: string): string {
    return `http://${formatHostPort(parseTransportUri(to, 'http'))}`;
  }

  private async listen(): Promise<void> {
    const server = createServer({ keepAliveTimeout: this.options.keepAliveTimeoutMs }, (req, res) => {
      if (!this.handleHttp(req, res)) reply(res, 404);
    });
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!this.handleConnect(req, socket, head)) {
        socket.on('error', () => undefined);
        socket.end('HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      }
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      this.logger.debug({ err: err.code ?? err.message }, 'malformed HTTP from a client');
      if (socket.writable && !socket.destroyed) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(
          new KvError('KVMESH_ERR_TRANSPORT_LISTEN', `cannot listen at ${this.address}: ${err.code ?? err.message}`, {
            cause: err,
          }),
        );
      };
      server.once('error', onError);
      server.listen({ host: this.bind.host, port: this.bind.port }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.error({ err }, 'http transport server error'));
    const bound = server.address();
    if (bound !== null && typeof bound === 'object') this.bind = { host: this.bind.host, port: bound.port };
    this.server = server;
  }

  /**
   * 413 without reading the rest of the body. The socket is not closed at
   * once: closing it with unread bytes makes the kernel reset the connection,
   * and the client may lose the 413 before reading it. Left paused, TCP
   * back-pressure stops the client; the socket goes after LINGER_MS.
   */
  private refuseTooLarge(req: IncomingMessage, res: ServerResponse): void {
    req.pause();
    reply(res, 413);
    const socket = req.socket;
    const entry: InFlight = { fail: () => socket.destroy() };
    const timer = this.clock.setTimeout(() => {
      this.inFlight.delete(entry);
      socket.destroy();
    }, LINGER_MS);
    socket.once('close', () => {
      timer.cancel();
      this.inFlight.delete(entry);
    });
    this.inFlight.add(entry);
  }

  private async serve(req: IncomingMessage, res: ServerResponse, oneWay: boolean): Promise<void> {
    req.on('error', () => undefined);
    if (!this.accepting) {
      reply(res, 503, true);
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      reply(res, 405);
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (!(declared <= this.maxFrameBytes)) {
      this.refuseTooLarge(req, res);
      return;
    }
    const body = await readBody(req, this.maxFrameBytes).catch(() => undefined);
    if (body === undefined) return;
    if (body === BODY_TOO_LARGE) {
      this.refuseTooLarge(req, res);
      return;
    }
    const from = senderOf(req);
    const handler = this.handler;
    if (oneWay) {
      reply(res, 204);
      try {
        handler?.onMessage(body, from);
      } catch (err) {
        this.logger.error({ err, from }, 'one-way message handler threw');
      }
      return;
    }
    let response: Uint8Array;
    try {
      if (handler === undefined) throw new Error('no handler installed');
      response = await handler.onRequest(body, from);
    } catch (err) {
      this.logger.error({ err, from }, 'request handler failed');
      reply(res, 500);
      return;
    }
    if (!(response instanceof Uint8Array) || response.length > this.maxFrameBytes) {
      this.logger.error({ from, bytes: response?.length }, 'request handler answered something unsendable');
      reply(res, response instanceof Uint8Array ? 413 : 500);
      return;
    }
    res.writeHead(200, { 'content-type': OCTET_STREAM, 'content-length': response.length });
    res.end(response);
  }
}

function reply(res: ServerResponse, status: number, close = false): void {
  if (res.headersSent || res.destroyed) return;
  if (close) res.setHeader('connection', 'close');
  res.writeHead(status, { 'content-length': 0 });
  res.end();
}

function senderOf(req: IncomingMessage): string {
  const header = req.headers[FROM_HEADER];
  if (typeof header === 'string' && header.startsWith('http://')) {
    try {
      parseTransportUri(header, 'http');
      return header;
    } catch {
      // An unparsable claim falls back to the socket's own address.
    }
  }
  const socket = req.socket;
  return `http://${formatHostPort({ host: socket.remoteAddress ?? 'unknown', port: socket.remotePort ?? 0 })}`;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function aborted(to: string): KvError {
  return new KvError('KVMESH_ERR_RPC_ABORTED', `request to ${to} was aborted by the caller`);
}

function tooLargeResponse(bytes: number, max: number): KvError {
  return new KvError('KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE', `response of ${bytes} bytes exceeds maxFrameBytes ${max}`);
}

function statusError(status: number, to: string): KvError {
  if (status === 413) {
    return new KvError('KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE', `${to} refused a frame as too large (413)`);
  }
  const why = status === 503 ? 'is not serving yet or any more' : status === 500 ? 'failed to handle the request' : '';
  return new KvError(
    'KVMESH_ERR_TRANSPORT_UNREACHABLE',
    `${to} ${why || `answered HTTP ${status}`}${why ? ` (HTTP ${status})` : ''}`,
  );
}

function clientError(err: unknown, to: string, maxFrameBytes: number): KvError {
  if (isKvError(err)) return err;
  const code = (err as { code?: unknown }).code;
  if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') {
    return new KvError(
      'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE',
      `response from ${to} exceeds maxFrameBytes ${maxFrameBytes}`,
      {
        cause: err,
      },
    );
  }
  const reason = typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
  return new KvError('KVMESH_ERR_TRANSPORT_UNREACHABLE', `cannot reach ${to}: ${reason}`, { cause: err });
}
