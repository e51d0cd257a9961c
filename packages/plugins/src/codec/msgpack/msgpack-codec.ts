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

/**
 * Turns the Maps msgpackr decoded into plain objects, in place for arrays
 * (they are the decoder's own). Every key becomes an own data property,
 * "__proto__" too. Keys of one Map are distinct, so two can only collide
 * when one is a number and the other its text (18 and "18"): only a Map
 * with a number key is checked for that.
 */
function mapsToObjects(value: unknown): unknown {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === 'object' && item !== null) value[i] = mapsToObjects(item);
    }
    return value;
  }
  if (!(value instanceof Map)) return value;
  const out: Record<string, unknown> = {};
  let numbered = false;
  for (const [key, item] of value as Map<unknown, unknown>) {
    let name: string;
    if (typeof key === 'string') name = key;
    else if (typeof key === 'number') {
      // Other writers may send integer keys for map<int32, ...> fields.
      name = String(key);
      numbered = true;
    } else throw new KvError('KVMESH_ERR_CODEC_DECODE', 'msgpack map keys must be strings or integers');
    if (numbered && Object.hasOwn(out, name)) {
      throw new KvError('KVMESH_ERR_CODEC_DECODE', `msgpack map repeats the key ${name}`);
    }
    const converted = typeof item === 'object' && item !== null ? mapsToObjects(item) : item;
    // Assigning "__proto__" would set the prototype instead of adding the key.
    if (name === '__proto__') {
      Object.defineProperty(out, name, { value: converted, enumerable: true, writable: true, configurable: true });
    } else out[name] = converted;
  }
  return out;
}
