import { execFile } from 'node:child_process';
import { join } from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import {
  CONFIGS_DIR,
  REQUEST_TIMEOUT_MS,
  clusterOf,
  freePort,
  keyPath,
  loopbackHosts,
  readTopology,
  request,
  startUp,
  storedKeys,
  tempDir,
} from './helpers/cluster.js';
import type { UpNode } from './helpers/cluster.js';
import { http, waitFor } from './helpers/http.js';
import type { TestResponse } from './helpers/http.js';

/**
 * The KeyShift topology end to end (configs/keyshift.json, unchanged): three
 * `kvmesh up` processes on loopback, Kademlia in mode shift over protobuf on
 * UDP, and the KeyShift client API, `GET`/`PUT /keys/<key>`, on each node's port.
 */
const CONFIG = join(CONFIGS_DIR, 'keyshift.json');
const HOSTS = loopbackHosts(187, 3);
const IDS = ['n1', 'n2', 'n3'];
const OVERLAY_TIMEOUT_MS = 30_000;

interface KeyShiftNode extends UpNode {
  readonly facades?: { name: string; url: string; examples: string[] }[];
}

interface Cluster {
  readonly nodes: readonly KeyShiftNode[];
  url(id: string): string;
}

/** `kvmesh up configs/keyshift.json --nodes 3`, until every node knows the two others. */
async function upKeyShift(t: ExecutionContext, name: string): Promise<Cluster> {
  const config = await readTopology('keyshift.json');
  t.is(config['placement'].name, 'kademlia');
  t.is(config['placement'].options.mode, 'shift');
  t.is(config['transport'].name, 'udp');
  t.is(config['codec'].name, 'protobuf');
  t.deepEqual(config['facades'], [{ name: 'keyshift' }]);
  const dir = await tempDir(t, name);
  const port = await freePort(HOSTS, true);
  const up = await startUp(t, CONFIG, ['--nodes', '3', '--port', String(port), '--host-base', HOSTS[0]!, '-d', dir]);
  const nodes = up.nodes as KeyShiftNode[];
  // Listed as each became ready; the tests address them by id.
  t.deepEqual(nodes.map((n) => n.id).sort(), IDS);
  const url = (id: string): string => nodes.find((n) => n.id === id)!.url;
  await waitFor(
    'every node to know the two others, in its routing table and as alive SWIM members',
    async () => {
      for (const id of IDS) {
        const view = await clusterOf(url(id));
        if (view.placement['contacts'] !== 2) return false;
        if (view.members.filter((m) => m.state === 'alive').length !== 3) return false;
      }
      return true;
    },
    OVERLAY_TIMEOUT_MS,
    50,
  );
  t.log(`3 nodes on ${HOSTS[0]}..${HOSTS[2]}:${port}: ready in ${up.readyMs} ms, overlay formed`);
  return { nodes, url };
}

/** What a curl line answered: its status line, headers (lower-case names) and body. */
interface CurlAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

let curlPresent: Promise<boolean> | undefined;

/** Runs a printed `curl -i ...` line as a shell would; where no curl is installed, sends what curl would. */
async function runCurl(t: ExecutionContext, line: string): Promise<CurlAnswer> {
  curlPresent ??= new Promise((resolve) => execFile('curl', ['--version'], (err) => resolve(err === null)));
  if (!(await curlPresent)) {
    t.log(`no curl on this machine: sending what \`${line}\` sends`);
    return asCurl(await sendLikeCurl(line));
  }
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile('sh', ['-c', line], { timeout: REQUEST_TIMEOUT_MS }, (err, out, errOut) =>
      err === null ? resolve(out) : reject(new Error(`${line}: ${err.message} ${errOut}`)),
    ),
  );
  const split = stdout.indexOf('\r\n\r\n');
  const head = stdout.slice(0, split).split('\r\n');
  const headers: Record<string, string> = {};
  for (const field of head.slice(1)) {
    const colon = field.indexOf(':');
    headers[field.slice(0, colon).trim().toLowerCase()] = field.slice(colon + 1).trim();
  }
  return { status: Number(head[0]!.split(' ')[1]), headers, body: stdout.slice(split + 4) };
}

/** The request of a `curl -i [-X METHOD] [--data-binary 'BODY'] URL` line (the shapes the facade prints). */
function sendLikeCurl(line: string): Promise<TestResponse> {
  const words = [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
  let method: string | undefined;
  let body: string | undefined;
  let target = '';
  for (let i = 1; i < words.length; i++) {
    if (words[i] === '-X') method = words[++i];
    else if (words[i] === '--data-binary') body = words[++i];
    else if (!words[i]!.startsWith('-')) target = words[i]!;
  }
  const url = new URL(target);
  return request(url.origin, url.pathname + url.search, {
    method: method ?? (body === undefined ? 'GET' : 'POST'),
    // curl's --data-binary sends this type unless told otherwise.
    ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
  });
}

function asCurl(res: TestResponse): CurlAnswer {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) headers[name] = String(value);
  return { status: res.status, headers, body: res.body.toString('utf8') };
}

interface Ownership {
  readonly owned: number[];
  readonly stored: number[];
  readonly shiftsIn: number[];
  readonly shiftsOut: number[];
  readonly forwards: number[];
}

