import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { KvError } from '../errors.js';
import type { JsonSchema } from '../plugin.js';
import type { PluginCatalog } from './catalog.js';
import { interpolateEnv } from './env.js';
import { configError } from './problems.js';
import type { ConfigProblem } from './problems.js';
import { applyOverrides } from './pointer.js';
import { validateConfig } from './validate.js';
import type { KvmeshConfig } from './validate.js';

export { setPointer } from './pointer.js';

export interface LoadConfigOptions<R extends PluginCatalog = PluginCatalog> {
  /** Plugins to choose from (the kernel's `PluginRegistry`); the file's `plugins` are added to a copy of it. */
  readonly registry: R;
  /** Environment for `${VAR}`; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Values that win over the file (command-line flags): see `ValidateOptions.overrides`. */
  readonly overrides?: Readonly<Record<string, unknown>>;
  readonly extensions?: Readonly<Record<string, JsonSchema>>;
}

export interface LoadedConfig<R extends PluginCatalog = PluginCatalog> {
  readonly config: KvmeshConfig;
  /** The registry with the file's third-party plugins added. */
  readonly registry: R;
  /** Absolute path of the file. */
  readonly file: string;
  /** Folder of the file: relative plugin paths resolve against it. */
  readonly dir: string;
}

/**
 * Reads, interpolates, loads third-party plugins (the file's `plugins`),
 * fills what plugins map from their options, overrides and validates a config
 * file, reporting every problem at once.
 * @throws KvError KVMESH_ERR_CONFIG_READ, KVMESH_ERR_CONFIG_ENV,
 *   KVMESH_ERR_CONFIG_INVALID, KVMESH_ERR_PLUGIN_LOAD, KVMESH_ERR_PLUGIN_INVALID
 */
export async function loadConfig<R extends PluginCatalog<R>>(
  path: string,
  options: LoadConfigOptions<R>,
): Promise<LoadedConfig<R>> {
  const file = resolve(path);
  const dir = dirname(file);
  const raw = parseJson(await readText(file), file);
  return resolveConfig(raw, { ...options, file, dir });
}

/** The same pipeline for an already parsed document (tests, generated configs). */
export async function resolveConfig<R extends PluginCatalog<R>>(
  raw: unknown,
  options: LoadConfigOptions<R> & { file: string; dir: string },
): Promise<LoadedConfig<R>> {
  const problems: ConfigProblem[] = [];
  const interpolated = interpolateEnv(raw, options.env ?? process.env, problems);
  if (problems.length > 0) throw configError(options.file, problems);
  await resolveClusterSecrets(interpolated, options.env ?? process.env, options.dir);
  // The modules to load come from the document as the flags leave it; the rest is overridden after plugins map their options.
  const flagged = structuredClone(interpolated);
  applyOverrides(flagged, options.overrides ?? {});
  const plugins = (flagged as { plugins?: unknown }).plugins;
  const registry = await options.registry.withModules(
    Array.isArray(plugins) ? plugins.filter((p): p is string => typeof p === 'string') : [],
    options.dir,
  );
  const config = validateConfig(interpolated, registry, {
    file: options.file,
    ...(options.extensions ? { extensions: options.extensions } : {}),
    ...(options.overrides ? { overrides: options.overrides } : {}),
  });
  return { config, registry, file: options.file, dir: options.dir };
}

/** The cluster secrets when the config names none (comma-separated, the sealing one first). */
export const CLUSTER_SECRET_ENV = 'KVMESH_CLUSTER_SECRET';
/** A file of cluster secrets (one a line) when neither the config nor KVMESH_CLUSTER_SECRET names any. */
export const CLUSTER_SECRET_FILE_ENV = 'KVMESH_CLUSTER_SECRET_FILE';
/** The admin token when the config names none. */
export const ADMIN_TOKEN_ENV = 'KVMESH_ADMIN_TOKEN';

/**
 * Fills `cluster.secrets` from `cluster.secretFile` (one a line; blank lines
 * and `#` comments skipped), else from KVMESH_CLUSTER_SECRET, else from the
 * file KVMESH_CLUSTER_SECRET_FILE names (what `kvmesh up` gives), and
 * `cluster.adminToken` from KVMESH_ADMIN_TOKEN, when the document names
 * them not. Messages name the file, never what it holds.
 */
async function resolveClusterSecrets(
  doc: unknown,
  env: Readonly<Record<string, string | undefined>>,
  dir: string,
): Promise<void> {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return;
  const root = doc as Record<string, unknown>;
  const section = root['cluster'] ?? {};
  if (typeof section !== 'object' || section === null || Array.isArray(section)) return;
  const cluster = { ...(section as Record<string, unknown>) };
  if (cluster['secrets'] === undefined) {
    const secretFile = cluster['secretFile'];
    const fromEnv = (env[CLUSTER_SECRET_ENV] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const envFile = env[CLUSTER_SECRET_FILE_ENV];
    if (typeof secretFile === 'string' && secretFile !== '') {
      cluster['secrets'] = await readSecrets(resolve(dir, secretFile), 'cluster.secretFile');
    } else if (fromEnv.length > 0) {
      cluster['secrets'] = fromEnv;
    } else if (envFile !== undefined && envFile !== '') {
      cluster['secrets'] = await readSecrets(resolve(envFile), CLUSTER_SECRET_FILE_ENV);
    }
  }
  const token = env[ADMIN_TOKEN_ENV];
  if (cluster['adminToken'] === undefined && token !== undefined && token !== '') cluster['adminToken'] = token;
  if (Object.keys(cluster).length > 0) root['cluster'] = cluster;
}

/** The secrets of a file, one a line (blank lines and `#` comments skipped); messages name the file only. */
async function readSecrets(path: string, what: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'not readable';
    throw new KvError('KVMESH_ERR_CONFIG_READ', `${what} ${path}: cannot read it: ${reason}`);
  }
  const secrets = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (secrets.length === 0) {
    throw new KvError('KVMESH_ERR_CONFIG_READ', `${what} ${path}: holds no secret (one a line)`);
  }
  return secrets;
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(err);
    throw new KvError('KVMESH_ERR_CONFIG_READ', `${file}: cannot read config: ${reason}`, { cause: err });
  }
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    const position = /position (\d+)/.exec(reason);
    const where = position ? ` at ${lineColumn(text, Number(position[1]))}` : '';
    throw new KvError('KVMESH_ERR_CONFIG_READ', `${file}: not valid JSON${where}: ${reason}`, { cause: err });
  }
}

function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${before.at(-1)!.length + 1}`;
}
