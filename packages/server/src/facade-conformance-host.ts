import { PluginRegistry, silentLogger } from '@kvmesh/core';
import type { FacadeHost, FacadeUnderTest } from '@kvmesh/core';
import { builtinPlugins } from '@kvmesh/plugins';
import { startNodeServer } from './node-server.js';

/**
 * The host `runFacadeConformance` starts facades on: one node in this
 * process on 127.0.0.1 (a free port), memory storage, placement `single`,
 * the http transport, the built-in plugins, and the facade under test
 * mounted with the given options (it replaces a built-in of the same name).
 */
export const facadeConformanceHost: FacadeHost = async ({ facade, options, limits }): Promise<FacadeUnderTest> => {
  const others = builtinPlugins.filter((m) => !(m.family === 'facade' && m.name === facade.name));
  const registry = new PluginRegistry(others);
  registry.add(facade, 'conformance');
  const server = await startNodeServer({
    document: {
      node: { id: 'conformance', address: '127.0.0.1:0' },
      storage: { name: 'memory' },
      placement: { name: 'single' },
      limits,
      log: { level: 'silent' },
      facades: [{ name: facade.name, options }],
    },
    registry,
    logger: silentLogger,
  });
  const mounted = server.facades.find((f) => f.name === facade.name)!;
  return { url: mounted.url, nodeUrl: server.url, stop: () => server.shutdown() };
};
