import { Agent, request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { benchKeys, VALUE } from './support/load.js';
import { replicasOf, startCluster, storedKeys, waitReady } from './support/cluster.js';
import type { ClusterNode, RingOptions } from './support/cluster.js';
import type { BenchSettings } from './support/settings.js';

/** One replica per key, so every moved key is one record copied and one purged. */
const PLACEMENT: RingOptions = { mode: 'ring', replicationFactor: 1, writeQuorum: 1, readQuorum: 1 };
const CODEC = 'msgpack';
/** This bench's loopback range (127.0.0.9 to .11). */
const FIRST_HOST = 9;
/** Concurrent PUTs while loading the keys. */
const LOAD_LANES = 32;
/** The move must settle within this, or the bench fails. */
const SETTLE_TIMEOUT_MS = 300_000;
const POLL_MS = 20;

/**
 * Rebalancing on a view change: n1 and n2 hold BENCH_REBALANCE_KEYS keys of
 * 100 bytes (static view of the two), n3 runs alone; then the view of all
 * three is sent to n1 (`PUT /v1/cluster/view`) and the clock runs until
 * every node holds exactly the keys the new view gives it and reports no
 * move in progress. Prints the moved keys per second, next to the rate at
 * which the same cluster took the keys from clients (HTTP PUTs, measured in
 * the same run).
 */
export async function rebalanceBench(dir: string, settings: BenchSettings): Promise<string> {
  const count = settings.rebalanceKeys;
  const kv = settings.rebalanceBatch === undefined ? undefined : { batchSize: settings.rebalanceBatch };
  const two = await startCluster(
    dir,
    2,
    { placement: PLACEMENT, codec: CODEC, firstHost: FIRST_HOST, ...(kv ? { kv } : {}) },
    settings.nodeArgs,
  );
  const [third] = await startCluster(
    dir,
    1,
    {
      placement: PLACEMENT,
      codec: CODEC,
      firstHost: FIRST_HOST + 2,
      firstId: 3,
      port: two[0]!.port,
      join: two.map((n) => n.member.slice(n.member.indexOf('@') + 1)),
      ...(kv ? { kv } : {}),
    },
    settings.nodeArgs,
  );
  const nodes = [...two, third!];
  const keys = benchKeys(count, 'rb-');
  const loadStarted = performance.now();
  await putAll(two, keys);
  const loadS = (performance.now() - loadStarted) / 1000;

  const after = await replicasOf(
    nodes.map((n) => n.id),
    PLACEMENT,
    keys,
  );
  const expected = new Map(nodes.map((n) => [n.id, 0]));
  for (const owners of after.values()) expected.set(owners[0]!, expected.get(owners[0]!)! + 1);
  const moving = expected.get(third!.id)!;
  const load = loadavg()[0]!;

  const started = performance.now();
  const res = await fetch(`${two[0]!.url}/v1/cluster/view`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ view: nodes.map((n) => n.member) }),
  });
  if (res.status !== 200) throw new Error(`PUT /v1/cluster/view: HTTP ${res.status} ${await res.text()}`);
  await waitReady(third!.url);
  // Polled through GET /v1/cluster, which costs the nodes little; the record
  // counts (from /metrics, which costs more) only once the moves look done.
  let counts: number[] = [];
  for (;;) {
    const views = await Promise.all(nodes.map((n) => movementOf(n.url)));
    if (views.every((v) => v.idle) && views[2]!.received >= moving) {
      counts = await Promise.all(nodes.map((n) => storedKeys(n.url)));
      if (nodes.every((n, i) => counts[i] === expected.get(n.id))) break;
    }
    if (performance.now() - started > SETTLE_TIMEOUT_MS) {
      throw new Error(`no settled layout after ${SETTLE_TIMEOUT_MS} ms: stored ${counts.join(', ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  const settledS = (performance.now() - started) / 1000;
  return [
    `kvmesh bench rebalance: view change n1,n2 -> n1,n2,n3 with ${count} keys of 100 bytes (ring, replicationFactor 1, ` +
      `lmdb syncWrites, http transport, ${CODEC} codec, kv.batchSize ${settings.rebalanceBatch ?? 'default'}); node ${process.version}, ` +
      `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, load average ${load.toFixed(2)}`,
    '',
    `keys moved to n3          ${moving}`,
    `settled after             ${settledS.toFixed(2)} s (view sent -> every node holds exactly its keys, no move in progress)`,
    `rebalance                 ${(moving / settledS).toFixed(0)} keys/s`,
    `client PUTs (same keys)   ${(count / loadS).toFixed(0)} keys/s (${LOAD_LANES} connections over n1 and n2)`,
    `ratio                     ${(moving / settledS / (count / loadS)).toFixed(2)}`,
    `stored after              ${nodes.map((n, i) => `${n.id} ${counts[i]}`).join(', ')}`,
  ].join('\n');
}

/** PUTs every key, LOAD_LANES at a time over keep-alive connections spread over `nodes`. */
async function putAll(nodes: readonly ClusterNode[], keys: readonly string[]): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: LOAD_LANES });
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: LOAD_LANES }, async (_, lane) => {
        const url = new URL(nodes[lane % nodes.length]!.url);
        while (next < keys.length) {
          const key = keys[next++]!;
          const status = await put(agent, url, key);
          if (status !== 201 && status !== 200) throw new Error(`PUT ${key}: HTTP ${status}`);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
}

function put(agent: Agent, url: URL, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: 'PUT',
        path: `/v1/kv/${encodeURIComponent(key)}`,
        headers: { 'content-type': 'application/octet-stream', 'content-length': VALUE.length },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(VALUE);
  });
}

/** Whether a node reports no move in progress, and how many moved records it stored. */
async function movementOf(url: string): Promise<{ idle: boolean; received: number }> {
  const view = (await (await fetch(`${url}/v1/cluster`)).json()) as {
    movement?: { state?: string; keys?: { received?: number } };
  };
  return { idle: view.movement?.state !== 'moving', received: view.movement?.keys?.received ?? 0 };
}
