import { KvError, type Codec, type Message, type MessageRegistry } from '@kvmesh/core';
import { checkDecodeInput, checkEncodedSize, decodeError } from '../codec-errors.js';
import { maxMessageBytesOf, type CodecLimits } from '../options.js';

export type JsonCodecOptions = CodecLimits;

const ENCODER = new TextEncoder();
// fatal: invalid UTF-8 is an error, not silently replaced characters.
const DECODER = new TextDecoder('utf-8', { fatal: true });

/**
 * UTF-8 JSON `{"type": "<name>", "payload": <JSON-safe payload>}`: bytes as
 * base64, enums as names, 64-bit integers as numbers, non-finite floats as
 * "NaN" / "Infinity" / "-Infinity" (the MessageSchema's toJson form).
 */
export class JsonCodec implements Codec {
  readonly name = 'json';
  readonly tag = 1;
  readonly contentType = 'application/json';
  readonly #messages: MessageRegistry;
  readonly #maxMessageBytes: number;

  constructor(messages: MessageRegistry, options: Partial<JsonCodecOptions> = {}) {
    this.#messages = messages;
    this.#maxMessageBytes = maxMessageBytesOf(options);
  }

  encode(type: string, payload: unknown): Uint8Array {
    const json = this.#messages.get(type).toJson(payload);
    const bytes = ENCODER.encode(JSON.stringify({ type, payload: json }));
    return checkEncodedSize(this.name, type, bytes, this.#maxMessageBytes);
  }

  decode(bytes: Uint8Array): Message {
    try {
      checkDecodeInput(this.name, bytes, this.#maxMessageBytes);
      const frame: unknown = JSON.parse(DECODER.decode(bytes));
      if (!isJsonObject(frame) || typeof frame['type'] !== 'string' || !isJsonObject(frame['payload'])) {
        throw new KvError('KVMESH_ERR_CODEC_DECODE', 'a json frame must be {"type": string, "payload": object}');
      }
      const type = frame['type'];
      return { type, payload: this.#messages.get(type).fromJson(frame['payload']) };
    } catch (err) {
      throw decodeError(this.name, err);
    }
  }
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
