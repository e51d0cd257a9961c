import { connect, type Socket } from 'node:net';
import { KvError, type Clock, type Logger } from '@kvmesh/core';
import { formatHostPort, type HostPort } from '../host-port.js';
import { FrameKind, FrameReader, FrameStreamError, FrameWriter } from './frame-stream.js';

/** Request header naming the frame service a `CONNECT` asks for (the transport's path). */
export const STREAM_HEADER = 'x-kvmesh-stream';
/** Longest answer to a `CONNECT` read before giving up on it. */
const MAX_HANDSHAKE_BYTES = 8 * 1024;
/** Request ids wrap below 2^32 (the header's u32), skipping 0 (one-way frames). */
const MAX_ID = 0xffff_ffff;

/** What a stream client needs from its transport. */
export interface StreamClientSettings {
  readonly peer: HostPort;
  /** This node's transport URI (sent as the sender). */
  readonly from: string;
  /** The transport's path: the frame service's name. */
  readonly path: string;
  /** Header name carrying the sender. */
  readonly fromHeader: string;
  readonly maxFrameBytes: number;
  /** How long the connection stays open with nothing in flight. */
  readonly idleMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Called once when the connection is gone (closed, failed, or refused). */
  readonly onClose: (client: StreamClient, refused: boolean) => void;
}

interface Pending {
  resolve(frame: Uint8Array): void;
  reject(error: KvError): void;
  /** The frame was handed to the socket (before that, a failed connection certainly did not serve it). */
  sent: boolean;
}

/**
 * The thrown error's marker when the peer answered the `CONNECT` with
 * anything but 200: it serves no frame stream (an older node, or a host
 * without the hook), so the caller falls back to one POST per request.
 */
export const STREAM_REFUSED = Symbol('frame stream refused');
/**
 * The thrown error's marker when the connection failed before the request
 * was written to it: the peer never saw it, so it can be sent again on a new
 * connection.
 */
const NOT_SENT = Symbol('frame not sent');

/**
 * One multiplexed connection to one peer: a `CONNECT` handshake on its HTTP
 * port (`CONNECT host:port` with the transport path in STREAM_HEADER,
 * answered `200`), then frames both ways (frame-stream.ts). Requests issued
 * while the handshake runs wait for it. Any failure of the connection fails
 * every request in flight with KVMESH_ERR_TRANSPORT_UNREACHABLE (they may
 * or may not have been served) and ends the client: the transport opens a
 * new one for the next request.
 */
export class StreamClient {
  readonly #settings: StreamClientSettings;
  readonly #socket: Socket;
  readonly #writer: FrameWriter;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  /** Ids of requests queued in the writer and not yet written. */
  readonly #unsent: number[] = [];
  #open = false;
  #connected = false;
  #draining = false;
  #closed = false;
  /** Frames queued before the handshake finished. */
  #early: Array<() => void> = [];
  #idle: { cancel(): void } | undefined;

