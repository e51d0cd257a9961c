import protobuf from 'protobufjs';
import { KvError } from '../errors.js';
import { BAIL, fastCanonical } from './canonical-fast.js';
import type { FastHooks } from './canonical-fast.js';

/**
 * How deep messages may nest. Lower than protobufjs's own limit (100), so
 * every message that normalizes also encodes and decodes in every codec.
 */
export const MAX_MESSAGE_DEPTH = 64;

/** Where a value comes from: the canonical form (or close to it), or the JSON-safe form. */
export type ValueForm = 'canonical' | 'json';

type ProblemCode = 'KVMESH_ERR_MESSAGE_INVALID' | 'KVMESH_ERR_CODEC_DECODE';

interface Walk {
  readonly form: ValueForm;
  readonly code: ProblemCode;
  /** The message type the walk began at; its name is only looked up for a failure (protobufjs builds it each time). */
  readonly type: protobuf.Type;
  /**
   * Where the walk is: field names, list indexes and map keys, pushed on the
   * way down and popped on the way up, so a field's path is built only for a
   * failure rather than for every field of every message.
   */
  readonly at: Segment[];
}

type Segment = string | number | { readonly key: string };

const INT32: readonly [number, number] = [-0x80000000, 0x7fffffff];
const UINT32: readonly [number, number] = [0, 0xffffffff];
// 64-bit integers are numbers in canonical form, so only the exactly representable ones are accepted.
const INT64: readonly [number, number] = [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
const UINT64: readonly [number, number] = [0, Number.MAX_SAFE_INTEGER];

const INTEGER_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  int32: INT32,
  sint32: INT32,
  sfixed32: INT32,
  uint32: UINT32,
  fixed32: UINT32,
  int64: INT64,
  sint64: INT64,
  sfixed64: INT64,
  uint64: UINT64,
  fixed64: UINT64,
};

// In a `u` regexp a surrogate range matches only unpaired surrogates, which UTF-8 cannot carry.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const DECIMAL = /^-?\d+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]*|[A-Za-z0-9_-]*)={0,2}$/;
const NON_FINITE: Readonly<Record<string, number>> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

/**
 * Converts `value` to the canonical form of message `type`: every field
 * present in declaration order (oneof members only when set, unset message
 * fields as null), 64-bit integers as numbers, enums as names, bytes as plain
 * Uint8Array copies, map keys in canonical text and sorted. Keys that are not
 * fields are dropped, as protobuf drops unknown fields.
 * @throws KvError with `code` naming the first bad field.
 */
export function toCanonical(
  type: protobuf.Type,
  value: unknown,
  form: ValueForm,
  code: ProblemCode,
): Record<string, unknown> {
  // Messages valid as they stand, the common case, take the planned path; the
  // walk below converts the rest and names the first problem.
  if (form === 'canonical') {
    const fast = fastCanonical(type, value, FAST_HOOKS);
    if (fast !== BAIL) return fast;
  }
  return fullCanonical(type, value, form, code);
}

/** `toCanonical` by the full walk alone (the fast path's tests compare the two). */
export function fullCanonical(
  type: protobuf.Type,
  value: unknown,
  form: ValueForm,
  code: ProblemCode,
): Record<string, unknown> {
  return convertMessage(type, value, { form, code, type, at: [] }, 1);
}

export const FAST_HOOKS: FastHooks = {
  maxDepth: MAX_MESSAGE_DEPTH,
  integerRanges: INTEGER_RANGES,
  loneSurrogate: LONE_SURROGATE,
  defaultOf: (field) => defaultOf(field, hookWalk(field)),
  convertMap: (field, raw, depth) => convertMap(field, raw, hookWalk(field), depth),
};

/** A walk for the fast path's hooks: what it throws only sends the message to the full walk. */
function hookWalk(field: protobuf.FieldBase): Walk {
  return { form: 'canonical', code: 'KVMESH_ERR_MESSAGE_INVALID', type: field.parent as protobuf.Type, at: [] };
}

/** The JSON-safe form of a canonical value: bytes as base64, non-finite floats as strings. */
export function canonicalToJson(type: protobuf.Type, value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    if (!Object.hasOwn(value, field.name)) continue;
    const v = value[field.name];
    if (field.map) {
      const map: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v as Record<string, unknown>)) setOwn(map, k, valueToJson(field, item));
      out[field.name] = map;
    } else if (field.repeated) {
      out[field.name] = (v as unknown[]).map((item) => valueToJson(field, item));
    } else {
      out[field.name] = valueToJson(field, v);
    }
  }
  return out;
}

export function nameOf(type: protobuf.ReflectionObject): string {
  return type.fullName.startsWith('.') ? type.fullName.slice(1) : type.fullName;
}

