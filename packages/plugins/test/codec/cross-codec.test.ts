import { decodeProblem, type Codec, type MessageRegistry } from '@kvmesh/core';
import test from 'ava';
import { JsonCodec, MsgpackCodec, ProtobufCodec, builtinPlugins } from '../../src/index.js';
import { sampleCodec } from './fuzz.js';
import { SAMPLES } from './samples.js';

const CODECS: readonly ((messages: MessageRegistry) => Codec)[] = [
  (m) => new JsonCodec(m),
  (m) => new MsgpackCodec(m),
  (m) => new ProtobufCodec(m),
];

test('every sample decodes to the same canonical payload in all three codecs', (t) => {
  const built = CODECS.map(sampleCodec);
  for (const sample of SAMPLES) {
    const expected = built[0]!.messages.get(sample.type).normalize(sample.payload);
    for (const { codec } of built) {
      const decoded = codec.decode(codec.encode(sample.type, sample.payload));
      t.deepEqual(decoded, { type: sample.type, payload: expected }, `${sample.name} via ${codec.name}`);
    }
  }
});

test('a frame of one codec given to another codec decodes to a valid message or fails with a decode error', (t) => {
  const built = CODECS.map(sampleCodec);
  for (const from of built) {
    const frames = SAMPLES.map((s) => from.codec.encode(s.type, s.payload));
    for (const to of built) {
      if (to === from) continue;
      for (const frame of frames) t.is(decodeProblem(to.codec, to.messages, frame), undefined);
    }
  }
});

test('the built-in codecs have distinct names, tags and content types', (t) => {
  const codecs = builtinPlugins.filter((p) => p.family === 'codec');
  t.deepEqual(codecs.map((p) => p.name).sort(), ['json', 'msgpack', 'protobuf']);
  const built = CODECS.map((create) => sampleCodec(create).codec);
  t.deepEqual(
    built.map((c) => [c.name, c.tag, c.contentType]),
    [
      ['json', 1, 'application/json'],
      ['msgpack', 2, 'application/msgpack'],
      ['protobuf', 3, 'application/x-protobuf'],
    ],
  );
});
