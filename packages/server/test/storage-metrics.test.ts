import test from 'ava';
import { ServerMetrics } from '../src/metrics.js';

test('storage figures are exported as kvmesh_storage_<name>: counters for _total, gauges otherwise', async (t) => {
  let evictions = 3;
  const metrics = new ServerMetrics({ storage: () => ({ evictions_total: evictions, tombstones: 7 }) });
  evictions = 5;
  const text = await metrics.text();
  t.regex(text, /^# TYPE kvmesh_storage_evictions_total counter$/m);
  t.regex(text, /^kvmesh_storage_evictions_total 5$/m, 'read at scrape time');
  t.regex(text, /^# TYPE kvmesh_storage_tombstones gauge$/m);
  t.regex(text, /^kvmesh_storage_tombstones 7$/m);
});

test('a storage figure reported later is exported from the next scrape on; unusable names are left out', async (t) => {
  let figures: Record<string, number> = { a_total: 1 };
  const metrics = new ServerMetrics({
    storage: () => figures,
    sizeBytes: async () => 42,
  });
  t.notRegex(await metrics.text(), /kvmesh_storage_late/);
  figures = { a_total: 2, late: 9, 'bad-name': 1, bytes: 1 };
  const text = await metrics.text();
  t.regex(text, /^kvmesh_storage_a_total 2$/m);
  t.regex(text, /^kvmesh_storage_late 9$/m);
  t.notRegex(text, /bad-name/);
  t.regex(text, /^kvmesh_storage_bytes 42$/m, 'a figure cannot shadow the core storage metrics');
  figures = {};
  t.notRegex(await metrics.text(), /^kvmesh_storage_late \d/m, 'a figure no longer reported has no sample');
});
