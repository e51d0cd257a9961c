import { existsSync } from 'node:fs';
import { resolve as resolveModule } from 'import-meta-resolve';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { KvError } from '../errors.js';
import { manifestProblems } from '../plugin.js';
import type { AnyPluginManifest } from '../plugin.js';
import type { PluginRegistry } from './registry.js';

/**
 * Imports a third-party plugin module and returns its manifests.
 *
 * `specifier` is a path (starting with `.` or `/`, relative to `baseDir`, the
 * config file's folder) or a package name, resolved from `baseDir` the way
 * Node resolves imports. The module exports its manifest(s) as `default`,
 * `plugin` or `plugins` (one manifest or an array).
 * @throws KvError KVMESH_ERR_PLUGIN_LOAD, KVMESH_ERR_PLUGIN_INVALID
 */
export async function importPluginModule(specifier: string, baseDir: string): Promise<AnyPluginManifest[]> {
  let url: string;
  try {
    const path = isPath(specifier)
      ? resolve(baseDir, specifier)
      : fileURLToPath(resolveModule(specifier, pathToFileURL(`${baseDir}/`).href));
    if (!existsSync(path)) throw new Error(`${path} does not exist`);
    url = pathToFileURL(path).href;
  } catch (err) {
    throw new KvError('KVMESH_ERR_PLUGIN_LOAD', `plugin module '${specifier}' not found from ${baseDir}`, {
      cause: err,
    });
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new KvError('KVMESH_ERR_PLUGIN_LOAD', `plugin module '${specifier}' failed to load: ${reason}`, {
      cause: err,
    });
  }
  const exported = mod['plugins'] ?? mod['plugin'] ?? mod['default'];
  const manifests = (Array.isArray(exported) ? exported : [exported]) as unknown[];
  const problems = manifests.flatMap((m, i) => manifestProblems(m).map((p) => `[${i}] ${p}`));
  if (exported === undefined || problems.length > 0) {
    const why = exported === undefined ? 'exports no `default`, `plugin` or `plugins`' : problems.join('; ');
    throw new KvError('KVMESH_ERR_PLUGIN_INVALID', `plugin module '${specifier}' ${why}`);
  }
  return manifests as AnyPluginManifest[];
}

/** Imports every module in `specifiers` into `registry`. */
export async function loadPlugins(
  registry: PluginRegistry,
  specifiers: readonly string[],
  baseDir: string,
): Promise<void> {
  for (const specifier of specifiers) {
    for (const manifest of await importPluginModule(specifier, baseDir)) registry.add(manifest, specifier);
  }
}

function isPath(specifier: string): boolean {
  return specifier.startsWith('.') || isAbsolute(specifier);
}
