import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import type { NodeServer } from '../src/node-server.js';
import { http, waitFor } from './helpers/http.js';
import type { TestResponse } from './helpers/http.js';
import { startTestServer, testConfig } from './helpers/node.js';

interface ClusterJson {
  self: { id: string; address: string };
  members: { id: string; address: string; state: string }[];
}

const JSON_HEADERS = { 'content-type': 'application/json' };

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kvmesh-view-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A node with an administered (static) membership that starts as a view of
 * itself alone, with the cluster's secret: without one, a node alone in its
 * view with no seed takes no internal frames, so no view could reach it.
 */
async function staticNode(t: ExecutionContext, id: string, host: string): Promise<NodeServer> {
  const dataDir = join(await tempDir(t), id);
  return startTestServer(
    t,
    testConfig(host, {
      node: { id, address: `${host}:0`, dataDir },
      membership: { name: 'static', options: { syncIntervalMs: 200 } },
      cluster: { secrets: ['view-test-cluster-secret'] },
    }),
  );
}

function putView(server: NodeServer, body: string): Promise<TestResponse> {
  return http(server.url, '/v1/cluster/view', { method: 'PUT', body, headers: JSON_HEADERS });
}

async function cluster(server: NodeServer): Promise<ClusterJson> {
  return (await http(server.url, '/v1/cluster')).json<ClusterJson>();
}

test('PUT /v1/cluster/view turns a one-node static view into two nodes, and both see it', async (t) => {
  const a = await staticNode(t, 'a', '127.0.0.41');
  const b = await staticNode(t, 'b', '127.0.0.42');
  t.is((await cluster(a)).members.length, 1, 'a starts alone');
  // a is already in the view, so its plain address keeps its id; b is named, as its node.id is b.
  const view = [a.node.info.address, `b@${b.node.info.address}`];

  const res = await putView(a, JSON.stringify({ view }));
  t.is(res.status, 200, res.body.toString());
  const answered = res.json<ClusterJson>();
  t.deepEqual(answered.members.map((m) => m.id).sort(), ['a', 'b'], 'the answer is the new cluster');

  for (const node of [a, b]) {
    await waitFor(`${node.node.info.address} to list both members alive`, async () => {
      const { members } = await cluster(node);
      return members.length === 2 && members.every((m) => m.state === 'alive');
    });
  }
  const seen = await cluster(b);
  t.deepEqual(seen.members.map((m) => m.id).sort(), ['a', 'b']);
  t.is(seen.members.find((m) => m.id === 'a')!.address, `http://${a.node.info.address}`);
});

test('a view change cannot rename a member: another id at its address is refused, and nothing changes', async (t) => {
  const a = await staticNode(t, 'a', '127.0.0.48');
  const res = await putView(a, JSON.stringify({ view: [`z@${a.node.info.address}`] }));
  t.is(res.status, 400);
  t.is(res.json().error.code, 'KVMESH_ERR_MEMBERSHIP_VIEW_INVALID');
  t.regex(res.json().error.message, /is member 'a', which a view change cannot rename to 'z'/);
  t.deepEqual(
    (await cluster(a)).members.map((m) => m.id),
    ['a'],
  );
});

test('bad view-change bodies answer 400 with a JSON error and change nothing', async (t) => {
  const a = await staticNode(t, 'a', '127.0.0.43');
  const self = a.node.info.address;
  const cases: [string, string][] = [
    ['{"view":', 'KVMESH_ERR_HTTP_BAD_REQUEST'],
    ['', 'KVMESH_ERR_HTTP_BAD_REQUEST'],
    ['[]', 'KVMESH_ERR_HTTP_BAD_REQUEST'],
    ['"127.0.0.1:1"', 'KVMESH_ERR_HTTP_BAD_REQUEST'],
    ['{"members":["127.0.0.1:1"]}', 'KVMESH_ERR_HTTP_BAD_REQUEST'],
    [`{"view":"${self}"}`, 'KVMESH_ERR_HTTP_BAD_REQUEST'],
    [`{"view":["${self}"],"epoch":3}`, 'KVMESH_ERR_HTTP_BAD_REQUEST'],
    ['{"view":[]}', 'KVMESH_ERR_MEMBERSHIP_VIEW_INVALID'],
    [`{"view":["${self}",7]}`, 'KVMESH_ERR_MEMBERSHIP_VIEW_INVALID'],
    [`{"view":["${self}","not an address"]}`, 'KVMESH_ERR_MEMBERSHIP_VIEW_INVALID'],
  ];
  for (const [body, code] of cases) {
    const res = await putView(a, body);
    t.is(res.status, 400, body);
    t.regex(String(res.headers['content-type']), /^application\/json/);
    t.is(res.json().error.code, code, body);
  }
  const { members } = await cluster(a);
  t.deepEqual(
    members.map((m) => m.id),
    ['a'],
    'the view is unchanged',
  );
  const get = await http(a.url, '/v1/cluster/view');
  t.is(get.status, 405);
  t.is(get.headers['allow'], 'PUT');
});

test('a node whose membership takes no view answers 409 KVMESH_ERR_MEMBERSHIP_VIEW_UNSUPPORTED', async (t) => {
  const discovered = await startTestServer(
    t,
    testConfig('127.0.0.44', { membership: { name: 'swim', options: {} }, transport: { name: 'udp' } }),
  );
  const alone = await startTestServer(t, testConfig('127.0.0.45'));
  for (const server of [discovered, alone]) {
    const res = await putView(server, JSON.stringify({ view: [server.node.info.address, '127.0.0.46:7000'] }));
    t.is(res.status, 409);
    t.is(res.json().error.code, 'KVMESH_ERR_MEMBERSHIP_VIEW_UNSUPPORTED');
    t.regex(res.json().error.message, /nothing was changed/);
    t.is((await cluster(server)).members.length, 1);
  }
});
