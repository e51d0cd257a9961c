import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createSecretKey,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../contracts/clock.js';
import { KvError } from '../errors.js';
import { FRAME_HEADER_BYTES, FRAME_MAGIC, FrameKind } from './frame.js';
import type { FrameHeader } from './frame.js';

/**
 * An authenticated frame: the 8-byte frame header (frame.ts) with version 2
 * (signed) or 3 (signed by encryption), then
 *
 *   8-11   key id: which cluster secret sealed it (first 4 bytes of a hash of the derived key)
 *   12-19  sender's clock, ms since the epoch, big-endian u64
 *   20-35  nonce: unique per frame of a sender (random prefix, then a counter)
 *   36     n: length of the sender's node id
 *   37..   the sender's node id (ASCII)
 *
 * then, for version 2, the codec's bytes and HMAC-SHA256 (32 bytes) over
 * everything before it; for version 3 (`encrypt`), the codec's bytes
 * encrypted with AES-256-GCM (IV: the last 12 bytes of the nonce, unique per
 * frame; additional data: everything before the ciphertext) and the 16-byte
 * GCM tag. A response's MAC (or additional data) also covers the nonce of
 * the request it answers, so a response cannot be replayed as the answer to
 * another request.
 */
export const FRAME_VERSION_SIGNED = 2;
export const FRAME_VERSION_SEALED = 3;
const AUTH_FIXED_BYTES = 4 + 8 + 16 + 1;
const NONCE_OFFSET = FRAME_HEADER_BYTES + 12;
export const NONCE_BYTES = 16;
const MAC_BYTES = 32;
const TAG_BYTES = 16;
const IV_BYTES = 12;
const MAX_SENDER_BYTES = 255;
const TWO_32 = 2 ** 32;

/** HKDF labels: one secret yields independent keys for the MAC, encryption and the key id. */
const HKDF_SALT = 'kvmesh cluster secret v1';
const SHORTEST_SECRET = 16;

/** Why a frame was refused; words for the log, never sent to the peer. */
export type AuthFailure = 'unsigned' | 'malformed' | 'unknown key' | 'bad mac' | 'outside replay window' | 'replayed';

export interface FrameAuthOptions {
  /**
   * The cluster secrets, at least one: the first seals every outgoing frame,
   * every one opens incoming frames (a rotation runs with two). Each at least
   * 16 characters.
   */
  readonly secrets: readonly string[];
  /** This node's id, carried in every frame it seals. */
  readonly senderId: string;
  /** Time of the timestamps and of the replay window: the node's Clock. */
  readonly clock: Pick<Clock, 'now'>;
  /** A frame whose timestamp is further than this from the receiver's clock is refused, in ms. */
  readonly replayWindowMs: number;
  /** Nonces remembered to refuse replays within the window; past it the oldest are forgotten (see `open`). */
  readonly maxNonces: number;
  /**
   * Seal every frame with AES-256-GCM instead of HMAC, so its bytes cannot
   * be read on the wire: gossip (one-way frames) and push-pull member lists
   * alike. A receiver opens both kinds either way, so nodes can turn it on
   * one at a time.
   */
  readonly encrypt: boolean;
}

interface Key {
  readonly id: number;
  readonly mac: KeyObject;
  readonly aes: Buffer;
}

/** An authenticated frame's parts, once its seal held. */
export interface OpenedFrame {
  readonly header: FrameHeader;
  readonly body: Uint8Array;
  /** The node id the sender sealed into the frame. */
  readonly sender: string;
  /** Its nonce (a request's: what its response must be sealed with). */
  readonly nonce: Uint8Array;
}

/** The secret's keys: a MAC key, an AES-256 key and a 32-bit id, all derived with HKDF-SHA256. */
function deriveKey(secret: string): Key {
  const derive = (info: string): Buffer => Buffer.from(hkdfSync('sha256', secret, HKDF_SALT, info, 32));
  const mac = derive('frame mac');
  const id = createHash('sha256').update('kvmesh key id').update(mac).digest().readUInt32BE(0);
  return { id, mac: createSecretKey(mac), aes: derive('frame aes-256-gcm') };
}

/**
 * Checks the secrets a config names, without ever showing them.
 * @throws KvError KVMESH_ERR_CONFIG_INVALID naming the position of a bad one.
 */
export function checkSecrets(secrets: readonly unknown[], where = 'cluster.secrets'): string[] {
  return secrets.map((secret, i) => {
    if (typeof secret !== 'string' || secret.length < SHORTEST_SECRET) {
      throw new KvError(
        'KVMESH_ERR_CONFIG_INVALID',
        `${where}[${i}] must be a string of at least ${SHORTEST_SECRET} characters (its value is not shown)`,
      );
    }
    return secret;
  });
}

