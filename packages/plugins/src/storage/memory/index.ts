import { definePlugin } from '@kvmesh/core';
import { MemoryStorage, type MemoryStorageOptions } from './memory-storage.js';

export { MemoryStorage, MEMORY_SCAN_BUDGET, type MemoryStorageOptions } from './memory-storage.js';

/** Storage in process memory: fast, lost on restart, optionally bounded with LRU eviction. */
export const memoryStorage = definePlugin({
  family: 'storage',
  name: 'memory',
  description: 'Keeps records in process memory (lost on restart); optionally bounded, evicting least recently used.',
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
          'Most records kept (tombstones included); past it the least recently used record is evicted and counted. 0 = unbounded.',
      },
    },
  },
  needs: [],
  create: (options: MemoryStorageOptions) => () => new MemoryStorage(options),
});
