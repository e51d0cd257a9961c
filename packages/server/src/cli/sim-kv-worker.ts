import { parentPort, workerData } from 'node:worker_threads';
import type { KvSimOptions, KvSimResult } from '@kvmesh/core';

/**
 * One config's runs of `kvmesh sim kv`, in a worker thread: the main thread
 * sends the options of one run at a time and gives up on a run that takes
 * too long by terminating the worker, which works even while a strategy
 * keeps the thread busy without end (virtual time that never moves on).
 */

/** What the main thread sends: one run's options, without the registry and config the worker loads itself. */
export type SimKvRunRequest = Omit<KvSimOptions, 'registry' | 'config' | 'logger'>;

/** What the worker answers per request. */
export type SimKvRunAnswer =
  { readonly result: KvSimResult } | { readonly error: { readonly message: string; readonly code?: string } };

/** The data the worker is started with. */
export interface SimKvWorkerData {
  /** The config file, loaded in the worker as `kvmesh sim kv` loads it. */
  readonly file: string;
}

const port = parentPort;
if (port !== null) {
  const { file } = workerData as SimKvWorkerData;
  const [core, plugins, settings] = await Promise.all([
    import('@kvmesh/core'),
    import('@kvmesh/plugins'),
    import('../settings.js'),
  ]);
  const loaded = await core.loadConfig(file, {
    registry: new core.PluginRegistry(plugins.builtinPlugins),
    extensions: settings.SERVER_CONFIG_EXTENSIONS,
  });
  port.on('message', (request: SimKvRunRequest) => {
    core.simulateKv({ ...request, registry: loaded.registry, config: loaded.config }).then(
      (result) => port.postMessage({ result } satisfies SimKvRunAnswer),
      (err: unknown) => {
        const code = (err as { code?: unknown }).code;
        port.postMessage({
          error: { message: String((err as Error).message ?? err), ...(typeof code === 'string' ? { code } : {}) },
        } satisfies SimKvRunAnswer);
      },
    );
  });
}
