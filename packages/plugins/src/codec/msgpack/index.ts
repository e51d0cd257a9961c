import { definePlugin } from '@kvmesh/core';
import { CODEC_OPTIONS_SCHEMA } from '../options.js';
import { MsgpackCodec, type MsgpackCodecOptions } from './msgpack-codec.js';

export { MsgpackCodec, type MsgpackCodecOptions } from './msgpack-codec.js';

/** Compact binary frames (tag 2) that any MessagePack library can read. */
export const msgpackCodec = definePlugin({
  family: 'codec',
  name: 'msgpack',
  description: 'Encodes messages as the MessagePack array [type, payload] (tag 2, application/msgpack).',
  version: '0.1.0',
  optionsSchema: CODEC_OPTIONS_SCHEMA,
  needs: ['messages'],
  create:
    (options: MsgpackCodecOptions) =>
    ({ messages }) =>
      new MsgpackCodec(messages, options),
});
