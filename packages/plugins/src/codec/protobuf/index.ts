import { definePlugin } from '@kvmesh/core';
import { CODEC_OPTIONS_SCHEMA } from '../options.js';
import { ProtobufCodec, type ProtobufCodecOptions } from './protobuf-codec.js';

export { ProtobufCodec, type ProtobufCodecOptions } from './protobuf-codec.js';

/** The smallest frames (tag 3): protobuf, readable by any protobuf library given the `.proto` files. */
export const protobufCodec = definePlugin({
  family: 'codec',
  name: 'protobuf',
  description:
    'Encodes messages as protobuf, wrapped in kvmesh.core.Envelope {type, payload} (tag 3, application/x-protobuf).',
  version: '0.1.0',
  optionsSchema: CODEC_OPTIONS_SCHEMA,
  needs: ['messages'],
  create:
    (options: ProtobufCodecOptions) =>
    ({ messages }) =>
      new ProtobufCodec(messages, options),
});
