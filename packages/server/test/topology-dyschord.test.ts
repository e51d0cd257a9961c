import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import test from 'ava';
import { clusterOf, freePort, inParallel, readTopology, request, tempDir, writeConfig } from './helpers/cluster.js';
import { startCli } from './helpers/cli.js';
import type { StartedNode } from './helpers/cli.js';
import { waitFor } from './helpers/http.js';

/**
 * configs/dyschord.json started the way dyschord's servers are: one host,
 * a port per node, `--id` and `--port` on the command line, the peers to
 * join in the facade's `cloud_members`. The heartbeat is made faster so the
 * test takes seconds.
 */
const TOPOLOGY = 'dyschord.json';
const HOST = '127.0.0.160';
const IDS = ['1', '2', '3', '4'];
const VICTIM = '3';
const KEYS = 200;
const HEARTBEAT_S = 0.2;
const PYTHON = spawnSync('python3', ['--version']).status === 0 ? 'python3' : undefined;
/** Four processes starting on two busy cores. */
const START_TIMEOUT_MS = 30_000;
/** Stabilization takes a few heartbeats; a loaded machine gets many times that. */
const STABILIZE_TIMEOUT_MS = 30_000;
const PYTHON_TIMEOUT_MS = 60_000;

/**
 * The seed's client usage (seeds/003, "Running the client") with a stock
 * XML-RPC client: a list of peer URLs of which at least one is up, tried in
 * turn and skipped when down, as dyschord.Client does; `store(key, value)`
 * with any JSON-encodable value; `lookup(key)`, a missing key raising KeyError.
 */
const CLIENT = `
import json, socket, sys, xmlrpc.client as x

class Client:
    def __init__(self, peers):
        self.peers = [x.ServerProxy(p, allow_none=True) for p in peers]

    def _node_method(self, method):
        for peer in self.peers:
            try:
                return method(peer)
            except (ConnectionError, socket.timeout):
                continue
        raise ConnectionError('No nodes up')

    def lookup(self, key):
        try:
            return self._node_method(lambda node: node.lookup(key))
        except x.Fault as e:
            if e.faultCode == 404:
                raise KeyError(e.faultString)
            raise

    def store(self, key, value):
        return self._node_method(lambda node: node.store(key, value))

peers, op, count = sys.argv[1].split(','), sys.argv[2], int(sys.argv[3])
client = Client(peers)
value = lambda i: {'n': i, 'text': 'value %d' % i, 'tags': ['dyschord', i % 7 == 0]}
out = {'ok': 0, 'wrong': []}
for i in range(count):
    key = 'key-%d' % i
    if op == 'store':
        client.peers = client.peers[1:] + client.peers[:1]
        client.store(key, value(i))
        out['ok'] += 1
    else:
        got = client.lookup(key)
        if got == value(i):
            out['ok'] += 1
        else:
            out['wrong'].append([key, got])
try:
    client.lookup('never-stored')
    out['missing'] = 'found'
except KeyError as e:
    out['missing'] = 'KeyError: %s' % e.args[0]
print(json.dumps(out))
`;

function python(args: readonly string[]): Promise<{ ok: number; wrong: unknown[]; missing: string }> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON!, ['-c', CLIENT, ...args], { timeout: PYTHON_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python3: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as { ok: number; wrong: unknown[]; missing: string });
    });
  });
}

interface RingView {
  readonly id: string;
  readonly successors: readonly string[];
  readonly predecessors: readonly string[];
}

/** Every node's successor names it as its predecessor, and the successors go round all of `ids`. */
async function ringClosed(nodes: ReadonlyMap<string, StartedNode>, ids: readonly string[]): Promise<boolean> {
  const views: RingView[] = (await Promise.all(ids.map((id) => clusterOf(nodes.get(id)!.url)))).map((v) => ({
    id: v.self.id,
    successors: (v.placement['successors'] as { id: string }[]).map((n) => n.id),
    predecessors: (v.placement['predecessors'] as { id: string }[]).map((n) => n.id),
  }));
  const byId = new Map(views.map((v) => [v.id, v]));
  return views.every((v) => {
    const next = byId.get(v.successors[0] ?? '');
    return next?.predecessors[0] === v.id && v.successors.length === ids.length - 1;
  });
}

