import { isKvError, runCodecConformance } from '@kvmesh/core';
import test from 'ava';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { MsgpackCodec, msgpackCodec } from '../../src/index.js';
import { FIELD_NAMES, TYPE_NAMES, decodesSafely, mutatedFrames, runs, sampleCodec } from './fuzz.js';
import { SAMPLES, SAMPLE_PROTO, goldenFile } from './samples.js';

// What another msgpack writer might send, including types kvmesh never writes (timestamps, records).
const foreign = new Packr({ useRecords: false, variableMapSize: true });
const pack = (value: unknown): Uint8Array => new Uint8Array(foreign.pack(value));
const scalars = (payload: unknown): Uint8Array => pack(['kvmesh.sample.Scalars', payload]);
const bytes = (...parts: (number | string)[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...Buffer.from(p)] : [p])));

function deepTree(depth: number): unknown {
  let tree: unknown = { label: 'leaf' };
  for (let i = 0; i < depth; i++) tree = { label: `level ${i}`, children: [tree] };
  return tree;
}

runCodecConformance(test, {
  title: 'msgpack codec',
  createCodec: (messages) => new MsgpackCodec(messages),
  protoSources: [SAMPLE_PROTO],
  samples: SAMPLES,
  goldenFile: goldenFile('msgpack'),
  rejectsTruncation: true,
  invalidFrames: [
    { name: 'string field holding a number', bytes: scalars({ text: 5 }) },
    { name: 'string field holding a timestamp', bytes: scalars({ text: new Date(0) }) },
    { name: 'bytes field holding a string', bytes: scalars({ data: 'AQID' }) },
    { name: 'int32 out of range', bytes: scalars({ small: 2 ** 31 }) },
    { name: 'fractional integer', bytes: scalars({ small: 0.5 }) },
    { name: 'uint64 negative', bytes: scalars({ big: -1 }) },
    { name: 'uint64 beyond 2^53', bytes: scalars({ big: 2n ** 64n - 1n }) },
    { name: 'unknown enum number', bytes: scalars({ color: 9 }) },
    { name: 'double as bigint', bytes: scalars({ ratio: 1n }) },
    { name: 'repeated as map', bytes: pack(['kvmesh.sample.Collections', { names: { 0: 'a' } }]) },
    { name: 'map key not boolean', bytes: pack(['kvmesh.sample.Collections', { flags: { yes: new Uint8Array(1) } }]) },
    { name: 'two oneof members', bytes: pack(['kvmesh.sample.Nested', { word: 'a', spot: {} }]) },
    { name: 'nesting too deep', bytes: pack(['kvmesh.sample.Tree', deepTree(80)]) },
    { name: 'payload nil', bytes: pack(['kvmesh.core.Empty', null]) },
    { name: 'payload an array', bytes: pack(['kvmesh.core.Empty', []]) },
    { name: 'frame not an array', bytes: pack({ type: 'kvmesh.core.Empty', payload: {} }) },
    { name: 'frame of one element', bytes: pack(['kvmesh.core.Empty']) },
    { name: 'frame of three elements', bytes: pack(['kvmesh.core.Empty', {}, {}]) },
    { name: 'type not a string', bytes: pack([7, {}]) },
    { name: 'unregistered type', bytes: pack(['kvmesh.sample.Missing', {}]) },
    { name: 'trailing bytes', bytes: bytes(...pack(['kvmesh.core.Empty', {}]), 0xc0) },
    { name: 'never-used byte 0xc1', bytes: bytes(0x92, 0xc1, 0x80) },
    { name: 'str32 claiming 2 GiB', bytes: bytes(0x92, 0xdb, 0x7f, 0xff, 0xff, 0xff, 'kvmesh') },
    { name: 'array32 claiming 4 billion items', bytes: bytes(0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0) },
    { name: 'map32 claiming 4 billion entries', bytes: bytes(0x92, 0xa1, 'x', 0xdf, 0xff, 0xff, 0xff, 0xff) },
    { name: 'bin32 claiming 4 GiB', bytes: bytes(0x92, 0xa1, 'x', 0xc6, 0xff, 0xff, 0xff, 0xff, 0x00) },
    { name: 'ext32 claiming 4 GiB', bytes: bytes(0x92, 0xa1, 'x', 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00) },
  ],
});

test('msgpack codec writes the standard array [type, payload] with bytes as bin', (t) => {
  const { codec } = sampleCodec((messages) => new MsgpackCodec(messages));
  const frame = codec.encode('kvmesh.core.Error', { code: 'C', message: 'M' });
  // fixarray(2), fixstr "kvmesh.core.Error", fixmap(2) {"code": "C", "message": "M"}
  t.deepEqual(frame, bytes(0x92, 0xb1, 'kvmesh.core.Error', 0x82, 0xa4, 'code', 0xa1, 'C', 0xa7, 'message', 0xa1, 'M'));
  const scalarsFrame = codec.encode('kvmesh.sample.Scalars', { data: Uint8Array.of(1, 2) });
  t.true(Buffer.from(scalarsFrame).includes(Buffer.from([0xa4, ...Buffer.from('data'), 0xc4, 0x02, 1, 2])));
});

