import test from 'ava';
import type { ExecutionContext } from 'ava';
import type { NodeServer } from '../src/node-server.js';
import { http, waitFor } from './helpers/http.js';
import type { TestResponse } from './helpers/http.js';
import { startTestServer, testConfig } from './helpers/node.js';

// PUT /v1/cluster/view with "parameters": checked by the placement before anything changes, then carried by the
// view to every member.

interface ClusterJson {
  members: { id: string; state: string }[];
  placement: { epoch: number; replicationFactor?: number; shards?: { members: string[] }[] };
}

const JSON_HEADERS = { 'content-type': 'application/json' };

/** A static node alone in its view, with the cluster's secret (so a view can reach it), under `placement`. */
function staticNode(
  t: ExecutionContext,
  id: string,
  host: string,
  placement: Record<string, unknown>,
): Promise<NodeServer> {
  return startTestServer(
    t,
    testConfig(host, {
      node: { id, address: `${host}:0` },
      membership: { name: 'static', options: { syncIntervalMs: 200 } },
      placement,
      cluster: { secrets: ['view-parameters-test-secret'] },
    }),
  );
}

const SHARDS = { name: 'consistent-hash', options: { mode: 'shards', replicationFactor: 1 } };

function putView(server: NodeServer, body: unknown): Promise<TestResponse> {
  return http(server.url, '/v1/cluster/view', { method: 'PUT', body: JSON.stringify(body), headers: JSON_HEADERS });
}

async function cluster(server: NodeServer): Promise<ClusterJson> {
  return (await http(server.url, '/v1/cluster')).json<ClusterJson>();
}

test('a view change with replicationFactor reshards both nodes of the new view into one shard of two', async (t) => {
  const a = await staticNode(t, 'a', '127.0.0.71', SHARDS);
  const b = await staticNode(t, 'b', '127.0.0.72', SHARDS);
  const view = [a.node.info.address, `b@${b.node.info.address}`];
  const res = await putView(a, { view, parameters: { replicationFactor: 2 } });
  t.is(res.status, 200, res.body.toString());
  for (const node of [a, b]) {
    await waitFor(`${node.node.info.address} to place by factor 2`, async () => {
      const { placement } = await cluster(node);
      return placement.replicationFactor === 2 && placement.shards?.length === 1;
    });
  }
  const [ca, cb] = await Promise.all([cluster(a), cluster(b)]);
  t.deepEqual(ca.placement.shards?.[0]?.members, ['a', 'b']);
  t.is(ca.placement.epoch, cb.placement.epoch, 'both nodes at the same epoch');

  // A view change that names no parameters keeps them.
  const again = await putView(b, { view });
  t.is(again.status, 200, again.body.toString());
  t.is((await cluster(a)).placement.replicationFactor, 2);
});

test('parameters the placement cannot meet, does not take, or that are malformed are refused and change nothing', async (t) => {
  const a = await staticNode(t, 'a', '127.0.0.73', SHARDS);
  const self = a.node.info.address;
  const before = await cluster(a);
  const cases: [unknown, string][] = [
    [{ view: [self], parameters: { replicationFactor: 2 } }, 'KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID'],
    [{ view: [self], parameters: { replicationFactor: 0 } }, 'KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID'],
    [{ view: [self], parameters: { replicationFactor: 1.5 } }, 'KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID'],
    [{ view: [self], parameters: { shardCount: 1 } }, 'KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID'],
    [{ view: [self], parameters: [1] }, 'KVMESH_ERR_HTTP_BAD_REQUEST'],
    [{ view: [self], parameters: { replicationFactor: '1' } }, 'KVMESH_ERR_HTTP_BAD_REQUEST'],
  ];
  for (const [body, code] of cases) {
    const res = await putView(a, body);
    t.is(res.status, 400, JSON.stringify(body));
    t.is(res.json().error.code, code, JSON.stringify(body));
  }
  const after = await cluster(a);
  t.is(after.placement.epoch, before.placement.epoch, 'the placement is where it was');

  const plain = await staticNode(t, 'p', '127.0.0.74', { name: 'hash-mod' });
  const refused = await putView(plain, { view: [plain.node.info.address], parameters: { replicationFactor: 1 } });
  t.is(refused.status, 400);
  t.is(refused.json().error.code, 'KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID');
  t.regex(refused.json().error.message, /takes no view parameters/);
  const single = await staticNode(t, 's', '127.0.0.75', { name: 'single' });
  const none = await putView(single, { view: [single.node.info.address], parameters: { replicationFactor: 1 } });
  t.is(none.status, 400, 'a placement without checkViewParameters takes none: core refuses');
  t.is(none.json().error.code, 'KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID');
});
