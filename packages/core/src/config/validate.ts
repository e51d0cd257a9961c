import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { STRATEGY_FAMILIES } from '../plugin.js';
import type { JsonSchema } from '../plugin.js';
import { unknownPluginMessage } from './catalog.js';
import type { PluginCatalog } from './catalog.js';
import { configError } from './problems.js';
import type { ConfigProblem } from './problems.js';
import { FACADES_SECTION, coreConfigSchema } from './schema.js';
import { escapePointer } from './env.js';
import { applyPluginDefaults, withOrigin } from './plugin-defaults.js';
import { applyOverrides } from './pointer.js';
import { crossCheckProblems } from './cross-checks.js';

/** A family's chosen plugin and its validated, defaulted options. */
export interface PluginChoice {
  readonly name: string;
  readonly options: Readonly<Record<string, any>>;
}

/** A validated, defaulted, frozen node configuration. */
export interface KvmeshConfig {
  readonly node: { readonly id: string; readonly address: string; readonly role: string; readonly dataDir: string };
  readonly join: readonly string[];
  readonly plugins: readonly string[];
  readonly rpc: { readonly timeoutMs: number };
  readonly limits: { readonly maxKeyBytes: number; readonly maxValueBytes: number };
  /** Cluster security; `secrets` as resolved at load (from the file, secretFile or KVMESH_CLUSTER_SECRET). */
  readonly cluster: {
    readonly secrets?: readonly unknown[];
    readonly secretFile?: string;
    readonly adminToken?: string;
    readonly replayWindowMs: number;
    readonly maxNonces: number;
    readonly encrypt: boolean;
  };
  readonly codec: PluginChoice;
  readonly transport: PluginChoice;
  readonly storage: PluginChoice;
  readonly membership?: PluginChoice;
  readonly placement?: PluginChoice;
  /** Client APIs besides the native one, in the order they are mounted; each name at most once. */
  readonly facades: readonly PluginChoice[];
  /** Sections added by the host (server) through `extensions`. */
  readonly [section: string]: unknown;
}

export interface ValidateOptions {
  /** File name used in messages. */
  readonly file?: string;
  /** Extra top-level sections the host understands, with their schemas. */
  readonly extensions?: Readonly<Record<string, JsonSchema>>;
  /**
   * Values that win over the file and over what plugins map from their
   * options (command-line flags), by JSON Pointer: `{ '/node/id': 'n2' }`.
   * A function is given the value there (or undefined) and answers the new
   * one: `--port` keeps the host of `node.address`. Undefined values are skipped.
   */
  readonly overrides?: Readonly<Record<string, unknown>>;
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
const compiled = new WeakMap<JsonSchema, ValidateFunction>();

function compile(schema: JsonSchema): ValidateFunction {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = ajv.compile(schema);
    compiled.set(schema, fn);
  }
  return fn;
}

/**
 * Fills what plugins map from their options (`configDefaults`), applies the
 * overrides, validates the result against the core schema and the options
 * schema of every chosen plugin, fills defaults, runs the cross-checks
 * (ports in range, each plugin's `checkConfig`) and freezes it. Every problem
 * is collected before anything is thrown, so one run shows them all.
 * @throws KvError KVMESH_ERR_CONFIG_INVALID with `details.problems`.
 */