function valueToJson(field: protobuf.FieldBase, v: unknown): unknown {
  if (v === null) return null;
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return canonicalToJson(resolved, v as Record<string, unknown>);
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return v;
}

function convertMessage(type: protobuf.Type, value: unknown, walk: Walk, depth: number): Record<string, unknown> {
  if (depth > MAX_MESSAGE_DEPTH) fail(walk, `nests messages deeper than ${MAX_MESSAGE_DEPTH} levels`);
  if (!isPlainObject(value)) fail(walk, `must be an object (message ${nameOf(type)}), found ${describe(value)}`);
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const raw = Object.hasOwn(value, field.name) ? value[field.name] : undefined;
    walk.at.push(field.name);
    if (field.map) {
      out[field.name] = convertMap(field as unknown as protobuf.MapField, raw, walk, depth);
    } else if (field.repeated) {
      out[field.name] = convertList(field, raw, walk, depth);
    } else if (field.partOf) {
      if (raw !== undefined && raw !== null) out[field.name] = convertSingle(field, raw, walk, depth);
    } else if (raw === undefined || raw === null) {
      out[field.name] = defaultOf(field, walk);
    } else {
      out[field.name] = convertSingle(field, raw, walk, depth);
    }
    walk.at.pop();
  }
  for (const oneof of type.oneofsArray) {
    const set = oneof.fieldsArray.filter((f) => Object.hasOwn(out, f.name)).map((f) => `'${f.name}'`);
    if (set.length > 1) {
      fail(walk, `sets ${set.join(' and ')}, which share oneof '${oneof.name}': set at most one`);
    }
  }
  return out;
}

function convertList(field: protobuf.Field, raw: unknown, walk: Walk, depth: number): unknown[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) fail(walk, `must be an array (repeated ${field.type}), found ${describe(raw)}`);
  const out = new Array<unknown>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const item: unknown = raw[i];
    walk.at.push(i);
    if (item === undefined || item === null) fail(walk, 'must not be null: repeated fields hold values only');
    out[i] = convertSingle(field, item, walk, depth);
    walk.at.pop();
  }
  return out;
}

function convertMap(field: protobuf.MapField, raw: unknown, walk: Walk, depth: number): Record<string, unknown> {
  if (raw === undefined || raw === null) return {};
  if (!isPlainObject(raw)) {
    fail(walk, `must be an object (map<${field.keyType}, ${field.type}>), found ${describe(raw)}`);
  }
  const entries: [string, unknown][] = [];
  const seen = new Set<string>();
  for (const key of Object.keys(raw)) {
    walk.at.push({ key });
    const canonicalKey = convertMapKey(field.keyType, key, walk);
    if (seen.has(canonicalKey)) fail(walk, `is the same key as ${JSON.stringify(canonicalKey)}`);
    seen.add(canonicalKey);
    const item = raw[key];
    if (item === undefined || item === null) fail(walk, 'must not be null: map entries hold values only');
    entries.push([canonicalKey, convertSingle(field, item, walk, depth)]);
    walk.at.pop();
  }
  const numeric = Object.hasOwn(INTEGER_RANGES, field.keyType);
  entries.sort(([a], [b]) => (numeric ? Number(a) - Number(b) : a < b ? -1 : a > b ? 1 : 0));
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) setOwn(out, k, v);
  return out;
}

function convertMapKey(keyType: string, key: string, walk: Walk): string {
  if (keyType === 'string') {
    if (LONE_SURROGATE.test(key)) fail(walk, 'has a key that is not well-formed Unicode (a lone surrogate)');
    return key;
  }
  if (keyType === 'bool') {
    if (key !== 'true' && key !== 'false') fail(walk, `must have key "true" or "false" (map<bool, ...>)`);
    return key;
  }
  const range = INTEGER_RANGES[keyType];
  const n = DECIMAL.test(key) ? Number(key) : NaN;
  if (range === undefined || !(n >= range[0] && n <= range[1])) {
    fail(walk, `must have a decimal integer key from ${range?.[0]} to ${range?.[1]} (map<${keyType}, ...>)`);
  }
  return String(n === 0 ? 0 : n);
}

function convertSingle(field: protobuf.FieldBase, raw: unknown, walk: Walk, depth: number): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return convertMessage(resolved, raw, walk, depth + 1);
  if (resolved instanceof protobuf.Enum) return convertEnum(resolved, raw, walk);
  return convertScalar(field.type, raw, walk);
}

function convertEnum(type: protobuf.Enum, raw: unknown, walk: Walk): string {
  let id: number | undefined;
  if (typeof raw === 'string' && Object.hasOwn(type.values, raw)) id = type.values[raw];
  else if (typeof raw === 'number' && Object.hasOwn(type.valuesById, raw)) id = raw;
  const name = id === undefined ? undefined : type.valuesById[id];
  if (name === undefined) {
    fail(walk, `must be one of ${Object.keys(type.values).join(', ')} (enum ${nameOf(type)}), found ${describe(raw)}`);
  }
  return name;
}

