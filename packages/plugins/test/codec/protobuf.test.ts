import { createMessageRegistry, isKvError, runCodecConformance } from '@kvmesh/core';
import test from 'ava';
import fc from 'fast-check';
import { ProtobufCodec, protobufCodec } from '../../src/index.js';
import { TYPE_NAMES, decodesSafely, mutatedFrames, runs, sampleCodec } from './fuzz.js';
import { SAMPLES, SAMPLE_PROTO, goldenFile } from './samples.js';

const bytes = (...parts: (number | string | Uint8Array)[]): Uint8Array =>
  Uint8Array.from(
    parts.flatMap((p) => (typeof p === 'string' ? [...Buffer.from(p)] : typeof p === 'number' ? [p] : [...p])),
  );

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** An Envelope frame written by hand: field 1 type, field 2 payload. */
function envelope(type: string, payload: Uint8Array): Uint8Array {
  return bytes(0x0a, ...varint(type.length), type, 0x12, ...varint(payload.length), payload);
}

/** A kvmesh.sample.Tree nested `depth` levels through field 2 (children). */
function deepTree(depth: number): Uint8Array {
  let tree = bytes(0x0a, 0x01, 'x');
  for (let i = 0; i < depth; i++) tree = bytes(0x12, ...varint(tree.length), tree);
  return tree;
}

runCodecConformance(test, {
  title: 'protobuf codec',
  createCodec: (messages) => new ProtobufCodec(messages),
  protoSources: [SAMPLE_PROTO],
  samples: SAMPLES,
  goldenFile: goldenFile('protobuf'),
  invalidFrames: [
    { name: 'unregistered type', bytes: envelope('kvmesh.sample.Missing', new Uint8Array(0)) },
    { name: 'no type', bytes: bytes(0x12, 0x00) },
    { name: 'unknown enum number', bytes: envelope('kvmesh.sample.Scalars', bytes(0x38, 0x09)) },
    { name: 'uint64 beyond 2^53', bytes: envelope('kvmesh.sample.Scalars', bytes(0x28, ...varint(2 ** 53 + 2))) },
    { name: 'int64 beyond 2^53', bytes: envelope('kvmesh.sample.Scalars', bytes(0x40, ...varint(2 ** 62))) },
    {
      name: 'string with a lone surrogate',
      bytes: envelope('kvmesh.sample.Scalars', bytes(0x0a, 0x03, 0xed, 0xa0, 0x80)),
    },
    { name: 'payload length past the end', bytes: bytes(0x0a, 0x11, 'kvmesh.core.Empty', 0x12, 0x7f, 0x00) },
    {
      name: 'absurd payload length',
      bytes: bytes(0x0a, 0x11, 'kvmesh.core.Empty', 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f),
    },
    {
      name: 'absurd field length',
      bytes: envelope('kvmesh.sample.Scalars', bytes(0x0a, 0xff, 0xff, 0xff, 0xff, 0x07)),
    },
    {
      name: 'overlong varint',
      bytes: envelope('kvmesh.sample.Scalars', bytes(0x20, ...new Array<number>(11).fill(0xff), 0x01)),
    },
    { name: 'invalid wire type 7', bytes: envelope('kvmesh.sample.Scalars', bytes(0x0f, 0x00)) },
    { name: 'unterminated group', bytes: envelope('kvmesh.sample.Nothing', bytes(0x0b, 0x08, 0x01)) },
    {
      name: 'groups nested a million deep',
      bytes: envelope('kvmesh.sample.Nothing', new Uint8Array(1_000_000).fill(0x0b)),
    },
    { name: 'messages nested too deep', bytes: envelope('kvmesh.sample.Tree', deepTree(80)) },
    { name: 'type with invalid UTF-8 is unknown', bytes: envelope('\u00ff', new Uint8Array(0)) },
    { name: 'envelope truncated in its type', bytes: bytes(0x0a, 0x11, 'kvmesh.core') },
  ],
});

test('protobuf codec writes a kvmesh.core.Envelope around the message encoding', (t) => {
  const { codec, messages } = sampleCodec((m) => new ProtobufCodec(m));
  const inner = messages.get('kvmesh.core.Error').toBinary({ code: 'C', message: 'M' });
  t.deepEqual(inner, bytes(0x0a, 0x01, 'C', 0x12, 0x01, 'M'));
  t.deepEqual(codec.encode('kvmesh.core.Error', { code: 'C', message: 'M' }), envelope('kvmesh.core.Error', inner));
});

test('protobuf codec skips fields it does not know, as protobuf readers must', (t) => {
  const { codec } = sampleCodec((m) => new ProtobufCodec(m));
  const withExtra = bytes(0x0a, 0x01, 'C', 0xa0, 0x06, 0x05, 0x12, 0x01, 'M');
  t.deepEqual(codec.decode(envelope('kvmesh.core.Error', withExtra)), {
    type: 'kvmesh.core.Error',
    payload: { code: 'C', message: 'M' },
  });
});

test('protobuf codec defines the envelope itself when the registry lacks it', (t) => {
  const plain = createMessageRegistry();
  const codec = new ProtobufCodec(plain);
  t.deepEqual(codec.decode(codec.encode('kvmesh.core.Empty', {})), { type: 'kvmesh.core.Empty', payload: {} });
});

test('protobuf codec rejects oversized input and refuses to encode oversized messages', (t) => {
  const { codec } = sampleCodec((messages) => new ProtobufCodec(messages, { maxMessageBytes: 128 }));
  const big = { code: 'x', message: 'y'.repeat(200) };
  t.true(
    isKvError(
      t.throws(() => codec.encode('kvmesh.core.Error', big)),
      'KVMESH_ERR_CODEC_ENCODE',
    ),
  );
  const frame = envelope('kvmesh.core.Error', bytes(0x12, ...varint(200), 'y'.repeat(200)));
  t.true(
    isKvError(
      t.throws(() => codec.decode(frame)),
      'KVMESH_ERR_CODEC_DECODE',
    ),
  );
});

test('the protobuf manifest builds a ProtobufCodec from validated options and the message registry', async (t) => {
  t.is(protobufCodec.family, 'codec');
  t.is(protobufCodec.name, 'protobuf');
  t.deepEqual([...protobufCodec.needs], ['messages']);
  const { messages } = sampleCodec((m) => new ProtobufCodec(m));
  const codec = await protobufCodec.create({ maxMessageBytes: 1024 })({ messages });
  t.true(codec instanceof ProtobufCodec);
  t.is(codec.tag, 3);
  t.is(codec.contentType, 'application/x-protobuf');
});

const fuzz = sampleCodec((messages) => new ProtobufCodec(messages));
const safe = decodesSafely(fuzz.codec, fuzz.messages);

test('protobuf decoder: 50,000 random byte strings each decode to a valid message or a decode error', (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 48 }), safe), runs(40_000));
  fc.assert(fc.property(fc.uint8Array({ minLength: 48, maxLength: 2048 }), safe), runs(10_000));
  t.pass();
});

test('protobuf decoder: 35,000 mutated valid frames each decode to a valid message or a decode error', (t) => {
  fc.assert(fc.property(mutatedFrames(fuzz.codec), safe), runs(35_000));
  t.pass();
});

test('protobuf decoder: 15,000 envelopes of registered types with random payloads decode or fail with a decode error', (t) => {
  const frame = fc
    .tuple(fc.constantFrom(...TYPE_NAMES), fc.uint8Array({ maxLength: 256 }))
    .map(([type, payload]) => envelope(type, payload));
  fc.assert(fc.property(frame, safe), runs(15_000));
  t.pass();
});
