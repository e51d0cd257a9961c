import { PluginRegistry, validateConfig } from '@kvmesh/core';
import type { Placement, PlacementConformanceComponents } from '@kvmesh/core';
import { builtinPlugins } from '../../src/index.js';

const registry = new PluginRegistry(builtinPlugins);

/** A placement plugin's options as the kernel hands them over: validated, defaults filled, frozen. */
export function placementOptions(name: string, options: Record<string, unknown> = {}): Record<string, unknown> {
  const config = validateConfig(
    { node: { id: 'n1', address: '127.0.0.1:7700' }, placement: { name, options } },
    registry,
  );
  return config.placement!.options as Record<string, unknown>;
}

/** A factory for runPlacementConformance: the registered plugin `name` built with `options`. */
export function placementFactory(
  name: string,
  options: Record<string, unknown> = {},
): (components: PlacementConformanceComponents) => Promise<Placement> {
  const manifest = registry.get('placement', name);
  const validated = placementOptions(name, options);
  // The kernel passes only what `needs` names; the suite offers a superset.
  return async (components) => (await manifest.create(validated)(components as never)) as Placement;
}
