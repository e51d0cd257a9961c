import { KvClient } from '@kvmesh/client';
import { pidsOf } from './support/children.js';
import { startCluster } from './support/cluster.js';
import type { RingOptions } from './support/cluster.js';
import { VALUE, benchKeys, cpuOf, header, median, table } from './support/load.js';
import type { Row } from './support/load.js';
import type { BenchSettings } from './support/settings.js';

/** dht-node's replication, as configs/ring-local.json: N = 3, W = R = 2. */
const PLACEMENT: RingOptions = { mode: 'ring', replicationFactor: 3, writeQuorum: 2, readQuorum: 2 };
const CODEC = 'msgpack';
/** This bench's loopback range (127.0.0.30 to .32). */
const FIRST_HOST = 30;

interface Sample {
  readonly done: number;
  readonly failures: number;
  readonly seconds: number;
  readonly p50: number;
  readonly p99: number;
  /** CPU seconds the cluster's three processes used meanwhile. */
  readonly clusterCpuS: number;
  /** CPU seconds this process (the client and the workers that drive it) used meanwhile. */
  readonly clientCpuS: number;
}

/**
 * PUT on a 3-node ring through @kvmesh/client, two ways in alternating
 * rounds of the same run: routed by the placement's table (each write sent
 * to its key's primary, which runs it at once), and through any node (the
 * client's routing off: a node that is not the key's primary forwards the
 * write there, one hop). `settings.connections` calls in flight, each
 * issued as soon as the one before it finished. On a ring of three nodes
 * with three replicas every node is a replica of every key, so only writes
 * (which go through the primary) can gain; reads are not measured.
 */
export async function clientBench(dir: string, settings: BenchSettings): Promise<string> {
  const nodes = await startCluster(
    dir,
    3,
    { placement: PLACEMENT, codec: CODEC, firstHost: FIRST_HOST },
    settings.nodeArgs,
  );
  const seeds = nodes.map((n) => n.url);
  const options = { seeds, connectionsPerNode: settings.connections, minConnections: 3 };
  const sides = [
    { name: 'client, any node', client: new KvClient({ ...options, routing: false }) },
    { name: 'client, routed', client: new KvClient({ ...options, routing: true }) },
  ];
  try {
    await Promise.all(sides.map((s) => s.client.connect()));
    const keys = benchKeys(settings.keys);
    const routed = sides[1]!.client;
    if (routed.routingTable === undefined) throw new Error('the ring published no routing table');
    const pids = pidsOf(...nodes.map((n) => n.child));
    await run(routed, pids, keys, settings.connections, 0, 1);
    const samples = new Map<string, Sample[]>(sides.map((s) => [s.name, []]));
    if (settings.warmupS > 0) {
      for (const s of sides) await run(s.client, pids, keys, settings.connections, settings.warmupS);
    }
    for (let round = 0; round < settings.rounds; round++) {
      for (const s of sides) {
        samples
          .get(s.name)!
          .push(await run(s.client, pids, keys, settings.connections, settings.durationS / settings.rounds));
      }
    }
    const rows: Row[] = sides.map((s) => {
      const list = samples.get(s.name)!;
      const done = list.reduce((sum, x) => sum + x.done, 0);
      return {
        server: s.name,
        op: 'PUT',
        rps: done / list.reduce((sum, x) => sum + x.seconds, 0),
        p50: median(list.map((x) => x.p50)),
        p99: median(list.map((x) => x.p99)),
        failures: list.reduce((sum, x) => sum + x.failures, 0),
        cpuUs: (list.reduce((sum, x) => sum + x.clusterCpuS, 0) / done) * 1e6,
      };
    });
    const stats = routed.stats();
    const first = header(
      'client',
      `PUT of ${keys.length} keys through @kvmesh/client on a 3-node ring (replicationFactor 3, writeQuorum 2, readQuorum 2, lmdb syncWrites, http transport, ${CODEC} codec), routed by the routing table against any node, the load from the client in this process (not the load generator named next)`,
      settings,
    );
    const ratio = rows[1]!.rps / rows[0]!.rps;
    // The client shares the two cores with the cluster: its own CPU per call dilutes the cluster's ratio.
    const clientUs = sides.map((s) => {
      const list = samples.get(s.name)!;
      return (list.reduce((sum, x) => sum + x.clientCpuS, 0) / list.reduce((sum, x) => sum + x.done, 0)) * 1e6;
    });
    return (
      `${first}\n\n${table(rows, 'client, any node')}\n` +
      `routed / any node: ${ratio.toFixed(2)} (target >= 1.5); routed calls ${stats.routed} of ${stats.calls}, ` +
      `writes found forwarded ${stats.forwarded}; cluster pids ${pids.join(', ')}\n` +
      `CPU per call of this process (client and workers): ${sides.map((s, i) => `${s.name} ${clientUs[i]!.toFixed(1)} µs`).join(', ')}`
    );
  } finally {
    await Promise.all(sides.map((s) => s.client.close()));
  }
}

/**
 * `concurrency` workers writing keys in turn for `seconds` (or, with
 * `passes`, until every key was written that many times).
 */
async function run(
  client: KvClient,
  clusterPids: readonly number[],
  keys: readonly string[],
  concurrency: number,
  seconds: number,
  passes?: number,
): Promise<Sample> {
  const clusterBefore = cpuOf(clusterPids);
  const clientBefore = process.cpuUsage();
  const started = performance.now();
  const until = started + seconds * 1000;
  const total = passes === undefined ? Infinity : passes * keys.length;
  const latencies: number[] = [];
  let next = 0;
  let failures = 0;
  const worker = async (): Promise<void> => {
    while (next < total && (passes !== undefined || performance.now() < until)) {
      const key = keys[next++ % keys.length]!;
      const sent = performance.now();
      try {
        await client.put(key, VALUE, { contentType: 'application/octet-stream' });
        latencies.push(performance.now() - sent);
      } catch {
        failures++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  const used = process.cpuUsage(clientBefore);
  return {
    done: latencies.length,
    failures,
    seconds: elapsed,
    p50: at(0.5),
    p99: at(0.99),
    clusterCpuS: cpuOf(clusterPids) - clusterBefore,
    clientCpuS: (used.user + used.system) / 1e6,
  };
}
