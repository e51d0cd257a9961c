import { readFile } from 'node:fs/promises';
import test from 'ava';
import { http } from './helpers/http.js';
import { startTestServer } from './helpers/node.js';

// deploy/grafana/kvmesh-dashboard.json: every panel queries metrics a node exports.

const DASHBOARD = new URL('../../../../deploy/grafana/kvmesh-dashboard.json', import.meta.url);

interface Panel {
  readonly id: number;
  readonly title: string;
  readonly gridPos: { readonly x: number; readonly y: number; readonly w: number; readonly h: number };
  readonly targets: readonly { readonly expr: string; readonly refId: string }[];
}

/** The metric families an expression reads (a histogram's _bucket, _sum and _count are its family). */
function familiesOf(expr: string): string[] {
  const names = expr.match(/\b(?:kvmesh|process|nodejs)_[a-z0-9_]+\b/g) ?? [];
  return names.map((n) => n.replace(/_(bucket|sum|count)$/, ''));
}

test('every panel of the Grafana dashboard queries metrics a node exports, on a sane grid', async (t) => {
  const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as {
    uid: string;
    templating: { list: { name: string }[] };
    panels: Panel[];
  };
  t.is(dashboard.uid, 'kvmesh-cluster');
  t.deepEqual(
    dashboard.templating.list.map((v) => v.name),
    ['datasource', 'instance'],
  );
  const panels = dashboard.panels;
  t.true(panels.length >= 10);
  t.is(new Set(panels.map((p) => p.id)).size, panels.length, 'panel ids are unique');
  for (const p of panels) {
    t.true(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the 24-column grid`);
    t.true(p.targets.length > 0, `${p.title} has a query`);
  }

  const { url } = await startTestServer(t);
  await http(url, '/v1/kv/k', { method: 'PUT', body: 'v' });
  const exported = new Set(
    [...(await http(url, '/metrics')).body.toString().matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!),
  );
  const queried = new Set(panels.flatMap((p) => p.targets.flatMap((target) => familiesOf(target.expr))));
  t.true(queried.size >= 15, `${queried.size} metric families queried`);
  t.deepEqual(
    [...queried].filter((name) => !exported.has(name)),
    [],
    'every queried family is exported',
  );
  t.log(`${panels.length} panels over ${queried.size} metric families`);
});
