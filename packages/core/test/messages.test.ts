import { readFileSync } from 'node:fs';
import test from 'ava';
import {
  CORE_MESSAGES,
  coreProtoSource,
  createMessageRegistry,
  defineCoreMessages,
  isKvError,
  type ErrorCode,
  type MessageRegistry,
} from '../src/index.js';

const KINDS = `
syntax = "proto3";
package t.kinds;

enum Mood {
  MOOD_UNSPECIFIED = 0;
  MOOD_HAPPY = 1;
  MOOD_SAD = 2;
}

message Point { int32 x = 1; int32 y = 2; }

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
  sint64 signed_big = 11;
  uint32 count = 12;
  float approx = 13;
  map<int32, string> by_number = 14;
  map<bool, string> by_flag = 15;
  oneof choice {
    string word = 16;
    Point spot = 17;
  }
  optional string note = 18;
  repeated Mood moods = 19;
}

message Tree {
  string label = 1;
  repeated Tree children = 2;
}
`;

function registry(): MessageRegistry {
  const messages = createMessageRegistry();
  messages.define(KINDS);
  return messages;
}

function codeOf(run: () => unknown): ErrorCode | 'returned' | 'not a KvError' {
  try {
    run();
    return 'returned';
  } catch (err) {
    return isKvError(err) ? err.code : 'not a KvError';
  }
}

function thrown(run: () => unknown): { code: string; message: string; details?: Record<string, unknown> } {
  try {
    run();
  } catch (err) {
    return err as { code: string; message: string; details?: Record<string, unknown> };
  }
  throw new Error('expected a throw');
}

const DEFAULTS = {
  text: '',
  data: new Uint8Array(0),
  flag: false,
  small: 0,
  big: 0,
  ratio: 0,
  mood: 'MOOD_UNSPECIFIED',
  names: [],
  places: {},
  origin: null,
  signedBig: 0,
  count: 0,
  approx: 0,
  byNumber: {},
  byFlag: {},
  moods: [],
};

test('a new registry holds the core types of proto/kvmesh.proto', (t) => {
  const messages = createMessageRegistry();
  t.deepEqual(messages.names(), ['kvmesh.core.Empty', 'kvmesh.core.Envelope', 'kvmesh.core.Error']);
  t.deepEqual(Object.values(CORE_MESSAGES).sort(), messages.names());
  t.deepEqual(messages.get(CORE_MESSAGES.error).normalize({ code: 'X' }), { code: 'X', message: '' });
  t.deepEqual(messages.get(CORE_MESSAGES.envelope).normalize({}), { type: '', payload: new Uint8Array(0) });
  t.deepEqual(messages.get(CORE_MESSAGES.empty).normalize({}), {});
});

test('the core source is the shipped proto/kvmesh.proto, and defining it again is harmless', (t) => {
  const shipped = readFileSync(new URL('../../proto/kvmesh.proto', import.meta.url), 'utf8');
  t.is(coreProtoSource(), shipped);
  const messages = createMessageRegistry();
  t.deepEqual(defineCoreMessages(messages), ['kvmesh.core.Empty', 'kvmesh.core.Envelope', 'kvmesh.core.Error']);
  t.is(messages.names().length, 3);
});

test('define returns the sorted names of the message types it declares, nested ones included', (t) => {
  const messages = createMessageRegistry();
  const names = messages.define(`
    syntax = "proto3";
    package t.nest;
    enum Kind { KIND_NONE = 0; }
    message Outer { message Inner { Kind kind = 1; } Inner inner = 1; }
    message Another {}
  `);
  t.deepEqual(names, ['t.nest.Another', 't.nest.Outer', 't.nest.Outer.Inner']);
  t.true(messages.has('t.nest.Outer.Inner'));
  t.false(messages.has('t.nest.Kind'), 'enums are not message types');
  t.deepEqual(messages.get('t.nest.Outer').normalize({ inner: {} }), { inner: { kind: 'KIND_NONE' } });
});

test('defining the same source twice, or the same definition from another source, is harmless', (t) => {
  const messages = registry();
  const before = messages.names();
  t.deepEqual(messages.define(KINDS), ['t.kinds.All', 't.kinds.Point', 't.kinds.Tree']);
  const reformatted = `// another file declaring the same type
    syntax = "proto3";   package t.kinds;
    message Point {
      int32 x = 1;  // comments and spacing do not matter
      int32 y = 2;
    }
    message Extra { Point at = 1; }`;
  t.deepEqual(messages.define(reformatted), ['t.kinds.Extra', 't.kinds.Point']);
  t.deepEqual(messages.names(), [...before, 't.kinds.Extra'].sort());
});

