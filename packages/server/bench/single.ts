import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pidsOf, startBare, startKvmesh } from './support/children.js';
import { benchKeys, header, measure, populate, table } from './support/load.js';
import type { Row } from './support/load.js';
import type { BenchSettings } from './support/settings.js';

const HOST = '127.0.0.1';

/**
 * GET and PUT of 100-byte values against one kvmesh node (lmdb, syncWrites
 * as configured by default, placement single), next to a bare node:http
 * server answering the same bytes. Prints each op's ratio to the bare server.
 */
export async function singleBench(dir: string, settings: BenchSettings): Promise<string> {
  const config = join(dir, 'single.json');
  await writeFile(
    config,
    JSON.stringify({
      node: { id: 'bench', address: `${HOST}:0`, dataDir: join(dir, 'single') },
      storage: { name: 'lmdb' },
      placement: { name: 'single' },
      transport: { name: 'http' },
      codec: { name: 'json' },
      log: { level: 'info' },
    }),
  );
  const bare = await startBare(HOST);
  const kv = await startKvmesh(config, settings.nodeArgs);
  await populate(kv.url, benchKeys(settings.keys));
  const first = header(
    'single',
    `one node against bare node:http, ${settings.keys} keys, lmdb syncWrites (default)`,
    settings,
  );
  const targets = [
    { name: 'node:http', urls: [bare.url], pids: pidsOf(bare.child) },
    { name: 'kvmesh', urls: [kv.url], pids: pidsOf(kv.child) },
  ];
  const rows: Row[] = [];
  for (const op of ['GET', 'PUT'] as const) rows.push(...(await measure(targets, op, settings)));
  return `${first}\n\n${table(rows, 'node:http')}`;
}
