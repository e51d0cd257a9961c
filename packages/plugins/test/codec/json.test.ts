import { isKvError, runCodecConformance } from '@kvmesh/core';
import test from 'ava';
import fc from 'fast-check';
import { JsonCodec, jsonCodec } from '../../src/index.js';
import { FIELD_NAMES, TYPE_NAMES, decodesSafely, mutatedFrames, runs, sampleCodec } from './fuzz.js';
import { SAMPLES, SAMPLE_PROTO, goldenFile } from './samples.js';

const utf8 = (value: unknown): Uint8Array =>
  new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));
const scalars = (payload: unknown): Uint8Array => utf8({ type: 'kvmesh.sample.Scalars', payload });

function deepTree(depth: number): unknown {
  let tree: unknown = { label: 'leaf' };
  for (let i = 0; i < depth; i++) tree = { label: `level ${i}`, children: [tree] };
  return tree;
}

runCodecConformance(test, {
  title: 'json codec',
  createCodec: (messages) => new JsonCodec(messages),
  protoSources: [SAMPLE_PROTO],
  samples: SAMPLES,
  goldenFile: goldenFile('json'),
  rejectsTruncation: true,
  invalidFrames: [
    { name: 'string field holding a number', bytes: scalars({ text: 5 }) },
    { name: 'int32 out of range', bytes: scalars({ small: 2 ** 31 }) },
    { name: 'fractional integer', bytes: scalars({ small: 1.5 }) },
    { name: 'uint64 negative', bytes: scalars({ big: -1 }) },
    { name: 'uint64 beyond 2^53', bytes: scalars({ big: '18446744073709551615' }) },
    { name: 'bool as string', bytes: scalars({ flag: 'true' }) },
    { name: 'bytes not base64', bytes: scalars({ data: '*not base64*' }) },
    { name: 'bytes as array', bytes: scalars({ data: [1, 2] }) },
    { name: 'unknown enum name', bytes: scalars({ color: 'COLOR_BLUE' }) },
    { name: 'double as text', bytes: scalars({ ratio: 'one' }) },
    { name: 'lone surrogate', bytes: utf8('{"type":"kvmesh.sample.Scalars","payload":{"text":"\\ud800"}}') },
    { name: 'repeated as scalar', bytes: utf8({ type: 'kvmesh.sample.Collections', payload: { names: 'x' } }) },
    { name: 'null in repeated', bytes: utf8({ type: 'kvmesh.sample.Collections', payload: { names: [null] } }) },
    {
      name: 'map value of wrong type',
      bytes: utf8({ type: 'kvmesh.sample.Collections', payload: { counts: { a: 'x' } } }),
    },
    {
      name: 'map key not a number',
      bytes: utf8({ type: 'kvmesh.sample.Collections', payload: { labels: { x: 'y' } } }),
    },
    { name: 'message as number', bytes: utf8({ type: 'kvmesh.sample.Nested', payload: { origin: 5 } }) },
    { name: 'two oneof members', bytes: utf8({ type: 'kvmesh.sample.Nested', payload: { word: 'a', number: 1 } }) },
    { name: 'nesting too deep', bytes: utf8({ type: 'kvmesh.sample.Tree', payload: deepTree(80) }) },
    { name: 'payload missing', bytes: utf8({ type: 'kvmesh.core.Empty' }) },
    { name: 'payload an array', bytes: utf8({ type: 'kvmesh.core.Empty', payload: [] }) },
    { name: 'type not a string', bytes: utf8({ type: 1, payload: {} }) },
    { name: 'unregistered type', bytes: utf8({ type: 'kvmesh.sample.Missing', payload: {} }) },
    { name: 'frame an array', bytes: utf8(['kvmesh.core.Empty', {}]) },
    { name: 'frame a string', bytes: utf8('"kvmesh.core.Empty"') },
    { name: 'trailing garbage', bytes: utf8('{"type":"kvmesh.core.Empty","payload":{}} x') },
    { name: 'invalid UTF-8', bytes: Uint8Array.of(0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d) },
    { name: 'deeply nested arrays', bytes: utf8(`${'['.repeat(100_000)}${']'.repeat(100_000)}`) },
  ],
});