test('a different definition under a taken name throws KVMESH_ERR_MESSAGE_DUPLICATE and adds nothing', (t) => {
  const messages = registry();
  const before = messages.names();
  const err = thrown(() =>
    messages.define('syntax = "proto3"; package t.kinds; message Fresh {} message Point { int64 x = 1; }'),
  );
  t.is(err.code, 'KVMESH_ERR_MESSAGE_DUPLICATE');
  t.regex(err.message, /t\.kinds\.Point/);
  t.deepEqual(messages.names(), before);
  t.is(
    codeOf(() => messages.define('syntax = "proto3"; package kvmesh; message core {}')),
    'KVMESH_ERR_MESSAGE_DUPLICATE',
    'a message may not take the name of a package',
  );
});

test('a source that does not parse or names an unknown type throws KVMESH_ERR_MESSAGE_SCHEMA and adds nothing', (t) => {
  const messages = createMessageRegistry();
  t.is(
    codeOf(() => messages.define('syntax = "proto3"; message Broken {')),
    'KVMESH_ERR_MESSAGE_SCHEMA',
  );
  t.is(
    codeOf(() => messages.define(42 as unknown as string)),
    'KVMESH_ERR_MESSAGE_SCHEMA',
  );
  const dangling = 'syntax = "proto3"; package t.dangling; message A { Missing m = 1; } message B {}';
  const err = thrown(() => messages.define(dangling));
  t.is(err.code, 'KVMESH_ERR_MESSAGE_SCHEMA');
  t.regex(err.message, /Missing/);
  t.false(messages.has('t.dangling.A'));
  t.false(messages.has('t.dangling.B'));
  t.deepEqual(messages.define('syntax = "proto3"; package t.dangling; message A { string m = 1; }'), ['t.dangling.A']);
});

test('a source can use the types of sources defined before it; import lines are not needed', (t) => {
  const messages = createMessageRegistry();
  messages.define(`
    syntax = "proto3";
    import "kvmesh.proto";
    package t.uses;
    message Reply { kvmesh.core.Error error = 1; }
  `);
  t.deepEqual(messages.get('t.uses.Reply').normalize({ error: { code: 'C' } }), {
    error: { code: 'C', message: '' },
  });
});

test('get of an unregistered type throws KVMESH_ERR_MESSAGE_UNKNOWN; has answers without throwing', (t) => {
  const messages = createMessageRegistry();
  t.is(
    codeOf(() => messages.get('t.none.Missing')),
    'KVMESH_ERR_MESSAGE_UNKNOWN',
  );
  t.is(
    codeOf(() => messages.get('constructor')),
    'KVMESH_ERR_MESSAGE_UNKNOWN',
  );
  t.is(
    codeOf(() => messages.get(undefined as unknown as string)),
    'KVMESH_ERR_MESSAGE_UNKNOWN',
  );
  t.false(messages.has('t.none.Missing'));
  t.true(messages.has('kvmesh.core.Error'));
});

test('normalize fills every field with its default, in declaration order, message fields as null', (t) => {
  const all = registry().get('t.kinds.All');
  const normalized = all.normalize({});
  t.deepEqual(normalized, DEFAULTS);
  t.deepEqual(Object.keys(normalized), Object.keys(DEFAULTS));
});

test('normalize turns Buffers, bigints and enum numbers into canonical values and drops unknown keys', (t) => {
  const all = registry().get('t.kinds.All');
  const normalized = all.normalize({ data: Buffer.from([1, 2]), big: 7n, mood: 2, moods: [1, 'MOOD_SAD'], extra: 1 });
  t.is(Object.getPrototypeOf(normalized['data']), Uint8Array.prototype);
  t.deepEqual(normalized, {
    ...DEFAULTS,
    data: Uint8Array.of(1, 2),
    big: 7,
    mood: 'MOOD_SAD',
    moods: ['MOOD_HAPPY', 'MOOD_SAD'],
  });
  t.false('extra' in normalized);
});

test('normalize copies bytes, so later changes to the input do not leak into the message', (t) => {
  const all = registry().get('t.kinds.All');
  const data = Uint8Array.of(1, 2, 3);
  const normalized = all.normalize({ data });
  data[0] = 9;
  t.deepEqual(normalized['data'], Uint8Array.of(1, 2, 3));
});