function convertScalar(scalar: string, raw: unknown, walk: Walk): unknown {
  switch (scalar) {
    case 'string':
      if (typeof raw !== 'string') fail(walk, `must be a string, found ${describe(raw)}`);
      if (LONE_SURROGATE.test(raw)) fail(walk, 'must be well-formed Unicode text (it has a lone surrogate)');
      return raw;
    case 'bytes':
      return convertBytes(raw, walk);
    case 'bool':
      if (typeof raw !== 'boolean') fail(walk, `must be a boolean, found ${describe(raw)}`);
      return raw;
    case 'double':
      return convertFloat(raw, walk);
    case 'float': {
      const n = Math.fround(convertFloat(raw, walk));
      return n === 0 ? 0 : n;
    }
    default: {
      const range = INTEGER_RANGES[scalar];
      if (range === undefined) fail(walk, `has an unsupported type ${scalar}`);
      return convertInteger(raw, range, walk);
    }
  }
}

function convertBytes(raw: unknown, walk: Walk): Uint8Array {
  // Always a copy, and always a plain Uint8Array (not a Buffer), so that decoded
  // messages never alias the input and compare equal across codecs.
  if (raw instanceof Uint8Array) return new Uint8Array(raw);
  if (walk.form === 'json') {
    if (typeof raw === 'string' && BASE64.test(raw) && raw.replace(/=+$/, '').length % 4 !== 1) {
      return new Uint8Array(Buffer.from(raw, 'base64'));
    }
    fail(walk, `must be base64 text, found ${describe(raw)}`);
  }
  fail(walk, `must be a Uint8Array, found ${describe(raw)}`);
}

function convertFloat(raw: unknown, walk: Walk): number {
  let n: number | undefined;
  if (typeof raw === 'number') n = raw;
  else if (walk.form === 'json' && typeof raw === 'string' && Object.hasOwn(NON_FINITE, raw)) n = NON_FINITE[raw];
  if (n === undefined) fail(walk, `must be a number, found ${describe(raw)}`);
  // Negative zero does not survive msgpack or JSON, so canonical form has only one zero.
  return n === 0 ? 0 : n;
}

function convertInteger(raw: unknown, [min, max]: readonly [number, number], walk: Walk): number {
  let n = NaN;
  if (typeof raw === 'number') n = raw;
  else if (typeof raw === 'bigint') n = Number(raw);
  else if (walk.form === 'json' && typeof raw === 'string' && DECIMAL.test(raw)) n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    fail(walk, `must be an integer from ${min} to ${max}, found ${describe(raw)}`);
  }
  return n === 0 ? 0 : n;
}

function defaultOf(field: protobuf.Field, walk: Walk): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return null;
  let value: unknown = field.typeDefault;
  // protobufjs keeps the bytes default as an empty array, or a Buffer for an explicit proto2 default.
  if (field.type === 'bytes') return value instanceof Uint8Array ? new Uint8Array(value) : new Uint8Array(0);
  // 64-bit defaults are Long objects.
  if (typeof value === 'object' && value !== null && 'toNumber' in value)
    value = (value as { toNumber(): number }).toNumber();
  if (resolved instanceof protobuf.Enum) return convertEnum(resolved, value, walk);
  return convertScalar(field.type, value, { ...walk, form: 'canonical' });
}

function fail(walk: Walk, problem: string): never {
  const path = pathOf(walk.at);
  const where = path === '' ? 'the message' : `field '${path}'`;
  const typeName = nameOf(walk.type);
  const prefix = walk.code === 'KVMESH_ERR_CODEC_DECODE' ? `cannot decode ${typeName}` : typeName;
  throw new KvError(walk.code, `${prefix}: ${where} ${problem}`, {
    details: { type: typeName, field: path },
  });
}

/** `record.version.node`, `items[2]`, `meta["a"]`: the segments as the path a message names. */
function pathOf(segments: readonly Segment[]): string {
  let path = '';
  for (const segment of segments) {
    if (typeof segment === 'number') path += `[${segment}]`;
    else if (typeof segment === 'object') path += `[${JSON.stringify(segment.key)}]`;
    else path += path === '' ? segment : `.${segment}`;
  }
  return path;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

// A map key "__proto__" must become an own property, not the object's prototype.
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return `${value.constructor.name} of ${value.length} bytes`;
  if (typeof value === 'object') {
    const name: unknown = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor
      ?.name;
    return typeof name === 'string' ? `an object (${name})` : 'an object';
  }
  if (typeof value === 'string')
    return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'bigint') return `bigint ${value}`;
  return `${typeof value} ${String(value)}`;
}
