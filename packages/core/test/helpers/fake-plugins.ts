import { compareKeys, compareRecords, coveredBy, definePlugin } from '../../src/index.js';
import type { AnyPluginManifest, Hint, HintStore, PluginFamily, Storage, StoredRecord } from '../../src/index.js';

/** Names of lifecycle calls, shared by the fakes of one test. */
export type Journal = string[];

/** A storage fake that records start/stop in `journal`. */
export function fakeStorage(journal: Journal, name = 'fake-store'): AnyPluginManifest {
  return definePlugin({
    family: 'storage',
    name,
    description: 'Map-backed storage for kernel tests.',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        capacity: { type: 'integer', minimum: 1, default: 10, description: 'Most records.' },
        label: { type: 'string', default: 'main', description: 'A label.' },
      },
    },
    needs: ['node', 'logger'],
    create: (options: { capacity: number; label: string }) => () => {
      const records = new Map<string, StoredRecord>();
      const storage: Storage & { options: unknown } = {
        name,
        options,
        start: () => void journal.push(`start ${name}`),
        stop: () => void journal.push(`stop ${name}`),
        get: async (key) => records.get(key),
        put: async (record) => (records.set(record.key, record), true),
        count: async () => records.size,
        sizeBytes: async () => 0,
        scan: async () => ({ records: [...records.values()], next: undefined }),
        collectTombstones: async () => 0,
        putBatch: async (batch) => batch.map((record) => (records.set(record.key, record), true)),
        purge: async (key, upTo) => {
          const record = records.get(key);
          if (record === undefined || !coveredBy(record.version, upTo)) return false;
          return records.delete(key);
        },
        hints: mapHints(),
      };
      return storage;
    },
  });
}

/** A Map-backed HintStore for storage fakes: newest hint per (target, key), pages in key order. */
export function mapHints(): HintStore {
  const byTarget = new Map<string, Map<string, StoredRecord>>();
  return {
    add: async ({ target, record }) => {
      const hints = byTarget.get(target) ?? new Map<string, StoredRecord>();
      byTarget.set(target, hints);
      const existing = hints.get(record.key);
      if (existing === undefined || compareRecords(record, existing) > 0) hints.set(record.key, record);
    },
    targets: async () => [...byTarget.keys()].sort(compareKeys),
    list: async (target, { after, limit }) => {
      const keys = [...(byTarget.get(target)?.keys() ?? [])]
        .sort(compareKeys)
        .filter((key) => after === undefined || compareKeys(key, after) > 0);
      const page = keys.slice(0, limit);
      const hints: Hint[] = page.map((key) => ({ target, record: byTarget.get(target)!.get(key)! }));
      return { hints, next: keys.length > limit ? page.at(-1) : undefined };
    },
    remove: async (target, key, upTo) => {
      const hints = byTarget.get(target);
      const existing = hints?.get(key);
      if (hints === undefined || existing === undefined || !coveredBy(existing.version, upTo)) return false;
      hints.delete(key);
      if (hints.size === 0) byTarget.delete(target);
      return true;
    },
    count: async () => [...byTarget.values()].reduce((n, hints) => n + hints.size, 0),
  };
}

/** A placement fake that needs storage, to give the kernel an order to respect. */
export function fakePlacement(journal: Journal, failOn?: 'build' | 'start'): AnyPluginManifest {
  return definePlugin({
    family: 'placement',
    name: 'fake-place',
    description: 'Placement fake for kernel tests.',
    optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
    needs: ['storage', 'clock'],
    create: () => () => {
      if (failOn === 'build') throw new Error('cannot build');
      return {
        name: 'fake-place',
        start: () => {
          if (failOn === 'start') throw new Error('ring is broken');
          journal.push('start fake-place');
        },
        stop: () => void journal.push('stop fake-place'),
        epoch: 1,
        locate: async () => ({
          replicas: [],
          fallbacks: [],
          writeQuorum: 1,
          conditionalWriteQuorum: 1,
          readQuorum: 1,
          epoch: 1,
          hops: 0,
        }),
        admit: () => ({ kind: 'own' as const }),
        plan: () => [],
        describe: () => ({}),
      };
    },
  });
}

/** A manifest that only has to exist (for config validation tests). */
export function stubPlugin(
  family: PluginFamily,
  name: string,
  properties: Record<string, object> = {},
): AnyPluginManifest {
  return definePlugin({
    family,
    name,
    description: `Stub ${family}.`,
    optionsSchema: { type: 'object', additionalProperties: false, properties },
    needs: [],
    create: () => () => {
      throw new Error('stub');
    },
  });
}
