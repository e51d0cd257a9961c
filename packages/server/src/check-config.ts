import { PluginRegistry, createNode, kvServiceDefinition, loadConfig } from '@kvmesh/core';
import type { LoadedConfig } from '@kvmesh/core';
import { builtinPlugins } from '@kvmesh/plugins';
import { SERVER_CONFIG_EXTENSIONS } from './settings.js';

export interface CheckConfigOptions {
  /** Environment for `${VAR}`; default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Plugins to choose from; default the built-ins. */
  readonly registry?: PluginRegistry;
}

/**
 * What `kvmesh validate` does: loads and validates a config file (every
 * problem at once) and builds, without starting, the node it describes, so
 * that a component missing what it needs is reported too. Binds nothing and
 * opens no files.
 * @throws KvError KVMESH_ERR_CONFIG_*, KVMESH_ERR_PLUGIN_*, KVMESH_ERR_KERNEL_DEPENDENCY.
 */
export async function checkConfigFile(file: string, options: CheckConfigOptions = {}): Promise<LoadedConfig> {
  const loaded = await loadConfig(file, {
    registry: options.registry ?? new PluginRegistry(builtinPlugins),
    extensions: SERVER_CONFIG_EXTENSIONS,
    ...(options.env ? { env: options.env } : {}),
  });
  await createNode({
    config: loaded.config,
    registry: loaded.registry,
    extras: [kvServiceDefinition()],
    configDir: loaded.dir,
  });
  return loaded;
}
