import type { KvmeshConfig } from '../config/validate.js';
import type { Facade } from '../contracts/facade.js';
import type { AnyPluginManifest } from '../plugin.js';
import type { ComponentDefinition } from './graph.js';
import type { KvNode } from './node.js';

/** The component name of a configured facade: `facade:<name>`. */
export function facadeComponentName(name: string): string {
  return `facade:${name}`;
}

/** One facade of a node, as the host mounts it. */
export interface NodeFacade {
  /** The plugin's name, as in the config's `facades` entry. */
  readonly name: string;
  readonly facade: Facade;
}

/** The facades a built node runs, in the order of the config's `facades` array. */
export function nodeFacades(node: KvNode, config: KvmeshConfig): NodeFacade[] {
  return (config.facades ?? []).map(({ name }) => ({ name, facade: node.get<Facade>(facadeComponentName(name)) }));
}

/** The component of one `facades` entry: built after what it needs, like any plugin. */
export function facadeDefinition(manifest: AnyPluginManifest, options: unknown): ComponentDefinition {
  const name = facadeComponentName(manifest.name);
  return {
    name,
    token: Symbol.for(`@kvmesh/${name}`),
    label: `facade '${manifest.name}'`,
    needs: manifest.needs,
    build: (components) => manifest.create(options)(components as never),
  };
}