/** Who owns what, as each node's placement reports it (`GET /v1/cluster`) and its storage holds it (`/metrics`). */
async function ownership(cluster: Cluster): Promise<Ownership> {
  const views = await Promise.all(IDS.map((id) => clusterOf(cluster.url(id))));
  return {
    owned: views.map((v) => v.placement['owned'] as number),
    stored: await Promise.all(IDS.map((id) => storedKeys(cluster.url(id)))),
    shiftsIn: views.map((v) => v.placement['shifts'].shiftsIn as number),
    shiftsOut: views.map((v) => v.placement['shifts'].shiftsOut as number),
    forwards: views.map((v) => v.placement['forwards'] as number),
  };
}

test.serial("kvmesh up prints the KeyShift curl lines, and they work as written at any node's address", async (t) => {
  const cluster = await upKeyShift(t, 'keyshift-curl');
  for (const node of cluster.nodes) {
    t.deepEqual(node.facades, [
      {
        name: 'keyshift',
        url: node.url,
        examples: [
          `curl -i -X PUT --data-binary 'hello' ${node.url}/keys/greeting`,
          `curl -i ${node.url}/keys/greeting`,
        ],
      },
    ]);
  }
  const [put, get] = cluster.nodes.find((n) => n.id === 'n1')!.facades![0]!.examples;
  const written = await runCurl(t, put!);
  t.is(written.status, 200);
  t.is(written.body, '', 'KeyShift answers a write with its status alone');
  t.is(written.headers['content-length'], '0');
  t.is(written.headers['content-type'], undefined);
  // The GET line as printed, then with the address of each other node: each answers the value.
  for (const id of IDS) {
    const line = get!.replace(cluster.url('n1'), cluster.url(id));
    const read = await runCurl(t, line);
    t.is(read.status, 200, line);
    t.is(read.headers['content-type'], 'application/octet-stream');
    t.is(read.body, 'hello', line);
  }
  // The same lines' method and path for the failures a user meets first.
  const missing = await runCurl(t, get!.replace('/keys/greeting', '/keys/no-such-key'));
  t.is(missing.status, 404);
  t.is(missing.headers['content-type'], 'application/problem+json; charset=utf-8');
  t.deepEqual(JSON.parse(missing.body), {
    type: 'https://tools.ietf.org/html/rfc9110#section-15.5.5',
    title: 'Not Found',
    status: 404,
    detail: 'key "no-such-key" not found',
    code: 'KVMESH_ERR_HTTP_KEY_NOT_FOUND',
  });
  const deleted = await runCurl(t, get!.replace('curl -i', 'curl -i -X DELETE'));
  t.is(deleted.status, 405);
  t.is(deleted.headers['allow'], 'GET, HEAD, PUT');
  t.is((await runCurl(t, get!)).body, 'hello', 'the refused DELETE removed nothing');
});

test.serial('the value follows its reader: PUT at n1, GET at n2 then n3, ownership moving each time', async (t) => {
  const cluster = await upKeyShift(t, 'keyshift-follow');
  const started = Date.now();
  const put = await request(cluster.url('n1'), '/keys/cart', { method: 'PUT', body: 'apples' });
  t.is(put.status, 200);
  t.like(await ownership(cluster), { owned: [1, 0, 0], stored: [1, 0, 0] }, 'a new key is owned where it was written');

  const atN2 = await request(cluster.url('n2'), '/keys/cart');
  t.is(atN2.status, 200);
  t.is(atN2.headers['content-type'], 'application/octet-stream');
  t.is(atN2.body.toString(), 'apples');
  t.deepEqual(
    await ownership(cluster),
    { owned: [0, 1, 0], stored: [0, 1, 0], shiftsIn: [0, 1, 0], shiftsOut: [1, 0, 0], forwards: [1, 0, 0] },
    'n1 handed the key to its reader n2, kept no copy, and forwards to it',
  );

  const atN3 = await request(cluster.url('n3'), '/keys/cart');
  t.is(atN3.status, 200);
  t.is(atN3.body.toString(), 'apples');
  t.deepEqual(
    await ownership(cluster),
    { owned: [0, 0, 1], stored: [0, 0, 1], shiftsIn: [0, 1, 1], shiftsOut: [1, 1, 0], forwards: [1, 1, 0] },
    'n2 handed it on to n3',
  );
  // The native API of the owner serves the same record, stored as bytes, without moving it.
  const native = await request(cluster.url('n3'), keyPath('cart'));
  t.is(native.status, 200);
  t.is(native.body.toString(), 'apples');
  t.is(native.headers['content-type'], 'application/octet-stream');

  // A write moves the key too: back at n1 with the new value, which n2 then reads.
  t.is((await request(cluster.url('n1'), '/keys/cart', { method: 'PUT', body: 'pears' })).status, 200);
  t.like(await ownership(cluster), { owned: [1, 0, 0], stored: [1, 0, 0] });
  const again = await http(cluster.url('n2'), '/keys/cart');
  t.is(again.body.toString(), 'pears');
  t.like(await ownership(cluster), { owned: [0, 1, 0], stored: [0, 1, 0] });
  t.log(`4 hand-overs through the KeyShift API in ${Date.now() - started} ms`);
});