test('msgpack codec reads 64-bit integers sent as uint64 and int64 by other writers', (t) => {
  const { codec } = sampleCodec((messages) => new MsgpackCodec(messages));
  const frame = bytes(0x92, 0xb5, 'kvmesh.sample.Scalars', 0x81, 0xa3, 'big', 0xcf, 0, 0, 0x01, 0, 0, 0, 0, 0);
  t.is((codec.decode(frame).payload as { big: number }).big, 2 ** 40);
});

test('msgpack codec reads integer map keys from other writers and keeps a "__proto__" key as data', (t) => {
  const { codec } = sampleCodec((messages) => new MsgpackCodec(messages));
  const frame = pack([
    'kvmesh.sample.Collections',
    { labels: new Map([[18, 'x']]), counts: new Map([['__proto__', 1]]) },
  ]);
  const payload = codec.decode(frame).payload as { labels: object; counts: object };
  t.deepEqual(Object.entries(payload.labels), [['18', 'x']]);
  t.deepEqual(Object.entries(payload.counts), [['__proto__', 1]]);
  t.is(Object.getPrototypeOf(payload.counts), Object.prototype);
});

test('msgpack codec rejects a map holding one key both as integer and as text', (t) => {
  const { codec } = sampleCodec((messages) => new MsgpackCodec(messages));
  const labels = new Map<unknown, string>([
    [18, 'a'],
    ['18', 'b'],
  ]);
  const frame = pack(['kvmesh.sample.Collections', { labels }]);
  t.true(
    isKvError(
      t.throws(() => codec.decode(frame)),
      'KVMESH_ERR_CODEC_DECODE',
    ),
  );
});

test('msgpack codec rejects oversized input before parsing and refuses to encode oversized messages', (t) => {
  const { codec } = sampleCodec((messages) => new MsgpackCodec(messages, { maxMessageBytes: 128 }));
  const big = { code: 'x', message: 'y'.repeat(200) };
  t.true(
    isKvError(
      t.throws(() => codec.encode('kvmesh.core.Error', big)),
      'KVMESH_ERR_CODEC_ENCODE',
    ),
  );
  t.true(
    isKvError(
      t.throws(() => codec.decode(pack(['kvmesh.core.Error', big]))),
      'KVMESH_ERR_CODEC_DECODE',
    ),
  );
});

test('msgpack decode of a header claiming a huge length fails without allocating it', (t) => {
  const { codec } = sampleCodec((messages) => new MsgpackCodec(messages));
  const before = process.memoryUsage().arrayBuffers;
  for (const header of [0xc6, 0xdb, 0xdd, 0xdf]) {
    const frame = bytes(0x92, 0xa1, 'x', header, 0x7f, 0xff, 0xff, 0xff, 0x00);
    t.true(
      isKvError(
        t.throws(() => codec.decode(frame)),
        'KVMESH_ERR_CODEC_DECODE',
      ),
    );
  }
  t.true(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
});

test('the msgpack manifest builds a MsgpackCodec from validated options and the message registry', async (t) => {
  t.is(msgpackCodec.family, 'codec');
  t.is(msgpackCodec.name, 'msgpack');
  t.deepEqual([...msgpackCodec.needs], ['messages']);
  const { messages } = sampleCodec((m) => new MsgpackCodec(m));
  const codec = await msgpackCodec.create({ maxMessageBytes: 1024 })({ messages });
  t.true(codec instanceof MsgpackCodec);
  t.is(codec.tag, 2);
  t.is(codec.contentType, 'application/msgpack');
});

const fuzz = sampleCodec((messages) => new MsgpackCodec(messages));
const safe = decodesSafely(fuzz.codec, fuzz.messages);

test('msgpack decoder: 50,000 random byte strings each decode to a valid message or a decode error', (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 48 }), safe), runs(40_000));
  fc.assert(fc.property(fc.uint8Array({ minLength: 48, maxLength: 2048 }), safe), runs(10_000));
  t.pass();
});

test('msgpack decoder: 35,000 mutated valid frames each decode to a valid message or a decode error', (t) => {
  fc.assert(fc.property(mutatedFrames(fuzz.codec), safe), runs(35_000));
  t.pass();
});

test('msgpack decoder: 15,000 well-formed frames with random field values decode or fail with a decode error', (t) => {
  const value = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.uint8Array({ maxLength: 8 }),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
    fc.double(),
    fc.date({ noInvalidDate: true }),
  );
  const frame = fc.tuple(
    fc.constantFrom(...TYPE_NAMES),
    fc.dictionary(fc.constantFrom(...FIELD_NAMES), value, { maxKeys: 6 }),
  );
  fc.assert(fc.property(frame.map(pack), safe), runs(15_000));
  t.pass();
});
