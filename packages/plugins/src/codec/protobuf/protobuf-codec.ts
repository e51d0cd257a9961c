import {
  CORE_MESSAGES,
  defineCoreMessages,
  type Codec,
  type Message,
  type MessageRegistry,
  type MessageSchema,
} from '@kvmesh/core';
import { checkDecodeInput, checkEncodedSize, decodeError } from '../codec-errors.js';
import { maxMessageBytesOf, type CodecLimits } from '../options.js';

export type ProtobufCodecOptions = CodecLimits;

interface Envelope {
  type: string;
  payload: Uint8Array;
}

/**
 * A `kvmesh.core.Envelope { string type = 1; bytes payload = 2; }` whose
 * payload is the message's own protobuf encoding, so any protobuf library
 * with `proto/kvmesh.proto` and the plugins' `.proto` files can read frames.
 */
export class ProtobufCodec implements Codec {
  readonly name = 'protobuf';
  readonly tag = 3;
  readonly contentType = 'application/x-protobuf';
  readonly #messages: MessageRegistry;
  readonly #envelope: MessageSchema;
  readonly #maxMessageBytes: number;

  constructor(messages: MessageRegistry, options: Partial<ProtobufCodecOptions> = {}) {
    defineCoreMessages(messages);
    this.#messages = messages;
    this.#envelope = messages.get(CORE_MESSAGES.envelope);
    this.#maxMessageBytes = maxMessageBytesOf(options);
  }

  encode(type: string, payload: unknown): Uint8Array {
    const inner = this.#messages.get(type).toBinary(payload);
    const bytes = this.#envelope.toBinary({ type, payload: inner } satisfies Envelope);
    return checkEncodedSize(this.name, type, bytes, this.#maxMessageBytes);
  }

  decode(bytes: Uint8Array): Message {
    try {
      checkDecodeInput(this.name, bytes, this.#maxMessageBytes);
      const envelope = this.#envelope.fromBinary(bytes) as unknown as Envelope;
      return { type: envelope.type, payload: this.#messages.get(envelope.type).fromBinary(envelope.payload) };
    } catch (err) {
      throw decodeError(this.name, err);
    }
  }
}