/**
 * Seals outgoing frames and opens incoming ones with the cluster secrets:
 * one HMAC-SHA256 (or one AES-256-GCM pass) per frame. Replays are refused
 * twice over: a timestamp outside `replayWindowMs` of this node's clock, and
 * a nonce already seen within the window (an lru-cache of at most
 * `maxNonces`; when it must forget a nonce still inside the window, frames
 * no newer than the forgotten one's timestamp are refused from then on, so a
 * forgotten nonce can never be replayed). Responses are bound to their
 * request's nonce instead of being cached.
 */
export class FrameAuth {
  readonly #keys: readonly Key[];
  readonly #byId = new Map<number, Key>();
  readonly #sender: Uint8Array;
  readonly #clock: Pick<Clock, 'now'>;
  readonly #windowMs: number;
  readonly #encrypt: boolean;
  readonly #seen: LRUCache<string, number>;
  /** Timestamps at or below this are refused: a nonce of theirs may have been forgotten. */
  #floor = 0;
  readonly #noncePrefix: Buffer;
  #counterHigh: number;
  #counterLow: number;

  constructor(options: FrameAuthOptions) {
    if (options.secrets.length === 0) throw new RangeError('at least one secret is needed');
    this.#keys = checkSecrets(options.secrets).map(deriveKey);
    for (const key of this.#keys) if (!this.#byId.has(key.id)) this.#byId.set(key.id, key);
    this.#sender = Buffer.from(options.senderId, 'latin1');
    if (this.#sender.length === 0 || this.#sender.length > MAX_SENDER_BYTES) {
      throw new RangeError(`a sender id of 1 to ${MAX_SENDER_BYTES} bytes is needed`);
    }
    if (!Number.isSafeInteger(options.replayWindowMs) || options.replayWindowMs < 1) {
      throw new RangeError(`replayWindowMs must be a positive integer (found ${options.replayWindowMs})`);
    }
    this.#clock = options.clock;
    this.#windowMs = options.replayWindowMs;
    this.#encrypt = options.encrypt;
    const clock = options.clock;
    // A nonce must be remembered for as long as its frame's timestamp is inside the window: up to two windows.
    // maxSize rather than max: lru-cache then grows its slots as nonces arrive instead of allocating them all up front.
    this.#seen = new LRUCache<string, number>({
      maxSize: options.maxNonces,
      sizeCalculation: () => 1,
      ttl: 2 * options.replayWindowMs,
      ttlResolution: 0,
      perf: { now: () => clock.now() },
      dispose: (timestamp, _nonce, reason) => {
        if (reason === 'evict' && timestamp > this.#floor) this.#floor = timestamp;
      },
    });
    // Nonces: a random prefix per process and a counter from a random start, so they never repeat under one key.
    const start = randomBytes(16);
    this.#noncePrefix = start.subarray(0, 8);
    this.#counterHigh = start.readUInt32BE(8);
    this.#counterLow = start.readUInt32BE(12);
  }

  /** Ids of the keys this node opens frames with, the sealing one first (never the secrets). */
  get keyIds(): readonly number[] {
    return this.#keys.map((k) => k.id);
  }

  /** Frames refused since the cache had to forget a nonce inside the window: their timestamps are at or below this. */
  get floorMs(): number {
    return this.#floor;
  }

