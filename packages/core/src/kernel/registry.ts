import semver from 'semver';
import { KvError } from '../errors.js';
import { PLUGIN_FAMILIES, definePlugin } from '../plugin.js';
import type { AnyPluginManifest, PluginFamily } from '../plugin.js';
import { unknownPluginMessage } from '../config/catalog.js';
import type { PluginCatalog, PluginEntry } from '../config/catalog.js';
import { CORE_VERSION } from './core-version.js';
import { loadPlugins } from './loader.js';

/**
 * The plugins a node can choose from, by family and name. Built-ins and
 * third-party plugins live here side by side; nothing else tells them apart.
 */
export class PluginRegistry implements PluginCatalog<PluginRegistry> {
  readonly #byFamily = new Map<PluginFamily, Map<string, PluginEntry>>(PLUGIN_FAMILIES.map((f) => [f, new Map()]));

  constructor(manifests: readonly AnyPluginManifest[] = [], origin = 'built-in') {
    for (const m of manifests) this.add(m, origin);
  }

  /**
   * Adds a plugin. Adding the very same manifest twice is a no-op (a module
   * listed by two configs); another plugin with a taken name is an error.
   * A plugin whose `coreVersions` range excludes this core is refused.
   * @throws KvError KVMESH_ERR_PLUGIN_INVALID, KVMESH_ERR_PLUGIN_DUPLICATE, KVMESH_ERR_PLUGIN_CORE_VERSION
   */
  add(manifest: AnyPluginManifest, origin: string): void {
    const checked = definePlugin(manifest);
    checkCoreVersion(checked, origin);
    const family = this.#byFamily.get(checked.family)!;
    const existing = family.get(checked.name);
    if (existing) {
      if (existing.manifest.create === manifest.create) return;
      throw new KvError(
        'KVMESH_ERR_PLUGIN_DUPLICATE',
        `${checked.family} plugin '${checked.name}' from ${origin} clashes with the one from ${existing.origin}`,
      );
    }
    family.set(checked.name, { manifest: checked, origin });
  }

  has(family: PluginFamily, name: string): boolean {
    return this.#byFamily.get(family)?.has(name) ?? false;
  }

  /** @throws KvError KVMESH_ERR_PLUGIN_UNKNOWN listing the names that exist. */
  get(family: PluginFamily, name: string): AnyPluginManifest {
    const entry = this.#byFamily.get(family)?.get(name);
    if (!entry) throw new KvError('KVMESH_ERR_PLUGIN_UNKNOWN', unknownPluginMessage(family, name, this.names(family)));
    return entry.manifest;
  }

  /** Registered names of a family, sorted. */
  names(family: PluginFamily): string[] {
    return [...(this.#byFamily.get(family)?.keys() ?? [])].sort();
  }

  entries(family: PluginFamily): PluginEntry[] {
    return [...(this.#byFamily.get(family)?.values() ?? [])].sort((a, b) =>
      a.manifest.name.localeCompare(b.manifest.name),
    );
  }

  /** A registry with the same plugins, to which more can be added without touching this one. */
  clone(): PluginRegistry {
    const copy = new PluginRegistry();
    for (const family of PLUGIN_FAMILIES) {
      for (const entry of this.entries(family)) copy.add(entry.manifest, entry.origin);
    }
    return copy;
  }

  /** A clone with the plugins of every module in `specifiers` added; relative paths resolve against `baseDir`. */
  async withModules(specifiers: readonly string[], baseDir: string): Promise<PluginRegistry> {
    const copy = this.clone();
    await loadPlugins(copy, specifiers, baseDir);
    return copy;
  }
}

/**
 * Refuses a plugin made for other core versions, naming both sides (as
 * fastify's plugin metadata does).
 * @throws KvError KVMESH_ERR_PLUGIN_CORE_VERSION
 */
export function checkCoreVersion(manifest: AnyPluginManifest, origin: string, core: string = CORE_VERSION): void {
  const range = manifest.coreVersions;
  if (range === undefined || semver.satisfies(core, range, { includePrerelease: true })) return;
  throw new KvError(
    'KVMESH_ERR_PLUGIN_CORE_VERSION',
    `${manifest.family} plugin '${manifest.name}' from ${origin} supports @kvmesh/core ${range}, but this node runs @kvmesh/core ${core}; install a version of the plugin made for ${core}`,
    { details: { plugin: manifest.name, family: manifest.family, origin, coreVersions: range, coreVersion: core } },
  );
}
