import type { Socket } from 'node:net';

// The frame stream: many requests, responses and one-way frames multiplexed
// over one TCP connection, each frame behind a 9-byte header:
//
//   u32 length of what follows (kind + id + payload), big-endian
//   u8  kind (FrameKind)
//   u32 id   pairs a response with its request; 0 for one-way frames
//
// Frames queued in one turn of the event loop leave in one write, so a busy
// connection pays one system call for many frames.

export const enum FrameKind {
  /** A request: the payload is the frame for `TransportHandler.onRequest`. */
  Request = 1,
  /** The response to request `id`. */
  Response = 2,
  /** Request `id` failed on the serving side (the handler rejected, or the transport stopped). */
  Failure = 3,
  /** A one-way frame (`Transport.send`). */
  Message = 4,
  /** Request `id`'s response was over the serving side's maxFrameBytes. */
  TooLarge = 5,
  /**
   * The serving side is closing the stream: it took no request with an id
   * above `id` (the highest it took) and will take none, so those can be
   * sent again elsewhere. Requests it took may still be answered before the
   * connection ends.
   */
  GoAway = 6,
}

const HEADER_BYTES = 9;
/** Bytes of a frame's length field: the rest of the header counts in the length. */
const LENGTH_BYTES = 4;
/** Queued frames at least this large are written on their own rather than copied together. */
const COPY_LIMIT_BYTES = 16 * 1024;
const EMPTY = new Uint8Array(0);

export type FrameListener = (kind: number, id: number, payload: Uint8Array) => void;

export interface FrameWriterHooks {
  /** The queued frames were handed to the socket. */
  readonly onWritten?: () => void;
  /** A write filled the socket's buffer: wait for its 'drain' before producing more. */
  readonly onFull?: () => void;
  /** Frames were due but the socket was closed or the peer had ended it: they were not written. */
  readonly onPeerGone?: () => void;
}

/** Why a stream's bytes were refused. */
export class FrameStreamError extends Error {}

/**
 * Cuts a byte stream into frames. Each payload handed to the listener is a
 * copy of its own (never a view of a socket chunk, which would keep the
 * whole chunk alive for as long as the payload lives).
 */
export class FrameReader {
  readonly #maxPayloadBytes: number;
  readonly #onFrame: FrameListener;
  readonly #onOversize: FrameListener;
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Bytes of an oversized frame's payload still to skip. */
  #skipping = 0;

  /**
   * `onOversize` hears of a frame whose payload is over `maxPayloadBytes`
   * (its payload argument is empty): the reader skips the payload without
   * buffering it and goes on with the next frame.
   */
  constructor(maxPayloadBytes: number, onFrame: FrameListener, onOversize: FrameListener) {
    this.#maxPayloadBytes = maxPayloadBytes;
    this.#onFrame = onFrame;
    this.#onOversize = onOversize;
  }

  /**
   * Takes the next bytes of the stream and hands every frame they complete
   * to the listener, in order.
   * @throws FrameStreamError for a header too short to hold a kind and an
   *   id (nothing after it can be trusted).
   */
  push(chunk: Buffer): void {
    if (this.#skipping > 0) {
      const skipped = Math.min(this.#skipping, chunk.length);
      this.#skipping -= skipped;
      chunk = chunk.subarray(skipped);
    }
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    while (this.#buffered >= LENGTH_BYTES) {
      const head = this.#peek(HEADER_BYTES);
      const length = head.readUInt32BE(0);
      if (length < HEADER_BYTES - LENGTH_BYTES) {
        throw new FrameStreamError(`frame length ${length} is shorter than a frame header`);
      }
      const payloadBytes = length - (HEADER_BYTES - LENGTH_BYTES);
      if (payloadBytes > this.#maxPayloadBytes) {
        if (this.#buffered < HEADER_BYTES) return;
        const header = this.#take(HEADER_BYTES);
        const kind = header[LENGTH_BYTES]!;
        const id = header.readUInt32BE(LENGTH_BYTES + 1);
        const buffered = Math.min(payloadBytes, this.#buffered);
        if (buffered > 0) this.#take(buffered);
        this.#skipping = payloadBytes - buffered;
        this.#onOversize(kind, id, EMPTY);
        if (this.#skipping > 0) return;
        continue;
      }
      if (this.#buffered < LENGTH_BYTES + length) return;
      const frame = this.#take(LENGTH_BYTES + length);
      const payload = new Uint8Array(payloadBytes);
      payload.set(frame.subarray(HEADER_BYTES));
      this.#onFrame(frame[LENGTH_BYTES]!, frame.readUInt32BE(LENGTH_BYTES + 1), payload);
    }
  }

  /** The first `bytes` buffered bytes (fewer when fewer are buffered), without consuming them. */
  #peek(bytes: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length >= bytes || this.#chunks.length === 1) return first;
    const joined = Buffer.concat(this.#chunks);
    this.#chunks = [joined];
    return joined;
  }

  /** Consumes the first `bytes` buffered bytes (all of them are buffered). */
  #take(bytes: number): Buffer {
    let first = this.#chunks[0]!;
    if (first.length < bytes) {
      first = Buffer.concat(this.#chunks);
      this.#chunks = [first];
    }
    this.#buffered -= bytes;
    if (first.length === bytes) {
      this.#chunks.shift();
      return first;
    }
    this.#chunks[0] = first.subarray(bytes);
    return first.subarray(0, bytes);
  }
}

/**
 * Queues frames for one socket and writes everything queued in a turn of
 * the event loop at once (on `setImmediate`, after the turn's I/O callbacks
 * ran): one write for many frames on a busy connection, no delay on an idle
 * one. `onBackPressure` hears when the socket's buffer fills and drains.
 */
export class FrameWriter {
  readonly #socket: Socket;
  readonly #hooks: FrameWriterHooks;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #scheduled = false;
  readonly #flush = (): void => this.flush();

  constructor(socket: Socket, hooks: FrameWriterHooks = {}) {
    this.#socket = socket;
    this.#hooks = hooks;
  }

  enqueue(kind: FrameKind, id: number, payload: Uint8Array): void {
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    header.writeUInt32BE(HEADER_BYTES - LENGTH_BYTES + payload.length, 0);
    header[LENGTH_BYTES] = kind;
    header.writeUInt32BE(id, LENGTH_BYTES + 1);
    this.#queue.push(header);
    if (payload.length > 0) this.#queue.push(payload);
    this.#queuedBytes += HEADER_BYTES + payload.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  /** Writes what is queued now. */
  flush(): void {
    this.#scheduled = false;
    const queue = this.#queue;
    if (queue.length === 0) return;
    const socket = this.#socket;
    if (socket.destroyed || !socket.writable || socket.readableEnded) {
      // The peer is gone (it may have closed before this turn's frames were
      // written): they stay unsent, and the owner hears it.
      this.#hooks.onPeerGone?.();
      return;
    }
    this.#queue = [];
    const bytes = this.#queuedBytes;
    this.#queuedBytes = 0;
    let room = true;
    if (bytes <= COPY_LIMIT_BYTES) room = socket.write(queue.length === 1 ? queue[0]! : Buffer.concat(queue, bytes));
    else {
      socket.cork();
      for (const part of queue) room = socket.write(part);
      socket.uncork();
    }
    this.#hooks.onWritten?.();
    if (!room) this.#hooks.onFull?.();
  }
}
