import test from 'ava';
import { ServerMetrics } from '../src/metrics.js';
import { OPENAPI_DOCUMENT } from '../src/openapi.js';
import { KV_OPERATIONS } from '../src/routes/kv-request.js';
import { nativeRouter } from '../src/routes/native.js';
import { http } from './helpers/http.js';
import { startTestServer } from './helpers/node.js';

/** `/v1/kv/*key` → `/v1/kv/{key}`, `:id` → `{id}`. */
function template(path: string): string {
  return path.replace(/[:*]([A-Za-z0-9_]+)/g, '{$1}');
}

/** The router's operations plus the key routes served before it. */
function routedOperations(): Set<string> {
  const router = nativeRouter({
    metrics: new ServerMetrics(),
    ready: () => true,
    cluster: () => ({ self: { id: 'x', address: 'x:1' }, members: [], placement: {} }),
  });
  const operations = new Set<string>(KV_OPERATIONS);
  for (const layer of router.stack) {
    for (const method of layer.methods) operations.add(`${method} ${template(String(layer.path))}`);
  }
  return operations;
}

function documentOperations(): Set<string> {
  const operations = new Set<string>();
  for (const [path, item] of Object.entries(OPENAPI_DOCUMENT.paths)) {
    for (const method of Object.keys(item)) {
      if (method !== 'parameters') operations.add(`${method.toUpperCase()} ${path}`);
    }
  }
  return operations;
}

test('every router route is in the OpenAPI document and every documented operation is routed', (t) => {
  const routed = routedOperations();
  const documented = documentOperations();
  // The router answers HEAD for every GET; the document lists HEAD where it means something different.
  const withoutImplicitHead = [...routed].filter((op) => !op.startsWith('HEAD ') || documented.has(op));
  t.deepEqual(withoutImplicitHead.sort(), [...documented].sort());
  for (const op of documented) if (op.startsWith('HEAD ')) t.true(routed.has(op), op);
  t.is(OPENAPI_DOCUMENT.openapi, '3.1.0');
});

test('GET /v1/openapi.json serves the document', async (t) => {
  const { url } = await startTestServer(t);
  const res = await http(url, '/v1/openapi.json');
  t.is(res.status, 200);
  t.deepEqual(res.json(), JSON.parse(JSON.stringify(OPENAPI_DOCUMENT)));
});
