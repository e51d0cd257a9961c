import protobuf from 'protobufjs';
import type { MessageRegistry, MessageSchema } from '../contracts/rpc.js';
import { KvError } from '../errors.js';
import { canonicalToJson, nameOf, toCanonical } from './canonical.js';
import { defineCoreMessages } from './core-messages.js';

// Field names become lowerCamelCase (`replica_set` → `replicaSet`), as in proto3 JSON.
const PARSE_OPTIONS: protobuf.IParseOptions = { keepCase: false };

const TO_OBJECT_OPTIONS: protobuf.IConversionOptions = {
  defaults: true,
  arrays: true,
  objects: true,
  longs: Number,
  enums: String,
};

/**
 * A MessageRegistry backed by one protobufjs Root. Field names are
 * lowerCamelCase; payloads are checked and converted to canonical form (see
 * `Message` in contracts/codec.ts). It starts with the core types of
 * `proto/kvmesh.proto` (`kvmesh.core.Error`, `Empty`, `Envelope`).
 */
export function createMessageRegistry(): MessageRegistry {
  const registry = new ProtoMessageRegistry();
  defineCoreMessages(registry);
  return registry;
}

class ProtoMessageRegistry implements MessageRegistry {
  readonly #root = new protobuf.Root();
  readonly #schemas = new Map<string, ProtoMessageSchema>();
  /** JSON of each top-level declaration as first defined, to tell a repeat from a conflict. */
  readonly #definitions = new Map<string, string>();
  readonly #sources = new Map<string, readonly string[]>();

  define(protoSource: string): string[] {
    if (typeof protoSource !== 'string') {
      throw new KvError('KVMESH_ERR_MESSAGE_SCHEMA', 'a .proto source must be a string');
    }
    const known = this.#sources.get(protoSource);
    if (known !== undefined) return [...known];

    const scratch = new protobuf.Root();
    try {
      protobuf.parse(protoSource, scratch, PARSE_OPTIONS);
    } catch (err) {
      throw new KvError('KVMESH_ERR_MESSAGE_SCHEMA', `cannot parse .proto source: ${messageOf(err)}`, { cause: err });
    }

    const declared: string[] = [];
    const adopt: [protobuf.ReflectionObject, string][] = [];
    for (const object of declarations(scratch)) {
      const name = nameOf(object);
      const definition = JSON.stringify([object.constructor.name, object.toJSON()]);
      const existing = this.#definitions.get(name);
      if (existing === undefined) {
        if (this.#find(name) !== undefined) throw duplicate(name);
        adopt.push([object, definition]);
      } else if (existing !== definition) {
        throw duplicate(name);
      }
      collectMessageNames(object, declared);
    }
    this.#adopt(adopt);

    for (const [object] of adopt) {
      for (const type of messageTypes(object)) this.#schemas.set(nameOf(type), new ProtoMessageSchema(type));
    }
    declared.sort();
    this.#sources.set(protoSource, declared);
    return [...declared];
  }

  get(type: string): MessageSchema {
    const schema = typeof type === 'string' ? this.#schemas.get(type) : undefined;
    if (schema === undefined) {
      const shown = typeof type === 'string' ? JSON.stringify(type.slice(0, 120)) : typeof type;
      throw new KvError(
        'KVMESH_ERR_MESSAGE_UNKNOWN',
        `message type ${shown} is not registered; the plugin that declares it is missing on this node`,
      );
    }
    return schema;
  }

  has(type: string): boolean {
    return this.#schemas.has(type);
  }

  names(): string[] {
    return [...this.#schemas.keys()].sort();
  }

  /** Moves parsed declarations into the registry's root; all or nothing. */
  #adopt(objects: readonly [protobuf.ReflectionObject, string][]): void {
    const moved: protobuf.ReflectionObject[] = [];
    try {
      for (const [object] of objects) {
        const from = object.parent as protobuf.Namespace;
        const namespace = nameOf(from);
        from.remove(object);
        (namespace === '' ? this.#root : this.#root.define(namespace)).add(object);
        moved.push(object);
      }
      this.#root.resolveAll();
    } catch (err) {
      for (const object of moved) object.parent?.remove(object);
      const text = messageOf(err);
      if (/duplicate name/.test(text)) {
        throw new KvError('KVMESH_ERR_MESSAGE_DUPLICATE', `a name of this .proto source is taken: ${text}`, {
          cause: err,
        });
      }
      throw new KvError('KVMESH_ERR_MESSAGE_SCHEMA', `invalid .proto source: ${text}`, { cause: err });
    }
    for (const [object, definition] of objects) this.#definitions.set(nameOf(object), definition);
  }

  #find(name: string): protobuf.ReflectionObject | undefined {
    let at: protobuf.ReflectionObject = this.#root;
    for (const part of name.split('.')) {
      const nested = at instanceof protobuf.Namespace ? at.nested : undefined;
      if (nested === undefined || !Object.hasOwn(nested, part)) return undefined;
      at = nested[part] as protobuf.ReflectionObject;
    }
    return at;
  }
}

class ProtoMessageSchema implements MessageSchema {
  readonly name: string;
  readonly #type: protobuf.Type;

