import { isDeepStrictEqual } from 'node:util';
import type { Codec, Message } from '../contracts/codec.js';
import type { MessageRegistry } from '../contracts/rpc.js';
import { KvError } from '../errors.js';

/** Messages of each type that the configured codec encodes and decodes before any is sampled. */
const CODEC_FIRST = 32;
/** After those, one message in this many goes through the configured codec. */
const CODEC_EVERY = 32;
/**
 * Canonical payloads waiting for their receiver. Each is taken when it is
 * decoded; one never decoded (a request to a node that stopped) stays until
 * this many newer ones wait, which is far more than a run has in flight
 * (half of 10,000 nodes joining at once keep some 200,000 requests out).
 */
const MAX_WAITING = 4_000_000;

const MARK_CODEC = 0;
const MARK_CANONICAL = 1;

/** How the messages of a placement run travelled (`PlacementSimResult.codec`). */
export interface PlacementCodecFigures {
  /** The configured codec's name. */
  readonly name: string;
  /** Messages it encoded and decoded, each checked against the message's canonical form; null: every message (not counted). */
  readonly throughCodec: number | null;
  /** Messages handed over in canonical form (validated against their schema like any encode). */
  readonly canonical: number;
}

/**
 * The codec of the placement simulator's nodes. Every message is validated
 * and brought to canonical form by its schema, as every codec does first;
 * the configured codec then encodes and decodes the first CODEC_FIRST
 * messages of each type and one in CODEC_EVERY after, and the payload it
 * decodes must equal the canonical form (else the run fails, naming the
 * type). The other messages travel as that canonical form, which is what
 * decoding their bytes would give the receiver, through a table the frame
 * points into. Lookups over thousands of nodes spend most of their time in
 * encoding and decoding otherwise; the codec's own round trips are what its
 * conformance suite checks.
 *
 * Not for links that duplicate messages: a canonical payload is handed to
 * the first decode only (the simulator uses the configured codec alone then).
 */
export class PlacementCodec implements Codec {
  readonly name: string;
  readonly tag: number;
  readonly contentType: string;
  readonly #codec: Codec;
  readonly #messages: MessageRegistry;
  readonly #seen = new Map<string, number>();
  readonly #waiting = new Map<number, Message>();
  #next = 0;
  #throughCodec = 0;
  #canonical = 0;

  constructor(codec: Codec, messages: MessageRegistry) {
    this.#codec = codec;
    this.#messages = messages;
    this.name = codec.name;
    this.tag = codec.tag;
    this.contentType = codec.contentType;
  }

  get figures(): PlacementCodecFigures {
    return { name: this.name, throughCodec: this.#throughCodec, canonical: this.#canonical };
  }

  encode(type: string, payload: unknown): Uint8Array {
    const canonical = this.#messages.get(type).normalize(payload);
    const count = this.#seen.get(type) ?? 0;
    this.#seen.set(type, count + 1);
    if (count < CODEC_FIRST || count % CODEC_EVERY === 0) {
      const bytes = this.#codec.encode(type, payload);
      const decoded = this.#codec.decode(bytes);
      if (decoded.type !== type || !isDeepStrictEqual(decoded.payload, canonical)) {
        throw new KvError(
          'KVMESH_ERR_CODEC_DECODE',
          `codec '${this.name}' decoded a ${type} other than the one it encoded`,
        );
      }
      this.#throughCodec++;
      const frame = new Uint8Array(bytes.length + 1);
      frame[0] = MARK_CODEC;
      frame.set(bytes, 1);
      return frame;
    }
    this.#canonical++;
    const id = this.#next++ >>> 0;
    this.#waiting.set(id, { type, payload: canonical });
    if (this.#waiting.size > MAX_WAITING) this.#waiting.delete(this.#waiting.keys().next().value!);
    return Uint8Array.of(MARK_CANONICAL, id >>> 24, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff);
  }

  decode(bytes: Uint8Array): Message {
    if (bytes[0] === MARK_CODEC) return this.#codec.decode(bytes.subarray(1));
    if (bytes[0] === MARK_CANONICAL && bytes.length === 5) {
      const id = ((bytes[1]! << 24) | (bytes[2]! << 16) | (bytes[3]! << 8) | bytes[4]!) >>> 0;
      const message = this.#waiting.get(id);
      if (message !== undefined) {
        this.#waiting.delete(id);
        return message;
      }
    }
    throw new KvError('KVMESH_ERR_CODEC_DECODE', `not a frame of the simulated '${this.name}' codec`);
  }
}
