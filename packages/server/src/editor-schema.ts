import { PluginRegistry, editorConfigSchema } from '@kvmesh/core';
import type { JsonSchema } from '@kvmesh/core';
import { builtinPlugins } from '@kvmesh/plugins';
import { SERVER_CONFIG_EXTENSIONS } from './settings.js';

/**
 * The JSON Schema editors use for kvmesh config files: the kernel's sections,
 * every built-in plugin's options and the server's own sections. This is
 * what `kvmesh schema` writes to `configs/kvmesh.schema.json`.
 */
export function serverEditorSchema(registry: PluginRegistry = new PluginRegistry(builtinPlugins)): JsonSchema {
  return editorConfigSchema(registry, SERVER_CONFIG_EXTENSIONS);
}