test('normalize throws KVMESH_ERR_MESSAGE_INVALID naming the bad field', (t) => {
  const all = registry().get('t.kinds.All');
  const cases: [unknown, string, RegExp][] = [
    [{ text: 5 }, 'text', /must be a string/],
    [{ text: 'a\ud800b' }, 'text', /lone surrogate/],
    [{ data: 'AQI=' }, 'data', /must be a Uint8Array/],
    [{ flag: 1 }, 'flag', /must be a boolean/],
    [{ small: 2 ** 31 }, 'small', /integer from -2147483648 to 2147483647/],
    [{ small: 1.5 }, 'small', /integer/],
    [{ count: -1 }, 'count', /integer from 0 to 4294967295/],
    [{ big: 2 ** 53 }, 'big', /integer from 0 to 9007199254740991/],
    [{ big: -1 }, 'big', /integer from 0/],
    [{ signedBig: -(2 ** 60) }, 'signedBig', /integer from -9007199254740991/],
    [{ ratio: '1' }, 'ratio', /must be a number/],
    [{ mood: 'MOOD_ANGRY' }, 'mood', /one of MOOD_UNSPECIFIED, MOOD_HAPPY, MOOD_SAD/],
    [{ mood: 7 }, 'mood', /one of/],
    [{ names: 'a' }, 'names', /must be an array/],
    [{ names: ['a', 1] }, 'names[1]', /must be a string/],
    [{ names: [null] }, 'names[0]', /must not be null/],
    [{ places: [] }, 'places', /must be an object/],
    [{ places: { home: { x: 'one' } } }, 'places["home"].x', /must be an integer/],
    [{ places: { home: null } }, 'places["home"]', /must not be null/],
    [{ byNumber: { one: 'x' } }, 'byNumber["one"]', /decimal integer key/],
    [{ byNumber: { '07': 'a', '7': 'b' } }, 'byNumber["07"]', /same key as "7"/],
    [{ byFlag: { yes: 'x' } }, 'byFlag["yes"]', /"true" or "false"/],
    [{ origin: 'here' }, 'origin', /must be an object \(message t\.kinds\.Point\)/],
    [{ origin: new Date() }, 'origin', /must be an object/],
  ];
  for (const [payload, field, problem] of cases) {
    const err = thrown(() => all.normalize(payload));
    t.is(err.code, 'KVMESH_ERR_MESSAGE_INVALID', field);
    t.is(err.details?.['field'], field);
    t.regex(err.message, new RegExp(`^t\\.kinds\\.All: field '${field.replace(/[[\]."]/g, '\\$&')}' `));
    t.regex(err.message, problem, field);
  }
  for (const payload of [null, 'text', 42, [], Uint8Array.of(1)]) {
    t.is(thrown(() => all.normalize(payload)).code, 'KVMESH_ERR_MESSAGE_INVALID');
  }
});

test('normalize rounds float fields to 32 bits and writes a single zero', (t) => {
  const all = registry().get('t.kinds.All');
  const normalized = all.normalize({ approx: 0.1, ratio: -0, small: -0 });
  t.is(normalized['approx'], Math.fround(0.1));
  t.true(Object.is(normalized['ratio'], 0));
  t.true(Object.is(normalized['small'], 0));
  t.true(Object.is(all.normalize({ approx: -1e-50 })['approx'], 0));
});

test('normalize writes map keys in canonical form and sorted, keeping "__proto__" as data', (t) => {
  const all = registry().get('t.kinds.All');
  const normalized = all.normalize({
    byNumber: { '10': 'ten', '-3': 'minus three', '007': 'seven' },
    places: JSON.parse('{"zeta":{},"__proto__":{"x":1},"alpha":{}}') as unknown,
    byFlag: { true: 'yes', false: 'no' },
  });
  t.deepEqual(Object.keys(normalized['byNumber'] as object), ['7', '10', '-3']);
  t.deepEqual(Object.entries(normalized['byNumber'] as object), [
    ['7', 'seven'],
    ['10', 'ten'],
    ['-3', 'minus three'],
  ]);
  const places = normalized['places'] as Record<string, unknown>;
  t.deepEqual(Object.keys(places), ['__proto__', 'alpha', 'zeta']);
  t.is(Object.getPrototypeOf(places), Object.prototype);
  t.deepEqual(Object.getOwnPropertyDescriptor(places, '__proto__')?.value, { x: 1, y: 0 });
  t.deepEqual(Object.keys(normalized['byFlag'] as object), ['false', 'true']);
});

test('normalize allows one member per oneof, and proto3 optional fields are present only when set', (t) => {
  const all = registry().get('t.kinds.All');
  t.deepEqual(all.normalize({ word: 'w', note: '' }), { ...DEFAULTS, word: 'w', note: '' });
  t.deepEqual(all.normalize({ spot: {}, word: null }), { ...DEFAULTS, spot: { x: 0, y: 0 } });
  const err = thrown(() => all.normalize({ word: 'w', spot: {} }));
  t.is(err.code, 'KVMESH_ERR_MESSAGE_INVALID');
  t.regex(err.message, /'word' and 'spot'.*oneof 'choice'/);
});

