import { isAbsolute, join, resolve } from 'node:path';
import type { NodeInfo } from '@kvmesh/core';
import { definePlugin } from '@kvmesh/core';
import { LMDB_MAX_USER_KEY_BYTES, LmdbStorage } from './lmdb-storage.js';

export {
  LmdbStorage,
  LMDB_LOCK_FILE,
  LMDB_MAX_USER_KEY_BYTES,
  LMDB_SCAN_BUDGET,
  type LmdbStorageOptions,
} from './lmdb-storage.js';
export { RECORD_FORMAT } from './record-codec.js';

/** Options as written in a config file: `dataDir` may be empty or relative. */
export interface LmdbPluginOptions {
  readonly dataDir: string;
  readonly mapSizeBytes: number;
  readonly syncWrites: boolean;
  readonly compression: boolean;
}

/** Empty: `<node dataDir>/lmdb`; relative: against the config file's directory. */
export function resolveLmdbDataDir(dataDir: string, node: Pick<NodeInfo, 'dataDir' | 'configDir'>): string {
  if (dataDir === '') return join(node.dataDir, 'lmdb');
  return isAbsolute(dataDir) ? dataDir : resolve(node.configDir, dataDir);
}

/** Durable storage in an lmdb environment on local disk. */
export const lmdbStorage = definePlugin({
  family: 'storage',
  name: 'lmdb',
  description: 'Keeps records on local disk in an lmdb environment; a resolved write survives a crash.',
  version: '0.1.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      dataDir: {
        type: 'string',
        default: '',
        description:
          "Directory of the lmdb files. Empty: '<node dataDir>/lmdb'. A relative path resolves against the config file's directory.",
      },
      mapSizeBytes: {
        type: 'integer',
        minimum: 0,
        default: 0,
        description: 'Initial size of the memory map in bytes; it grows on demand. 0 = the lmdb-js default.',
      },
      syncWrites: {
        type: 'boolean',
        default: true,
        description:
          'true: a write is acknowledged only after it is flushed to disk (survives a machine crash). false: acknowledged when committed and flushed in the background (survives a killed process, not a power loss); faster.',
      },
      compression: {
        type: 'boolean',
        default: false,
        description: 'LZ4-compress values larger than 1000 bytes.',
      },
    },
  },
  needs: ['node', 'logger'],
  checkConfig: (_options: LmdbPluginOptions, config) => {
    const limits = config['limits'] as { maxKeyBytes?: unknown } | undefined;
    const max = limits?.maxKeyBytes;
    if (typeof max !== 'number' || max <= LMDB_MAX_USER_KEY_BYTES) return [];
    return [
      {
        path: '/limits/maxKeyBytes',
        message: `${max} is more than the lmdb storage holds: keys of at most ${LMDB_MAX_USER_KEY_BYTES} UTF-8 bytes; lower it, or use a storage without that limit`,
      },
    ];
  },
  create:
    (options: LmdbPluginOptions) =>
    ({ node, logger }) =>
      new LmdbStorage(
        {
          ...options,
          dataDir: resolveLmdbDataDir(options.dataDir, node),
          owner: { id: node.id, address: node.address },
        },
        logger.child({ plugin: 'lmdb' }),
      ),
});
