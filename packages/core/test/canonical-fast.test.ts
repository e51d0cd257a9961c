import test from 'ava';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { BAIL, fastCanonical } from '../src/rpc/canonical-fast.js';
import { FAST_HOOKS, fullCanonical, toCanonical } from '../src/rpc/canonical.js';

const SCHEMA = `
syntax = "proto3";
package t.fast;
enum Mood { MOOD_UNSPECIFIED = 0; MOOD_HAPPY = 1; MOOD_SAD = 2; }
message Point { int32 x = 1; sint64 y = 2; }
message All {
  string text = 1;
  bytes data = 2;
  bool flag = 3;
  int32 small = 4;
  uint64 big = 5;
  double ratio = 6;
  Mood mood = 7;
  repeated string names = 8;
  map<string, Point> places = 9;
  Point origin = 10;
  uint32 count = 11;
  float approx = 12;
  map<int32, string> by_number = 13;
  oneof choice { string word = 14; Point spot = 15; }
  optional string note = 16;
  repeated Mood moods = 17;
  repeated Point points = 18;
  fixed64 stamp = 19;
}
message Tree { string label = 1; repeated Tree children = 2; }
`;

const root = protobuf.parse(SCHEMA).root;
root.resolveAll();
const ALL = root.lookupType('t.fast.All');
const TREE = root.lookupType('t.fast.Tree');

/** Values that are right for some field, wrong for most, and edge cases of each kind. */
const junk = fc.oneof(
  fc.constant(null),
  fc.constant(undefined),
  fc.constant(-0),
  fc.constant(NaN),
  fc.constant(2 ** 31),
  fc.constant(-(2 ** 31) - 1),
  fc.constant(2 ** 53),
  fc.constant('\uD800'),
  fc.constant('MOOD_SAD'),
  fc.constant(7),
  fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }),
  fc.double(),
  fc.integer(),
  fc.string(),
  fc.boolean(),
  fc.uint8Array({ maxLength: 4 }),
  fc.constant(Buffer.from('ab')),
  fc.array(fc.oneof(fc.string(), fc.integer(), fc.constant(null)), { maxLength: 3 }),
  fc.constant(new Map([['a', 1]])),
  fc.constant(Object.create(null) as object),
  fc.dictionary(
    fc.oneof(fc.string(), fc.constant('__proto__'), fc.constant('1')),
    fc.oneof(fc.integer(), fc.string()),
    {
      maxKeys: 3,
    },
  ),
  fc.record({ x: fc.oneof(fc.integer(), fc.string()), y: fc.oneof(fc.integer(), fc.bigInt()) }, { requiredKeys: [] }),
);

const point = fc.record(
  { x: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), y: fc.maxSafeInteger() },
  { requiredKeys: [] },
);
const validAll = fc.record(
  {
    text: fc.string(),
    data: fc.uint8Array({ maxLength: 8 }),
    flag: fc.boolean(),
    small: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    big: fc.oneof(fc.maxSafeNat(), fc.bigInt({ min: 0n, max: BigInt(Number.MAX_SAFE_INTEGER) })),
    ratio: fc.double(),
    mood: fc.constantFrom('MOOD_UNSPECIFIED', 'MOOD_HAPPY', 'MOOD_SAD', 0, 1, 2),
    names: fc.array(fc.string(), { maxLength: 3 }),
    places: fc.dictionary(fc.string(), point, { maxKeys: 3 }),
    origin: fc.oneof(point, fc.constant(null)),
    count: fc.nat(),
    approx: fc.float(),
    by_number: fc.dictionary(fc.integer({ min: -5, max: 5 }).map(String), fc.string(), { maxKeys: 3 }),
    word: fc.string(),
    note: fc.string(),
    moods: fc.array(fc.constantFrom('MOOD_HAPPY', 2), { maxLength: 3 }),
    points: fc.array(point, { maxLength: 3 }),
    stamp: fc.maxSafeNat(),
  },
  { requiredKeys: [] },
);
/** A valid message with some fields replaced by junk, and sometimes a second oneof member. */
const mixed = fc
  .tuple(validAll, fc.dictionary(fc.constantFrom(...ALL.fieldsArray.map((f) => f.name)), junk, { maxKeys: 2 }))
  .map(([valid, bad]) => ({ ...valid, ...bad }));

function outcome(run: () => unknown): unknown {
  try {
    return { value: run() };
  } catch (err) {
    return { error: (err as Error).message, code: (err as { code?: unknown }).code };
  }
}

test('the planned path converts valid messages exactly as the full walk does', (t) => {
  let runs = 0;
  fc.assert(
    fc.property(validAll, (message) => {
      const fast = fastCanonical(ALL, message, FAST_HOOKS);
      // Only a oneof with both members set is invalid here.
      if (fast === BAIL) return 'word' in message && 'spot' in message;
      runs++;
      t.deepEqual(fast, fullCanonical(ALL, message, 'canonical', 'KVMESH_ERR_MESSAGE_INVALID'));
      return true;
    }),
    { numRuns: 500 },
  );
  t.true(runs > 400, `${runs} of 500 took the planned path`);
});

test('any message, valid or not, converts or fails with the same error by both paths', (t) => {
  fc.assert(
    fc.property(fc.oneof(mixed, junk), (message) => {
      const both = outcome(() => toCanonical(ALL, message, 'canonical', 'KVMESH_ERR_CODEC_DECODE'));
      t.deepEqual(
        both,
        outcome(() => fullCanonical(ALL, message, 'canonical', 'KVMESH_ERR_CODEC_DECODE')),
      );
    }),
    { numRuns: 3000 },
  );
});

test('negative zero, 64-bit integers as bigint and Buffers come out as the full walk makes them', (t) => {
  const message = { ratio: -0, big: 12n, stamp: 0n, data: Buffer.from('xy'), approx: -0, small: -0 };
  const fast = fastCanonical(ALL, message, FAST_HOOKS);
  t.not(fast, BAIL);
  const out = fast as Record<string, unknown>;
  t.true(Object.is(out['ratio'], 0) && Object.is(out['approx'], 0) && Object.is(out['small'], 0));
  t.is(out['big'], 12);
  t.is((out['data'] as Uint8Array).constructor, Uint8Array, 'a plain Uint8Array, not a Buffer');
  t.not(out['data'], message.data, 'a copy');
  t.deepEqual(out, fullCanonical(ALL, message, 'canonical', 'KVMESH_ERR_MESSAGE_INVALID'));
});

test('nesting past the limit is left to the full walk, which names it', (t) => {
  let tree: Record<string, unknown> = { label: 'leaf' };
  for (let i = 0; i < 70; i++) tree = { label: `n${i}`, children: [tree] };
  t.is(fastCanonical(TREE, tree, FAST_HOOKS), BAIL);
  t.throws(() => toCanonical(TREE, tree, 'canonical', 'KVMESH_ERR_MESSAGE_INVALID'), { message: /deeper than 64/ });
});
