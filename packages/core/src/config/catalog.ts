import type { AnyPluginManifest, PluginFamily } from '../plugin.js';

/** Where a registered plugin came from, for error messages. */
export interface PluginEntry {
  readonly manifest: AnyPluginManifest;
  /** `built-in`, or the module specifier it was loaded from. */
  readonly origin: string;
}

/**
 * What config validation and loading need of a plugin registry. The kernel's
 * `PluginRegistry` is the implementation; config depends on this shape only,
 * so the kernel may import config and never the other way round.
 *
 * `Self` is the type `withModules` answers, so a caller that passed a
 * `PluginRegistry` gets a `PluginRegistry` back from `loadConfig`.
 */
export interface PluginCatalog<Self = unknown> {
  /** Whether a plugin of `family` called `name` is registered. */
  has(family: PluginFamily, name: string): boolean;
  /** @throws KvError KVMESH_ERR_PLUGIN_UNKNOWN listing the names that exist. */
  get(family: PluginFamily, name: string): AnyPluginManifest;
  /** Registered names of a family, sorted. */
  names(family: PluginFamily): string[];
  /** Registered plugins of a family, sorted by name. */
  entries(family: PluginFamily): PluginEntry[];
  /**
   * A copy of this catalog with the plugins of every module in `specifiers`
   * added (relative paths resolve against `baseDir`); this one is unchanged.
   * Called once per config load with the file's `plugins` array.
   * @throws KvError KVMESH_ERR_PLUGIN_LOAD, KVMESH_ERR_PLUGIN_INVALID, KVMESH_ERR_PLUGIN_DUPLICATE,
   *   KVMESH_ERR_PLUGIN_CORE_VERSION (a plugin made for other core versions)
   */
  withModules(specifiers: readonly string[], baseDir: string): Promise<Self>;
}

/** The message of an unknown plugin name, shared by config validation and the registry. */
export function unknownPluginMessage(family: string, name: string, available: readonly string[]): string {
  const list = available.length > 0 ? available.join(', ') : 'none registered';
  return `unknown ${family} plugin '${name}'; available: ${list}`;
}
