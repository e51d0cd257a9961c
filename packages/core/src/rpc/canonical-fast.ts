import protobuf from 'protobufjs';

/** What `fastCanonical` returns for anything it does not convert: the full walk decides (and names the problem). */
export const BAIL: unique symbol = Symbol('bail');

/** What the fast path takes from the full walk, so both convert alike. */
export interface FastHooks {
  readonly maxDepth: number;
  readonly integerRanges: Readonly<Record<string, readonly [number, number]>>;
  readonly loneSurrogate: RegExp;
  /** The canonical value of an absent field (the same for every message). */
  defaultOf(field: protobuf.Field): unknown;
  /** A map field's canonical value; throws on any problem. */
  convertMap(field: protobuf.MapField, raw: unknown, depth: number): Record<string, unknown>;
}

const enum Kind {
  Message,
  Enum,
  String,
  Bytes,
  Bool,
  Double,
  Float,
  Integer,
  Unsupported,
}

interface FieldPlan {
  readonly field: protobuf.Field;
  readonly name: string;
  readonly kind: Kind;
  readonly map: boolean;
  readonly list: boolean;
  /** A member of a oneof: present only when set. */
  readonly member: boolean;
  readonly message: protobuf.Type | undefined;
  readonly enumType: protobuf.Enum | undefined;
  readonly range: readonly [number, number] | undefined;
  /** The canonical default of an absent singular field (bytes: copied for every message). */
  readonly absent: unknown;
}

interface TypePlan {
  readonly fields: readonly FieldPlan[];
  /** Per oneof, the indexes of its members in `fields`. */
  readonly oneofs: readonly (readonly number[])[];
}

const plans = new WeakMap<protobuf.Type, TypePlan>();

/**
 * The canonical form of `value` as the full walk in canonical.ts computes it
 * for the canonical form, for a message that is valid as it stands, or BAIL
 * at the first thing that is not plainly valid: a field of the wrong type, a
 * value out of range, a oneof set twice, nesting too deep. Each message type
 * is planned once (its fields' kinds, ranges and defaults), so a conversion
 * is one loop over the fields with no path kept: a failure is left to the
 * full walk, which names the field.
 */
export function fastCanonical(
  type: protobuf.Type,
  value: unknown,
  hooks: FastHooks,
): Record<string, unknown> | typeof BAIL {
  return convertMessage(planOf(type, hooks), value, hooks, 1);
}

function planOf(type: protobuf.Type, hooks: FastHooks): TypePlan {
  let plan = plans.get(type);
  if (plan === undefined) {
    const fields = type.fieldsArray.map((field) => planField(field, hooks));
    const oneofs = type.oneofsArray.map((oneof) => oneof.fieldsArray.map((f) => type.fieldsArray.indexOf(f)));
    plan = { fields, oneofs };
    plans.set(type, plan);
  }
  return plan;
}

function planField(field: protobuf.Field, hooks: FastHooks): FieldPlan {
  const resolved = field.resolvedType;
  let kind: Kind;
  if (resolved instanceof protobuf.Type) kind = Kind.Message;
  else if (resolved instanceof protobuf.Enum) kind = Kind.Enum;
  else if (field.type === 'string') kind = Kind.String;
  else if (field.type === 'bytes') kind = Kind.Bytes;
  else if (field.type === 'bool') kind = Kind.Bool;
  else if (field.type === 'double') kind = Kind.Double;
  else if (field.type === 'float') kind = Kind.Float;
  else if (Object.hasOwn(hooks.integerRanges, field.type)) kind = Kind.Integer;
  else kind = Kind.Unsupported;
  const singular = !field.map && !field.repeated && !field.partOf;
  return {
    field,
    name: field.name,
    kind,
    map: field.map,
    list: !field.map && field.repeated,
    member: !field.map && !field.repeated && field.partOf !== null && field.partOf !== undefined,
    message: resolved instanceof protobuf.Type ? resolved : undefined,
    enumType: resolved instanceof protobuf.Enum ? resolved : undefined,
    range: hooks.integerRanges[field.type],
    absent: singular && kind !== Kind.Unsupported ? hooks.defaultOf(field) : undefined,
  };
}

function convertMessage(
  plan: TypePlan,
  value: unknown,
  hooks: FastHooks,
  depth: number,
): Record<string, unknown> | typeof BAIL {
  if (depth > hooks.maxDepth || typeof value !== 'object' || value === null) return BAIL;
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return BAIL;
  const source = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of plan.fields) {
    const raw = Object.hasOwn(source, f.name) ? source[f.name] : undefined;
    let converted: unknown;
    if (f.map) {
      if (raw === undefined || raw === null) converted = {};
      else {
        try {
          converted = hooks.convertMap(f.field as unknown as protobuf.MapField, raw, depth);
        } catch {
          return BAIL;
        }
      }
    } else if (f.list) {
      if (raw === undefined || raw === null) converted = [];
      else {
        if (!Array.isArray(raw)) return BAIL;
        const list = new Array<unknown>(raw.length);
        for (let i = 0; i < raw.length; i++) {
          const item: unknown = raw[i];
          if (item === undefined || item === null) return BAIL;
          const one = convertSingle(f, item, hooks, depth);
          if (one === BAIL) return BAIL;
          list[i] = one;
        }
        converted = list;
      }
    } else if (raw === undefined || raw === null) {
      if (f.member) continue;
      if (f.kind === Kind.Unsupported) return BAIL;
      converted = f.kind === Kind.Bytes ? new Uint8Array(f.absent as Uint8Array) : f.absent;
    } else {
      converted = convertSingle(f, raw, hooks, depth);
      if (converted === BAIL) return BAIL;
    }
    out[f.name] = converted;
  }
  for (const members of plan.oneofs) {
    let set = 0;
    for (const i of members) if (Object.hasOwn(out, plan.fields[i]!.name)) set++;
    if (set > 1) return BAIL;
  }
  return out;
}

function convertSingle(f: FieldPlan, raw: unknown, hooks: FastHooks, depth: number): unknown {
  switch (f.kind) {
    case Kind.Message:
      return convertMessage(planOf(f.message!, hooks), raw, hooks, depth + 1);
    case Kind.Enum: {
      const type = f.enumType!;
      let id: number | undefined;
      if (typeof raw === 'string' && Object.hasOwn(type.values, raw)) id = type.values[raw];
      else if (typeof raw === 'number' && Object.hasOwn(type.valuesById, raw)) id = raw;
      const name = id === undefined ? undefined : type.valuesById[id];
      return name === undefined ? BAIL : name;
    }
    case Kind.String:
      return typeof raw === 'string' && !hooks.loneSurrogate.test(raw) ? raw : BAIL;
    case Kind.Bytes:
      // A copy, as the full walk makes: a plain Uint8Array that aliases nothing.
      return raw instanceof Uint8Array ? new Uint8Array(raw) : BAIL;
    case Kind.Bool:
      return typeof raw === 'boolean' ? raw : BAIL;
    case Kind.Double:
      if (typeof raw !== 'number') return BAIL;
      return raw === 0 ? 0 : raw;
    case Kind.Float: {
      if (typeof raw !== 'number') return BAIL;
      const n = Math.fround(raw);
      return n === 0 ? 0 : n;
    }
    case Kind.Integer: {
      const n = typeof raw === 'number' ? raw : typeof raw === 'bigint' ? Number(raw) : NaN;
      const [min, max] = f.range!;
      if (!Number.isInteger(n) || n < min || n > max) return BAIL;
      return n === 0 ? 0 : n;
    }
    default:
      return BAIL;
  }
}