  /**
   * One sealed frame carrying `body`: signed, or encrypted when `encrypt`
   * is on. A response or error passes
   * the nonce of the request it answers as `replyTo`.
   */
  seal(header: FrameHeader, body: Uint8Array, replyTo?: Uint8Array): Uint8Array {
    const key = this.#keys[0]!;
    const encrypt = this.#encrypt;
    const start = FRAME_HEADER_BYTES + AUTH_FIXED_BYTES + this.#sender.length;
    // Not from Buffer's shared pool: the frame owns its memory, as writeFrame's do.
    const frame = Buffer.allocUnsafeSlow(start + body.length + (encrypt ? TAG_BYTES : MAC_BYTES));
    frame[0] = FRAME_MAGIC;
    frame[1] = encrypt ? FRAME_VERSION_SEALED : FRAME_VERSION_SIGNED;
    frame[2] = header.codecTag;
    frame[3] = header.kind;
    frame.writeUInt32BE(Math.min(Math.max(0, Math.ceil(header.deadlineMs)), 0xffffffff), 4);
    frame.writeUInt32BE(key.id, 8);
    const now = Math.max(0, Math.floor(this.#clock.now()));
    frame.writeUInt32BE(Math.floor(now / TWO_32), 12);
    frame.writeUInt32BE(now % TWO_32, 16);
    this.#nextNonce(frame);
    frame[36] = this.#sender.length;
    frame.set(this.#sender, 37);
    if (encrypt) {
      const iv = frame.subarray(NONCE_OFFSET + NONCE_BYTES - IV_BYTES, NONCE_OFFSET + NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key.aes, iv);
      cipher.setAAD(additionalData(frame.subarray(0, start), replyTo));
      const n = cipher.update(body).copy(frame, start);
      cipher.final().copy(frame, start + n);
      cipher.getAuthTag().copy(frame, start + body.length);
      return new Uint8Array(frame.buffer, frame.byteOffset, frame.length);
    }
    frame.set(body, start);
    const hmac = createHmac('sha256', key.mac).update(frame.subarray(0, start + body.length));
    if (replyTo !== undefined) hmac.update(replyTo);
    hmac.digest().copy(frame, start + body.length);
    return new Uint8Array(frame.buffer, frame.byteOffset, frame.length);
  }

  /**
   * Opens an incoming authenticated frame. A request or one-way frame
   * (`replyTo` undefined) must carry a nonce not seen within the window; a
   * response must be sealed with the nonce of the request it answers.
   * Returns the reason instead when the frame is refused.
   */
  open(bytes: Uint8Array, replyTo?: Uint8Array): OpenedFrame | AuthFailure {
    const version = bytes[1];
    if (bytes[0] !== FRAME_MAGIC || (version !== FRAME_VERSION_SIGNED && version !== FRAME_VERSION_SEALED)) {
      return bytes.length >= FRAME_HEADER_BYTES && bytes[0] === FRAME_MAGIC ? 'unsigned' : 'malformed';
    }
    const frame = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const trailer = version === FRAME_VERSION_SEALED ? TAG_BYTES : MAC_BYTES;
    if (frame.length < FRAME_HEADER_BYTES + AUTH_FIXED_BYTES + trailer) return 'malformed';
    const senderLength = frame[36]!;
    const start = FRAME_HEADER_BYTES + AUTH_FIXED_BYTES + senderLength;
    const end = frame.length - trailer;
    if (senderLength === 0 || end < start) return 'malformed';
    const kind = frame[3]!;
    if (kind < FrameKind.Request || kind > FrameKind.OneWay) return 'malformed';
    const isReply = kind === FrameKind.Response || kind === FrameKind.Error;
    if (isReply !== (replyTo !== undefined)) return 'malformed';
    const key = this.#byId.get(frame.readUInt32BE(8));
    if (key === undefined) return 'unknown key';
    let body: Uint8Array;
    if (version === FRAME_VERSION_SEALED) {
      try {
        const iv = frame.subarray(NONCE_OFFSET + NONCE_BYTES - IV_BYTES, NONCE_OFFSET + NONCE_BYTES);
        const decipher = createDecipheriv('aes-256-gcm', key.aes, iv);
        decipher.setAAD(additionalData(frame.subarray(0, start), replyTo));
        decipher.setAuthTag(frame.subarray(end));
        const plain = decipher.update(frame.subarray(start, end));
        decipher.final();
        body = new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength);
      } catch {
        return 'bad mac';
      }
    } else {
      const hmac = createHmac('sha256', key.mac).update(frame.subarray(0, end));
      if (replyTo !== undefined) hmac.update(replyTo);
      if (!timingSafeEqual(hmac.digest(), frame.subarray(end))) return 'bad mac';
      body = new Uint8Array(frame.buffer, frame.byteOffset + start, end - start);
    }
    const timestamp = frame.readUInt32BE(12) * TWO_32 + frame.readUInt32BE(16);
    const now = this.#clock.now();
    if (Math.abs(now - timestamp) > this.#windowMs) return 'outside replay window';
    const nonce = frame.subarray(NONCE_OFFSET, NONCE_OFFSET + NONCE_BYTES);
    if (!isReply) {
      if (timestamp <= this.#floor) return 'outside replay window';
      const seen = nonce.toString('hex');
      if (this.#seen.has(seen)) return 'replayed';
      this.#seen.set(seen, timestamp);
    }
    return {
      header: { codecTag: frame[2]!, kind, deadlineMs: frame.readUInt32BE(4) },
      body,
      sender: frame.toString('latin1', 37, start),
      nonce: new Uint8Array(nonce),
    };
  }

  #nextNonce(frame: Buffer): void {
    this.#noncePrefix.copy(frame, NONCE_OFFSET);
    this.#counterLow = (this.#counterLow + 1) >>> 0;
    if (this.#counterLow === 0) this.#counterHigh = (this.#counterHigh + 1) >>> 0;
    frame.writeUInt32BE(this.#counterHigh, NONCE_OFFSET + 8);
    frame.writeUInt32BE(this.#counterLow, NONCE_OFFSET + 12);
  }
}

/** What GCM authenticates besides the ciphertext: the frame's header and auth block, and a response's request nonce. */
function additionalData(head: Buffer, replyTo: Uint8Array | undefined): Buffer {
  return replyTo === undefined ? head : Buffer.concat([head, replyTo]);
}

/** The nonce of a sealed frame, read without checking it (what a requester keeps to open the response). */
export function frameNonce(frame: Uint8Array): Uint8Array {
  return frame.subarray(NONCE_OFFSET, NONCE_OFFSET + NONCE_BYTES);
}
