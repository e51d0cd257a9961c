import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pidsOf, startExpressMap, startKvmesh } from './support/children.js';
import { benchKeys, header, measure, populate, table } from './support/load.js';
import type { Op, Row, Target } from './support/load.js';
import type { BenchSettings } from './support/settings.js';

const HOST = '127.0.0.1';
/** The facade measured, and the path of a key in its API. */
const FACADE = 'dht-node';
const path = (key: string): string => `/d/${encodeURIComponent(key)}`;

/**
 * A facade against the program whose API it answers: GET and POST of
 * `/d/<key>` on one kvmesh node with the dht-node facade, next to an express
 * app serving the same routes from a Map (express-map.ts, the dht-node
 * program's shape). kvmesh runs twice: on memory storage, which keeps what
 * a Map keeps, and on lmdb with syncWrites (configs/dht-node.json's storage,
 * every acknowledged write on disk). Prints ratios to express.
 */
export async function facadeBench(dir: string, settings: BenchSettings): Promise<string> {
  const nodes = await Promise.all(
    (['memory', 'lmdb'] as const).map(async (storage) => {
      const config = join(dir, `${storage}.json`);
      await writeFile(
        config,
        JSON.stringify({
          node: { id: `bench-${storage}`, address: `${HOST}:0`, dataDir: join(dir, storage) },
          storage: storage === 'lmdb' ? { name: 'lmdb', options: { syncWrites: true } } : { name: 'memory' },
          placement: { name: 'single' },
          transport: { name: 'http' },
          codec: { name: 'json' },
          facades: [{ name: FACADE }],
          log: { level: 'info' },
        }),
      );
      return { storage, ...(await startKvmesh(config, settings.nodeArgs)) };
    }),
  );
  const reference = await startExpressMap(HOST);
  const keys = benchKeys(settings.keys);
  await Promise.all([reference.url, ...nodes.map((n) => n.url)].map((url) => populate(url, keys, path, 'POST')));
  const first = header(
    'facade',
    `the ${FACADE} facade on one node (placement single) against express serving the same routes from a Map, ${settings.keys} keys`,
    settings,
  );
  const targets: Target[] = [
    { name: 'express + Map', urls: [reference.url], path, pids: pidsOf(reference.child) },
    ...nodes.map((n) => ({ name: `kvmesh ${n.storage}`, urls: [n.url], path, pids: pidsOf(n.child) })),
  ];
  const rows: Row[] = [];
  for (const op of ['GET', 'POST'] as Op[]) rows.push(...(await measure(targets, op, settings)));
  return `${first}\n\n${table(rows, 'express + Map')}`;
}
