import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pidsOf, startKvmesh } from './support/children.js';
import { benchKeys, header, measure, populate, table } from './support/load.js';
import { replicasOf, startCluster, storedKeys } from './support/cluster.js';
import type { RingOptions } from './support/cluster.js';
import type { BenchSettings } from './support/settings.js';

/** dht-node's replication: N = 3, W = R = 2. */
const PLACEMENT: RingOptions = { mode: 'ring', replicationFactor: 3, writeQuorum: 2, readQuorum: 2 };
/** Replica requests are encoded so, as in configs/ring-local.json. */
const CODEC = 'msgpack';
/** This bench's loopback range (127.0.0.5 to .7). */
const FIRST_HOST = 5;

/**
 * PUT on a 3-node ring (N = 3, W = 2) against one node (placement single),
 * in alternating rounds. The ring is driven two ways: the connections spread
 * over all three nodes, each PUT of any key (a node that is not the key's
 * primary forwards it there, one hop), and each node sent only the keys it
 * is primary for (what a client that knows the placement would do).
 */
export async function quorumBench(dir: string, settings: BenchSettings): Promise<string> {
  const single = join(dir, 'single.json');
  await writeFile(
    single,
    JSON.stringify({
      node: { id: 'single', address: '127.0.0.1:0', dataDir: join(dir, 'single') },
      storage: { name: 'lmdb' },
      placement: { name: 'single' },
      transport: { name: 'http' },
      codec: { name: 'json' },
      log: { level: 'info' },
    }),
  );
  const [one, nodes] = await Promise.all([
    startKvmesh(single, settings.nodeArgs),
    startCluster(dir, 3, { placement: PLACEMENT, codec: CODEC, firstHost: FIRST_HOST }, settings.nodeArgs),
  ]);
  const keys = benchKeys(settings.keys);
  await Promise.all([populate(one.url, keys), populate(nodes[0]!.url, keys)]);
  // Every node holds every key (N = 3 of 3 nodes) once the writes' third replicas landed.
  const deadline = performance.now() + 10_000;
  for (;;) {
    const counts = await Promise.all(nodes.map((n) => storedKeys(n.url)));
    if (counts.every((c) => c === keys.length)) break;
    if (performance.now() > deadline) throw new Error(`expected ${keys.length} keys on every node, found ${counts}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const replicas = await replicasOf(
    nodes.map((n) => n.id),
    PLACEMENT,
    keys,
  );
  const primaryKeys = nodes.map((n) => keys.filter((key) => replicas.get(key)![0] === n.id));
  const first = header(
    'quorum',
    `PUT of ${keys.length} keys on a 3-node ring (replicationFactor 3, writeQuorum 2, readQuorum 2, lmdb syncWrites, http transport, ${CODEC} codec) against one node`,
    settings,
  );
  const ringPids = pidsOf(...nodes.map((n) => n.child));
  const rows = await measure(
    [
      { name: 'single node', urls: [one.url], pids: pidsOf(one.child) },
      { name: 'ring, any node', urls: nodes.map((n) => n.url), pids: ringPids },
      { name: 'ring, at primary', urls: nodes.map((n) => n.url), keys: primaryKeys, pids: ringPids },
    ],
    'PUT',
    settings,
  );
  const split = primaryKeys.map((k, i) => `${nodes[i]!.id} ${k.length}`).join(', ');
  return `${first}\n\n${table(rows, 'single node')}\n(keys per primary: ${split})`;
}
