import { KvError } from '../errors.js';
import type { JsonSchema } from '../plugin.js';
import { movementConfigProperties } from '../movement/settings.js';

/** Default of `kv.tombstoneGraceMs`: one day, as Cassandra's gc_grace is counted in days. */
export const DEFAULT_TOMBSTONE_GRACE_MS = 24 * 60 * 60 * 1000;

/** Defaults of the core `limits` and `rpc` sections, for configs that were not validated (tests). */
export const DEFAULT_MAX_KEY_BYTES = 1024;
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;
export const DEFAULT_RPC_TIMEOUT_MS = 2000;
/** Default of `kv.hedgeMs`: well above a loopback or LAN round trip, well below the rpc deadline. */
export const DEFAULT_HEDGE_MS = 50;

/** Values of `kv.readFrom`: which replicas a read asks first. */
export const READ_FROM = ['order', 'any'] as const;
export type ReadFrom = (typeof READ_FROM)[number];

/**
 * JSON Schema of the `kv` config section, for the host to pass to
 * `validateConfig` as `extensions: { kv: kvConfigSchema }`.
 */
export const kvConfigSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description: 'The KV service: versions, replicas, tombstones.',
  properties: {
    // Data movement (rebalancing, hints, anti-entropy): see movement/settings.ts.
    ...movementConfigProperties,
    tombstoneGraceMs: {
      type: 'integer',
      minimum: 0,
      default: DEFAULT_TOMBSTONE_GRACE_MS,
      description:
        'How long a delete is remembered (as a tombstone) before it is collected. A replica that is away longer than this can bring a deleted key back. Default one day.',
    },
    readRepair: {
      type: 'boolean',
      default: true,
      description: 'After a read, write the newest record back to the replicas that answered with an older one.',
    },
    hedgeMs: {
      type: 'integer',
      minimum: 0,
      default: DEFAULT_HEDGE_MS,
      description:
        'A read still missing answers after this many ms asks the next replica too, so one slow replica costs this delay rather than a full rpc.timeoutMs. 0 turns hedging off.',
    },
    readFrom: {
      enum: [...READ_FROM],
      default: 'order',
      description:
        'Which replicas a read asks when it needs fewer than all of them (this node first when it is one). "order": placement\'s order, the primary first. "any": reachable replicas in random order, so the reads of one key spread over all its replicas; safe when every write reaches every replica (writeQuorum all), else a read may miss the newest write until repair.',
    },
  },
};

/** What the KV service reads from the node config. */
export interface KvSettings {
  /** `limits.maxKeyBytes`: longest key in UTF-8 bytes. */
  readonly maxKeyBytes: number;
  /** `limits.maxValueBytes`: largest value in bytes. */
  readonly maxValueBytes: number;
  /** `rpc.timeoutMs`: how long a replica may take to answer before it counts as failed. */
  readonly timeoutMs: number;
  /** `kv.tombstoneGraceMs`. */
  readonly tombstoneGraceMs: number;
  /** `kv.readRepair`. */
  readonly readRepair: boolean;
  /** `kv.hedgeMs`: 0 = no hedging. */
  readonly hedgeMs: number;
  /** `kv.readFrom`. */
  readonly readFrom: ReadFrom;
}

/**
 * The KV settings of a node config, defaults filled for sections it lacks.
 * @throws KvError KVMESH_ERR_CONFIG_INVALID naming a present but malformed value.
 */
export function readKvSettings(config: Readonly<Record<string, unknown>>): KvSettings {
  const limits = section(config, 'limits');
  const rpc = section(config, 'rpc');
  const kv = section(config, 'kv');
  return Object.freeze({
    maxKeyBytes: integer(limits, 'limits', 'maxKeyBytes', DEFAULT_MAX_KEY_BYTES, 1),
    maxValueBytes: integer(limits, 'limits', 'maxValueBytes', DEFAULT_MAX_VALUE_BYTES, 0),
    timeoutMs: integer(rpc, 'rpc', 'timeoutMs', DEFAULT_RPC_TIMEOUT_MS, 1),
    tombstoneGraceMs: integer(kv, 'kv', 'tombstoneGraceMs', DEFAULT_TOMBSTONE_GRACE_MS, 0),
    readRepair: boolean(kv, 'kv', 'readRepair', true),
    hedgeMs: integer(kv, 'kv', 'hedgeMs', DEFAULT_HEDGE_MS, 0),
    readFrom: oneOf(kv, 'kv', 'readFrom', READ_FROM, 'order'),
  });
}

function section(config: Readonly<Record<string, unknown>>, name: string): Readonly<Record<string, unknown>> {
  const value = config[name];
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid(`/${name}`, 'an object', value);
  return value as Readonly<Record<string, unknown>>;
}

function integer(
  from: Readonly<Record<string, unknown>>,
  name: string,
  key: string,
  fallback: number,
  minimum: number,
): number {
  const value = from[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) {
    throw invalid(`/${name}/${key}`, `an integer >= ${minimum}`, value);
  }
  return value;
}

function boolean(from: Readonly<Record<string, unknown>>, name: string, key: string, fallback: boolean): boolean {
  const value = from[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalid(`/${name}/${key}`, 'a boolean', value);
  return value;
}

function oneOf<T extends string>(
  from: Readonly<Record<string, unknown>>,
  name: string,
  key: string,
  allowed: readonly T[],
  fallback: T,
): T {
  const value = from[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalid(`/${name}/${key}`, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, value);
  }
  return value as T;
}

function invalid(path: string, expected: string, found: unknown): KvError {
  return new KvError('KVMESH_ERR_CONFIG_INVALID', `${path} must be ${expected} (found ${JSON.stringify(found)})`, {
    details: { path },
  });
}