test('json codec writes {"type", "payload"} with bytes in base64 and enums by name', (t) => {
  const { codec } = sampleCodec((messages) => new JsonCodec(messages));
  const bytes = codec.encode('kvmesh.sample.Scalars', { data: Uint8Array.of(1, 2, 3), color: 2, big: 2 ** 40 });
  const text = new TextDecoder().decode(bytes);
  t.is(
    text,
    '{"type":"kvmesh.sample.Scalars","payload":{"text":"","data":"AQID","flag":false,"small":0,"big":1099511627776,' +
      '"ratio":0,"color":"COLOR_GREEN","signedBig":0,"count":0,"approx":0,"zigzag":0,"fixed":0}}',
  );
});

test('json codec reads what other proto3 JSON writers send: string integers, base64url, missing and unknown fields', (t) => {
  const { codec } = sampleCodec((messages) => new JsonCodec(messages));
  const decoded = codec.decode(
    utf8({ type: 'kvmesh.sample.Scalars', payload: { big: '42', data: '-_8', extra: true } }),
  );
  t.is((decoded.payload as { big: number }).big, 42);
  t.deepEqual((decoded.payload as { data: Uint8Array }).data, Uint8Array.of(0xfb, 0xff));
  t.is((decoded.payload as { text: string }).text, '');
  t.false('extra' in (decoded.payload as object));
});

test('json codec refuses frames and messages larger than maxMessageBytes', (t) => {
  const { codec } = sampleCodec((messages) => new JsonCodec(messages, { maxMessageBytes: 128 }));
  const small = codec.encode('kvmesh.core.Error', { code: 'x' });
  t.true(small.length <= 128);
  const big = { code: 'x', message: 'y'.repeat(200) };
  t.true(
    isKvError(
      t.throws(() => codec.encode('kvmesh.core.Error', big)),
      'KVMESH_ERR_CODEC_ENCODE',
    ),
  );
  const frame = utf8({ type: 'kvmesh.core.Error', payload: big });
  t.true(
    isKvError(
      t.throws(() => codec.decode(frame)),
      'KVMESH_ERR_CODEC_DECODE',
    ),
  );
});

test('the json manifest builds a JsonCodec from validated options and the message registry', async (t) => {
  t.is(jsonCodec.family, 'codec');
  t.is(jsonCodec.name, 'json');
  t.deepEqual([...jsonCodec.needs], ['messages']);
  const { messages } = sampleCodec((m) => new JsonCodec(m));
  const codec = await jsonCodec.create({ maxMessageBytes: 1024 })({ messages });
  t.true(codec instanceof JsonCodec);
  t.is(codec.tag, 1);
  t.is(codec.contentType, 'application/json');
});

const fuzz = sampleCodec((messages) => new JsonCodec(messages));
const safe = decodesSafely(fuzz.codec, fuzz.messages);

test('json decoder: 50,000 random byte strings each decode to a valid message or a decode error', (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 48 }), safe), runs(40_000));
  fc.assert(fc.property(fc.uint8Array({ minLength: 48, maxLength: 2048 }), safe), runs(10_000));
  t.pass();
});

test('json decoder: 35,000 mutated valid frames each decode to a valid message or a decode error', (t) => {
  fc.assert(fc.property(mutatedFrames(fuzz.codec), safe), runs(35_000));
  t.pass();
});

test('json decoder: 15,000 well-formed frames with random field values decode or fail with a decode error', (t) => {
  const frame = fc.record({
    type: fc.constantFrom(...TYPE_NAMES),
    payload: fc.dictionary(fc.constantFrom(...FIELD_NAMES), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 }),
  });
  fc.assert(fc.property(frame.map(utf8), safe), runs(15_000));
  t.pass();
});