test('normalize refuses messages nested deeper than 64 levels', (t) => {
  const tree = registry().get('t.kinds.Tree');
  const nest = (depth: number): unknown => {
    let node: unknown = { label: 'leaf' };
    for (let i = 1; i < depth; i++) node = { children: [node] };
    return node;
  };
  t.notThrows(() => tree.normalize(nest(64)));
  t.is(thrown(() => tree.normalize(nest(65))).code, 'KVMESH_ERR_MESSAGE_INVALID');
  t.regex(thrown(() => tree.normalize(nest(10_000))).message, /deeper than 64/);
});

test('toBinary and fromBinary round-trip to the canonical form, with bytes copied out of the input', (t) => {
  const all = registry().get('t.kinds.All');
  const payload = {
    text: 'ü',
    data: Uint8Array.of(0, 255),
    big: Number.MAX_SAFE_INTEGER,
    signedBig: -Number.MAX_SAFE_INTEGER,
    mood: 'MOOD_HAPPY',
    names: ['a', ''],
    places: { b: { x: 1 }, a: {} },
    origin: { y: -1 },
    approx: 0.1,
    byNumber: { '-1': 'neg', '2': 'two' },
    byFlag: { false: 'no', true: 'yes' },
    spot: { x: 3 },
    note: 'n',
    moods: ['MOOD_SAD', 'MOOD_UNSPECIFIED'],
  };
  const bytes = all.toBinary(payload);
  t.is(Object.getPrototypeOf(bytes), Uint8Array.prototype);
  const input = Uint8Array.from(bytes);
  const decoded = all.fromBinary(input);
  input.fill(0);
  t.deepEqual(decoded, all.normalize(payload));
  t.is(Object.getPrototypeOf(decoded['data']), Uint8Array.prototype);
  t.deepEqual(all.toBinary(decoded), bytes);
});

test('fromBinary throws KVMESH_ERR_CODEC_DECODE for malformed input and values canonical form cannot hold', (t) => {
  const all = registry().get('t.kinds.All');
  const inputs = [
    Uint8Array.of(0x0a, 0x05, 0x61),
    Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f),
    Uint8Array.of(0x07),
    Uint8Array.of(0x38, 0x09),
    Uint8Array.of(0x28, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01),
    Uint8Array.of(0x0a, 0x01, 0xed, 0xa0, 0x80),
    'not bytes' as unknown as Uint8Array,
  ];
  for (const input of inputs)
    t.is(
      codeOf(() => all.fromBinary(input)),
      'KVMESH_ERR_CODEC_DECODE',
    );
  t.deepEqual(all.fromBinary(new Uint8Array(0)), DEFAULTS);
});

test('toJson writes bytes as base64 and non-finite numbers as strings; fromJson reads them back', (t) => {
  const all = registry().get('t.kinds.All');
  const payload = { data: Uint8Array.of(251, 255), ratio: -Infinity, approx: NaN, origin: { x: 1 } };
  const json = all.toJson(payload);
  t.like(json, { data: '+/8=', ratio: '-Infinity', approx: 'NaN', origin: { x: 1, y: 0 } });
  t.deepEqual(all.fromJson(JSON.parse(JSON.stringify(json))), all.normalize(payload));
  t.deepEqual(all.fromJson({ data: '-_8', big: '12' }), { ...DEFAULTS, data: Uint8Array.of(251, 255), big: 12 });
});

test('fromJson throws KVMESH_ERR_CODEC_DECODE, not INVALID, for values that do not fit the schema', (t) => {
  const all = registry().get('t.kinds.All');
  for (const json of [
    { data: 'not base64!' },
    { data: 'A' },
    { small: 'x' },
    { big: '1e3' },
    { mood: 'NOPE' },
    [],
    null,
  ]) {
    const err = thrown(() => all.fromJson(json));
    t.is(err.code, 'KVMESH_ERR_CODEC_DECODE');
  }
  t.regex(
    thrown(() => all.fromJson({ origin: { x: 'one' } })).message,
    /^cannot decode t\.kinds\.All: field 'origin\.x'/,
  );
});

test('field names become lowerCamelCase and proto2 explicit defaults are kept', (t) => {
  const messages = createMessageRegistry();
  messages.define(
    'syntax = "proto2"; package t.two; message Old { optional int32 max_count = 1 [default = 5]; optional bytes tag = 2 [default = "ab"]; }',
  );
  const old = messages.get('t.two.Old');
  t.deepEqual(old.normalize({}), { maxCount: 5, tag: new TextEncoder().encode('ab') });
  t.deepEqual(old.fromBinary(old.toBinary({ maxCount: 0 })), { maxCount: 0, tag: new TextEncoder().encode('ab') });
});
