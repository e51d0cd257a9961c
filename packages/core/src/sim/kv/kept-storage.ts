import type { Storage } from '../../contracts/storage.js';
import type { PluginRegistry } from '../../kernel/registry.js';
import { definePlugin } from '../../plugin.js';
import type { AnyPluginManifest, Components, NodeInfo } from '../../plugin.js';

/** Name of the storage plugin a simulated KV run gives every node (it wraps the storage the run chose). */
export const KEPT_STORAGE_PLUGIN = 'sim-kept';

/**
 * Storage that outlives its node, as a disk outlives a crashed process: the
 * chosen storage plugin is built once per node id and handed to every build
 * of that node, its `stop` ignored until `close()`. A restart then finds the
 * records and hints it held, as it would on a durable engine.
 */
export class KeptStorages {
  readonly #inner: AnyPluginManifest;
  readonly #kept = new Map<string, Storage>();
  readonly #started = new Set<string>();

  /** @throws KvError KVMESH_ERR_PLUGIN_UNKNOWN when `registry` has no storage plugin `name`. */
  constructor(registry: PluginRegistry, name: string) {
    this.#inner = registry.get('storage', name);
  }

  /** A storage plugin with the inner plugin's options, building the kept instance of each node. */
  manifest(): AnyPluginManifest {
    const inner = this.#inner;
    const needs = [...new Set(['node', ...inner.needs])] as AnyPluginManifest['needs'];
    return definePlugin({
      family: 'storage',
      name: KEPT_STORAGE_PLUGIN,
      description: `Storage '${inner.name}' kept across restarts of a simulated node.`,
      optionsSchema: inner.optionsSchema,
      needs,
      create: (options: unknown) => async (components: Components) => {
        const id = (components as { node: NodeInfo }).node.id;
        let storage = this.#kept.get(id);
        if (storage === undefined) {
          storage = (await inner.create(options)(components)) as Storage;
          this.#kept.set(id, storage);
        }
        return this.#view(id, storage);
      },
    });
  }

  /** The kept storage of node `id`, if it was built. */
  get(id: string): Storage | undefined {
    return this.#kept.get(id);
  }

  /** Stops every kept storage for real. */
  async close(): Promise<void> {
    for (const storage of this.#kept.values()) {
      await (storage as Partial<{ stop(): unknown }>).stop?.();
    }
    this.#kept.clear();
  }

  /** The storage as one build of the node sees it: started once, never stopped by the node. */
  #view(id: string, storage: Storage): Storage {
    const started = this.#started;
    return new Proxy(storage, {
      get(target, property) {
        if (property === 'stop') return () => undefined;
        if (property === 'start') {
          return async () => {
            if (started.has(id)) return;
            started.add(id);
            await (target as Partial<{ start(): unknown }>).start?.();
          };
        }
        const value: unknown = Reflect.get(target, property);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }
}
