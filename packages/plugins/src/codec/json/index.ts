import { definePlugin } from '@kvmesh/core';
import { CODEC_OPTIONS_SCHEMA } from '../options.js';
import { JsonCodec, type JsonCodecOptions } from './json-codec.js';

export { JsonCodec, type JsonCodecOptions } from './json-codec.js';

/** Human-readable JSON frames (tag 1): easy to inspect, the largest and slowest of the three. */
export const jsonCodec = definePlugin({
  family: 'codec',
  name: 'json',
  description: 'Encodes messages as UTF-8 JSON {"type", "payload"} with bytes in base64 (tag 1, application/json).',
  version: '0.1.0',
  optionsSchema: CODEC_OPTIONS_SCHEMA,
  needs: ['messages'],
  create:
    (options: JsonCodecOptions) =>
    ({ messages }) =>
      new JsonCodec(messages, options),
});