export function validateConfig(raw: unknown, registry: PluginCatalog, options: ValidateOptions = {}): KvmeshConfig {
  const file = options.file ?? '<config>';
  const config = structuredClone(raw) as Record<string, any>;
  const problems: ConfigProblem[] = [];
  const filled =
    typeof config === 'object' && config !== null && !Array.isArray(config)
      ? applyPluginDefaults(config, registry, problems)
      : new Map<string, string>();
  applyOverrides(config, options.overrides ?? {});
  const core = compile(coreSchemaFor(options.extensions));
  if (!core(config)) problems.push(...(core.errors ?? []).map((e) => toProblem(e, config)));

  if (typeof config === 'object' && config !== null) {
    for (const family of STRATEGY_FAMILIES) {
      const section = config[family] as { name?: unknown; options?: unknown } | undefined;
      if (typeof section?.name !== 'string') continue;
      if (!registry.has(family, section.name)) {
        problems.push({
          path: `/${family}/name`,
          message: unknownPluginMessage(family, section.name, registry.names(family)),
        });
        continue;
      }
      if (typeof section.options !== 'object' || section.options === null) continue;
      const validate = compile(registry.get(family, section.name).optionsSchema);
      if (!validate(section.options)) {
        problems.push(...(validate.errors ?? []).map((e) => toProblem(e, section.options, `/${family}/options`)));
      }
    }
    problems.push(...facadeProblems(config[FACADES_SECTION], registry));
  }
  if (problems.length === 0) {
    fillNodeDefaults(config);
    problems.push(...crossCheckProblems(config, registry));
  }
  if (problems.length > 0) throw configError(file, dedupe(problems.map((p) => withOrigin(p, filled))));
  return deepFreeze(config) as unknown as KvmeshConfig;
}

/** Names known and listed once; each entry's options against its plugin's schema. */
function facadeProblems(entries: unknown, registry: PluginCatalog): ConfigProblem[] {
  if (!Array.isArray(entries)) return [];
  const problems: ConfigProblem[] = [];
  const seen = new Map<string, number>();
  entries.forEach((entry: { name?: unknown; options?: unknown } | undefined, i) => {
    const path = `/${FACADES_SECTION}/${i}`;
    if (typeof entry?.name !== 'string') return;
    if (!registry.has('facade', entry.name)) {
      problems.push({
        path: `${path}/name`,
        message: unknownPluginMessage('facade', entry.name, registry.names('facade')),
      });
      return;
    }
    const first = seen.get(entry.name);
    if (first !== undefined) {
      problems.push({
        path: `${path}/name`,
        message: `facade '${entry.name}' is already listed at /${FACADES_SECTION}/${first}; a node mounts each facade once`,
      });
      return;
    }
    seen.set(entry.name, i);
    if (typeof entry.options !== 'object' || entry.options === null) return;
    const validate = compile(registry.get('facade', entry.name).optionsSchema);
    if (!validate(entry.options)) {
      problems.push(...(validate.errors ?? []).map((e) => toProblem(e, entry.options, `${path}/options`)));
    }
  });
  return problems;
}

const schemaCache = new Map<string, JsonSchema>();

function coreSchemaFor(extensions: Readonly<Record<string, JsonSchema>> = {}): JsonSchema {
  const key = JSON.stringify(extensions);
  let schema = schemaCache.get(key);
  if (!schema) {
    schema = coreConfigSchema(extensions);
    schemaCache.set(key, schema);
  }
  return schema;
}

function fillNodeDefaults(config: Record<string, any>): void {
  const node = config['node'] as { id?: string; address: string; dataDir?: string };
  node.id ??= node.address;
  node.dataDir ??= `./data/${node.id.replace(/[^A-Za-z0-9._-]/g, '_')}`;
}

function toProblem(error: ErrorObject, root: unknown, prefix = ''): ConfigProblem {
  const path = prefix + error.instancePath;
  const params = error.params as Record<string, any>;
  switch (error.keyword) {
    case 'additionalProperties':
      return { path: `${path}/${escapePointer(String(params['additionalProperty']))}`, message: 'unknown key' };
    case 'required':
      return { path: `${path}/${escapePointer(String(params['missingProperty']))}`, message: 'is required' };
    case 'enum':
      return {
        path: path || '/',
        message: `must be one of ${(params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')} (found ${found(root, error.instancePath)})`,
      };
    default:
      return {
        path: path || '/',
        message: `${error.message ?? 'is invalid'} (found ${found(root, error.instancePath)})`,
      };
  }
}

function found(root: unknown, pointer: string): string {
  let value: unknown = root;
  for (const segment of pointer.split('/').slice(1)) {
    const key = segment.replace(/~1/g, '/').replace(/~0/g, '~');
    value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
  }
  const text = JSON.stringify(value) ?? 'nothing';
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path}\u0000${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
