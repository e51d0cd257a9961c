import { KvError, type Codec, type Message, type MessageRegistry } from '@kvmesh/core';
import { Packr } from 'msgpackr';
import { checkDecodeInput, checkEncodedSize, decodeError } from '../codec-errors.js';
import { maxMessageBytesOf, type CodecLimits } from '../options.js';

export type MsgpackCodecOptions = CodecLimits;

/**
 * A MessagePack array `[type, payload]` with the payload in canonical form:
 * bytes as bin, maps and messages as maps with string keys, 64-bit integers
 * as numbers. Only standard MessagePack types are written (no records, no
 * msgpackr extensions), so any MessagePack library can read the frames.
 */
export class MsgpackCodec implements Codec {
  readonly name = 'msgpack';
  readonly tag = 2;
  readonly contentType = 'application/msgpack';
  readonly #messages: MessageRegistry;
  readonly #maxMessageBytes: number;
  readonly #packr = new Packr({
    useRecords: false,
    structuredClone: false,
    moreTypes: false,
    bundleStrings: false,
    // Maps decode as Map and are turned into objects here: msgpackr would rename a "__proto__" key.
    mapsAsObjects: false,
    variableMapSize: true,
    useFloat32: 0,
    int64AsType: 'bigint',
  });

  constructor(messages: MessageRegistry, options: Partial<MsgpackCodecOptions> = {}) {
    this.#messages = messages;
    this.#maxMessageBytes = maxMessageBytesOf(options);
  }

  encode(type: string, payload: unknown): Uint8Array {
    const canonical = this.#messages.get(type).normalize(payload);
    // A copy: msgpackr returns a view of a buffer it reuses for later packs.
    const bytes = new Uint8Array(this.#packr.pack([type, canonical]));
    return checkEncodedSize(this.name, type, bytes, this.#maxMessageBytes);
  }

  decode(bytes: Uint8Array): Message {
    try {
      // msgpackr checks every length against the input, so a bounded input bounds what decoding allocates.
      checkDecodeInput(this.name, bytes, this.#maxMessageBytes);
      const frame: unknown = this.#packr.unpack(bytes);
      if (!Array.isArray(frame) || frame.length !== 2 || typeof frame[0] !== 'string') {
        throw new KvError('KVMESH_ERR_CODEC_DECODE', 'a msgpack frame must be the array [type, payload]');
      }
      const type: string = frame[0];
      return { type, payload: this.#messages.get(type).normalize(mapsToObjects(frame[1])) };
    } catch (err) {
      throw decodeError(this.name, err);
    }
  }
}

function mapsToObjects(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(mapsToObjects);
  if (!(value instanceof Map)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of value as Map<unknown, unknown>) {
    // Other writers may send integer keys for map<int32, ...> fields.
    if (typeof key !== 'string' && typeof key !== 'number') {
      throw new KvError('KVMESH_ERR_CODEC_DECODE', 'msgpack map keys must be strings or integers');
    }
    const name = String(key);
    if (Object.hasOwn(out, name)) throw new KvError('KVMESH_ERR_CODEC_DECODE', `msgpack map repeats the key ${name}`);
    Object.defineProperty(out, name, {
      value: mapsToObjects(item),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