test('dyschord: a stock XML-RPC client stores 200 keys on a 4-node ring and finds them all after one node is SIGKILLed', async (t) => {
  if (PYTHON === undefined) {
    t.log('python3 is not installed: skipping, since the stock XML-RPC client of this test is python3 xmlrpc.client');
    t.pass();
    return;
  }
  const config = await readTopology(TOPOLOGY);
  t.is(config['placement'].name, 'chord');
  t.is(config['membership'], undefined, 'the ring finds its nodes itself');
  const facade = config['facades'][0] as { name: string; options: Record<string, unknown> };
  t.is(facade.name, 'dyschord');
  t.deepEqual(Object.keys(facade.options).sort(), ['cloud_members', 'heartbeat', 'metric', 'node_id', 'port']);

  const ports: number[] = [];
  while (ports.length < IDS.length) {
    const port = await freePort([HOST]);
    if (!ports.includes(port)) ports.push(port);
  }
  const urls = ports.map((p) => `http://${HOST}:${p}`);
  // dyschord.conf's keys as a user adapts them: the first node as the cloud to join, a faster heartbeat.
  facade.options = { ...facade.options, cloud_members: [urls[0]], port: ports[0], heartbeat: HEARTBEAT_S };
  config['node'] = { address: `${HOST}:${ports[0]}` };
  config['placement'].options = { ...config['placement'].options, requestTimeoutMs: 1000 };
  const dir = await tempDir(t, 'dyschord');
  const file = await writeConfig(dir, TOPOLOGY, config);

  const nodes = new Map<string, StartedNode>();
  // `dyschord-server --id N --port P`, as the seed runs it.
  const start = async (i: number): Promise<void> => {
    const args = ['--config', file, '--id', IDS[i]!, '--port', String(ports[i]), '--data-dir', join(dir, IDS[i]!)];
    nodes.set(IDS[i]!, await startCli(t, args));
  };
  const started = Date.now();
  await start(0);
  await Promise.all([1, 2, 3].map(start));
  t.deepEqual(
    IDS.map((id) => nodes.get(id)!.url),
    urls,
    'each node listens on its --port, on the host of node.address',
  );
  await waitFor(
    'every node to be ready',
    async () => (await Promise.all(urls.map((u) => request(u, '/v1/ready')))).every((r) => r.status === 200),
    START_TIMEOUT_MS,
    100,
  );
  await waitFor('the ring of 4 to close', () => ringClosed(nodes, IDS), STABILIZE_TIMEOUT_MS, 100);
  const self = await clusterOf(urls[1]!);
  t.is(self.self.id, '2', '--id is the node id');
  t.like(self.placement, { heartbeatMs: HEARTBEAT_S * 1000 });
  t.log(`ring of 4 on ${HOST}:${ports.join(',')} closed ${Date.now() - started} ms after the first start`);

  const stored = await python([urls.join(','), 'store', String(KEYS)]);
  t.is(stored.ok, KEYS, `${KEYS} keys stored through the 4 nodes in turn`);
  t.is(stored.missing, 'KeyError: never-stored', "a missing key raises KeyError, as the seed's client does");

  const killedAt = Date.now();
  const victim = nodes.get(VICTIM)!;
  victim.child.kill('SIGKILL');
  t.is(await victim.exited, 'SIGKILL');
  const survivors = IDS.filter((id) => id !== VICTIM);
  await waitFor(
    `the ring to close around node ${VICTIM}`,
    () => ringClosed(nodes, survivors),
    STABILIZE_TIMEOUT_MS,
    100,
  );
  t.log(`ring of 3 closed ${Date.now() - killedAt} ms after SIGKILL`);

  // The killed node stays in the peer list: the client skips it, as dyschord.Client skips a peer that is down.
  const found = await python([[urls[2], ...urls.filter((_, i) => i !== 2)].join(','), 'lookup', String(KEYS)]);
  t.deepEqual(found.wrong, []);
  t.is(found.ok, KEYS, `all ${KEYS} keys found after SIGKILL`);
  t.log(`all ${KEYS} keys found through the survivors ${Date.now() - killedAt} ms after SIGKILL`);

  // The same data through the native API: JSON, application/json.
  const native: string[] = [];
  const keys = Array.from({ length: KEYS }, (_, i) => i);
  await inParallel(keys, 16, async (i) => {
    const url = nodes.get(survivors[i % survivors.length]!)!.url;
    const answer = await request(url, `/v1/kv/key-${i}`);
    const want = { n: i, text: `value ${i}`, tags: ['dyschord', i % 7 === 0] };
    if (
      answer.status !== 200 ||
      answer.headers['content-type'] !== 'application/json' ||
      JSON.stringify(answer.json()) !== JSON.stringify(want)
    ) {
      native.push(`key-${i}: ${answer.status} ${answer.body.toString()}`);
    }
  });
  t.deepEqual(native.slice(0, 5), [], `${native.length} of ${KEYS} keys differ through GET /v1/kv`);
});
