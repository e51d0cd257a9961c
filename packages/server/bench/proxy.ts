import { pidsOf, startPlainProxy } from './support/children.js';
import { benchKeys, header, measure, populate, table } from './support/load.js';
import { replicasOf, startCluster, storedKeys } from './support/cluster.js';
import type { RingOptions } from './support/cluster.js';
import type { BenchSettings } from './support/settings.js';

/** One replica per key: every key has exactly one owner, and the other node has to ask it. */
const PLACEMENT: RingOptions = { mode: 'ring', replicationFactor: 1, writeQuorum: 1, readQuorum: 1 };
/** Replica requests are encoded so, as in configs/ring-local.json. */
const CODEC = 'msgpack';
/** This bench's loopback range (127.0.0.2 and .3, the plain proxy on .4). */
const FIRST_HOST = 2;
const PLAIN_PROXY_HOST = '127.0.0.4';

/**
 * GET of keys that node n1 owns, sent in alternating rounds to n1 itself,
 * to a plain Koa proxy in front of n1 (the cost of one more hop with
 * nothing of kvmesh in it), and to n2, which holds none of the keys and
 * reads each from n1 over the transport (one `kvmesh.kv.Get` per request).
 * Prints both proxied rates as ratios to the direct one.
 */
export async function proxyBench(dir: string, settings: BenchSettings): Promise<string> {
  const nodes = await startCluster(
    dir,
    2,
    { placement: PLACEMENT, codec: CODEC, firstHost: FIRST_HOST },
    settings.nodeArgs,
  );
  const [owner, other] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  // Candidate keys until `settings.keys` of them are the owner's (about half are).
  const candidates = benchKeys(settings.keys * 4);
  const replicas = await replicasOf(
    nodes.map((n) => n.id),
    PLACEMENT,
    candidates,
  );
  const keys = candidates.filter((key) => replicas.get(key)![0] === owner.id).slice(0, settings.keys);
  if (keys.length < settings.keys)
    throw new Error(`only ${keys.length} of ${candidates.length} keys are on ${owner.id}`);
  await populate(owner.url, keys);
  // The cluster must agree with the placement computed here, or the figures mean nothing.
  const [held, elsewhere] = await Promise.all([storedKeys(owner.url), storedKeys(other.url)]);
  if (held !== keys.length || elsewhere !== 0) {
    throw new Error(
      `expected ${keys.length} keys on ${owner.id} and none on ${other.id}, found ${held} and ${elsewhere}`,
    );
  }
  const first = header(
    'proxy',
    `GET of ${keys.length} keys owned by ${owner.id}, at ${owner.id}, through a plain Koa proxy and through ${other.id} (2 nodes, ring, replicationFactor 1, http transport, ${CODEC} codec)`,
    settings,
  );
  const plain = await startPlainProxy(owner.url, PLAIN_PROXY_HOST);
  const direct = `at owner (${owner.id})`;
  const servers = pidsOf(...nodes.map((n) => n.child), plain.child);
  const rows = await measure(
    [
      { name: direct, urls: [owner.url], keys: [keys], pids: servers },
      { name: 'plain Koa proxy', urls: [plain.url], keys: [keys], pids: servers },
      { name: `through ${other.id}`, urls: [other.url], keys: [keys], pids: servers },
    ],
    'GET',
    settings,
  );
  return `${first}\n\n${table(rows, direct)}`;
}
