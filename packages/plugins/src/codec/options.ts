import type { JsonSchema } from '@kvmesh/core';

/** 16 MiB: far above any kvmesh message, far below what would hurt a node to parse. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Options every built-in codec takes. */
export interface CodecLimits {
  /** Largest encoded message accepted by encode and decode, in bytes. */
  readonly maxMessageBytes: number;
}

/** The options schema shared by the built-in codecs. */
export const CODEC_OPTIONS_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    maxMessageBytes: {
      type: 'integer',
      minimum: 64,
      maximum: 0x7fffffff,
      default: DEFAULT_MAX_MESSAGE_BYTES,
      description:
        'Largest encoded message in bytes. Larger inputs are rejected before parsing, so a hostile peer cannot make the node allocate more; larger outgoing messages fail to encode.',
    },
  },
};

/** The size limit from possibly partial options (a codec built directly, not through the kernel). */
export function maxMessageBytesOf(options: Partial<CodecLimits>): number {
  return options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
}
