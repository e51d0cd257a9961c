import { definePlugin } from '@kvmesh/core';
import { MemoryStorage, type MemoryStorageOptions } from './memory-storage.js';

export { MemoryStorage, MEMORY_SCAN_BUDGET, type MemoryStorageOptions } from './memory-storage.js';

/** Storage in process memory: fast, lost on restart, optionally bounded with LRU eviction of live records. */
export const memoryStorage = definePlugin({
  family: 'storage',
  name: 'memory',
  description:
    'Keeps records in process memory (lost on restart); optionally bounded, evicting least recently used live records.',
  version: '0.1.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      maxKeys: {
        type: 'integer',
        minimum: 0,
        default: 0,
        description:
          'Most live records kept; past it the least recently used live record is evicted and counted (kvmesh_storage_evictions_total). Tombstones are never evicted (forgetting one lets a replica that missed the delete bring the key back) and do not count: they hold no value bytes and leave after kv.tombstoneGraceMs, so their number is bounded by deletes per grace period (kvmesh_storage_tombstones). Hints are not bounded either. 0 = unbounded.',
      },
    },
  },
  needs: [],
  create: (options: MemoryStorageOptions) => () => new MemoryStorage(options),
});