  constructor(type: protobuf.Type) {
    this.name = nameOf(type);
    this.#type = type;
  }

  normalize(value: unknown): Record<string, unknown> {
    return toCanonical(this.#type, value, 'canonical', 'KVMESH_ERR_MESSAGE_INVALID');
  }

  toBinary(value: unknown): Uint8Array {
    const canonical = this.normalize(value);
    let bytes: Uint8Array;
    try {
      bytes = this.#type.encode(this.#type.fromObject(canonical)).finish();
    } catch (err) {
      throw new KvError('KVMESH_ERR_CODEC_ENCODE', `cannot encode ${this.name} as protobuf: ${messageOf(err)}`, {
        cause: err,
      });
    }
    // A plain copy: protobufjs hands out Buffers that may share a pooled slab.
    return new Uint8Array(bytes);
  }

  fromBinary(bytes: Uint8Array): Record<string, unknown> {
    if (!(bytes instanceof Uint8Array)) {
      throw new KvError('KVMESH_ERR_CODEC_DECODE', `cannot decode ${this.name}: input is not a Uint8Array`);
    }
    try {
      const object = this.#type.toObject(this.#type.decode(bytes), TO_OBJECT_OPTIONS);
      return toCanonical(this.#type, object, 'canonical', 'KVMESH_ERR_CODEC_DECODE');
    } catch (err) {
      throw asDecodeError(err, `cannot decode ${this.name} from protobuf`);
    }
  }

  toJson(value: unknown): Record<string, unknown> {
    return canonicalToJson(this.#type, this.normalize(value));
  }

  fromJson(json: unknown): Record<string, unknown> {
    try {
      return toCanonical(this.#type, json, 'json', 'KVMESH_ERR_CODEC_DECODE');
    } catch (err) {
      throw asDecodeError(err, `cannot decode ${this.name} from JSON`);
    }
  }
}

/** Top-level declarations (messages, enums, services, extensions) below the packages of a parsed root. */
function* declarations(namespace: protobuf.Namespace): Generator<protobuf.ReflectionObject> {
  for (const object of namespace.nestedArray) {
    if (object.constructor === protobuf.Namespace) yield* declarations(object as protobuf.Namespace);
    else yield object;
  }
}

function* messageTypes(object: protobuf.ReflectionObject): Generator<protobuf.Type> {
  if (!(object instanceof protobuf.Type)) return;
  yield object;
  for (const nested of object.nestedArray) yield* messageTypes(nested);
}

function collectMessageNames(object: protobuf.ReflectionObject, into: string[]): void {
  for (const type of messageTypes(object)) into.push(nameOf(type));
}

function duplicate(name: string): KvError {
  return new KvError(
    'KVMESH_ERR_MESSAGE_DUPLICATE',
    `${name} is already registered with a different definition; give one of them its own package name`,
    { details: { type: name } },
  );
}

function asDecodeError(err: unknown, context: string): KvError {
  if (err instanceof KvError && err.code === 'KVMESH_ERR_CODEC_DECODE') return err;
  return new KvError('KVMESH_ERR_CODEC_DECODE', `${context}: ${messageOf(err)}`, { cause: err });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