  constructor(settings: StreamClientSettings) {
    this.#settings = settings;
    const { peer } = settings;
    const socket = connect({ host: peer.host, port: peer.port, noDelay: true });
    this.#socket = socket;
    this.#writer = new FrameWriter(socket, {
      onWritten: () => {
        for (const id of this.#unsent) {
          const pending = this.#pending.get(id);
          if (pending !== undefined) pending.sent = true;
        }
        this.#unsent.length = 0;
      },
      onPeerGone: () => this.#fail(this.#unreachable('connection closed'), false),
    });
    socket.on('error', (err: NodeJS.ErrnoException) => this.#fail(this.#unreachable(err.code ?? err.message), false));
    socket.on('close', () => {
      // Closed after connecting but before answering the CONNECT: a host
      // that takes no CONNECT (node:http without a 'connect' listener closes
      // the connection). One POST per request will tell the real story.
      if (!this.#open && this.#connected) this.#fail(this.#refused(undefined), true);
      else this.#fail(this.#unreachable('connection closed'), false);
    });
    socket.once('connect', () => {
      this.#connected = true;
      const authority = formatHostPort(peer);
      socket.write(
        `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n` +
          `${settings.fromHeader}: ${settings.from}\r\n${STREAM_HEADER}: ${settings.path}\r\n\r\n`,
      );
    });
    this.#awaitHandshake();
  }

  /** True once the client takes no new request (closed, or its peer is closing the connection). */
  get closed(): boolean {
    return this.#closed || this.#draining;
  }

  /**
   * Sends one request frame and resolves with its response. The caller owns
   * the deadline and the abort signal: it calls `abandon` with the id this
   * reports through `onId` when it gives up.
   */
  request(frame: Uint8Array, onId: (id: number) => void): Promise<Uint8Array> {
    const id = this.#nextId;
    this.#nextId = id === MAX_ID ? 1 : id + 1;
    onId(id);
    this.#idle?.cancel();
    this.#idle = undefined;
    return new Promise<Uint8Array>((resolve, reject) => {
      if (this.#closed || this.#draining) {
        reject(this.#unreachable('connection closed'));
        return;
      }
      this.#pending.set(id, { resolve, reject, sent: false });
      this.#whenOpen(() => {
        this.#unsent.push(id);
        this.#writer.enqueue(FrameKind.Request, id, frame);
      });
    });
  }

  /** Forgets request `id` (its caller timed out or aborted); a late response is dropped. */
  abandon(id: number): void {
    this.#pending.delete(id);
    this.#maybeIdle();
  }

  /** Queues a one-way frame; lost, like any one-way frame, if the connection fails. */
  send(frame: Uint8Array): void {
    if (this.#closed) return;
    this.#whenOpen(() => this.#writer.enqueue(FrameKind.Message, 0, frame));
    this.#maybeIdle();
  }

  /** Ends the connection, failing what is in flight with `error`. */
  close(error: KvError): void {
    this.#fail(error, false);
  }

  #whenOpen(write: () => void): void {
    if (this.#open) write();
    else this.#early.push(write);
  }

  #awaitHandshake(): void {
    const socket = this.#socket;
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HANDSHAKE_BYTES)
          this.#fail(this.#unreachable('answered CONNECT with an endless header'), false);
        return;
      }
      socket.off('data', onData);
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head.subarray(0, end).toString('latin1'))?.[1];
      if (status === '503') {
        // A node that serves streams but is not running yet: try again, on a stream, next time.
        this.#fail(this.#unreachable('is starting (CONNECT answered 503)'), false);
        return;
      }
      if (status !== '200') {
        this.#fail(this.#refused(status), true);
        return;
      }
      this.#open = true;
      const reader = new FrameReader(
        this.#settings.maxFrameBytes,
        (kind, id, payload) => this.#onFrame(kind, id, payload),
        (_kind, id) => this.#onFrame(FrameKind.TooLarge, id, new Uint8Array(0), 'mine'),
      );
      socket.on('data', (data: Buffer) => {
        try {
          reader.push(data);
        } catch (err) {
          if (!(err instanceof FrameStreamError)) throw err;
          this.#settings.logger.warn(
            { peer: formatHostPort(this.#settings.peer), err: err.message },
            'garbage on a frame stream',
          );
          this.#fail(this.#unreachable(`sent an unreadable frame (${err.message})`), false);
        }
      });
      const early = this.#early;
      this.#early = [];
      for (const write of early) write();
      const rest = head.subarray(end + 4);
      if (rest.length > 0) socket.emit('data', rest);
      this.#maybeIdle();
    };
    socket.on('data', onData);
  }

  /** `whose` says which side's maxFrameBytes a TooLarge answer is about. */
  #onFrame(kind: number, id: number, payload: Uint8Array, whose: 'mine' | 'theirs' = 'theirs'): void {
    if (kind === FrameKind.GoAway) {
      this.#goAway(id);
      return;
    }
    const pending = this.#pending.get(id);
    if (pending === undefined) return; // abandoned by its caller, or not ours
    this.#pending.delete(id);
    if (kind === FrameKind.Response) pending.resolve(payload);
    else if (kind === FrameKind.TooLarge) {
      pending.reject(
        new KvError(
          'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE',
          whose === 'mine'
            ? `response from ${this.#name()} exceeds maxFrameBytes ${this.#settings.maxFrameBytes}`
            : `${this.#name()} refused a frame as too large (over its maxFrameBytes)`,
        ),
      );
    } else pending.reject(this.#unreachable('failed to handle the request'));
    this.#maybeIdle();
  }

  /**
   * The peer takes no request above `lastId` any more: those fail as never
   * sent (the transport sends them again on a new connection), the client
   * takes no new request, and the ones the peer took wait for their answers
   * until the connection ends.
   */
  #goAway(lastId: number): void {
    if (this.#closed) return;
    this.#draining = true;
    this.#settings.onClose(this, false);
    const error = notSent(this.#unreachable('the peer is closing the connection'));
    for (const [id, pending] of this.#pending) {
      if (!this.#issuedAfter(id, lastId)) continue;
      this.#pending.delete(id);
      pending.reject(error);
    }
    if (this.#pending.size === 0) this.#fail(this.#unreachable('connection closed'), false);
  }

  /** Whether request `id` is above `lastId`, in the order ids were issued (they wrap at 2^32). */
  #issuedAfter(id: number, lastId: number): boolean {
    const issued = (this.#nextId - 1 - id + MAX_ID) % MAX_ID;
    const last = (this.#nextId - 1 - lastId + MAX_ID) % MAX_ID;
    return issued < last;
  }

  #maybeIdle(): void {
    if (this.#closed || this.#pending.size > 0 || this.#idle !== undefined) return;
    this.#idle = this.#settings.clock.setTimeout(() => {
      this.#idle = undefined;
      if (this.#pending.size === 0) this.#fail(this.#unreachable('connection closed when idle'), false);
    }, this.#settings.idleMs);
  }

  #fail(error: KvError, refused: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#idle?.cancel();
    this.#idle = undefined;
    this.#early = [];
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    this.#unsent.length = 0;
    const wasOpen = this.#open;
    this.#socket.destroy();
    if (!this.#draining) this.#settings.onClose(this, refused);
    for (const p of pending) p.reject(wasOpen && !p.sent && !refused ? notSent(error) : error);
  }

  #name(): string {
    return `http://${formatHostPort(this.#settings.peer)}`;
  }

  #unreachable(reason: string): KvError {
    return new KvError('KVMESH_ERR_TRANSPORT_UNREACHABLE', `cannot reach ${this.#name()}: ${reason}`);
  }

  #refused(status: string | undefined): KvError {
    const error = new KvError(
      'KVMESH_ERR_TRANSPORT_UNREACHABLE',
      `${this.#name()} serves no frame stream (CONNECT answered ${status ?? 'no HTTP status'})`,
    );
    (error as unknown as Record<symbol, boolean>)[STREAM_REFUSED] = true;
    return error;
  }
}

function notSent(error: KvError): KvError {
  const copy = new KvError(error.code, error.message);
  (copy as unknown as Record<symbol, boolean>)[NOT_SENT] = true;
  return copy;
}

/** True for the error of a request the connection failed before writing (safe to send again). */
export function isNotSent(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[NOT_SENT] === true;
}

/** True for the error a StreamClient fails its requests with when the peer refused the stream. */
export function isStreamRefused(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[STREAM_REFUSED] === true;
}
