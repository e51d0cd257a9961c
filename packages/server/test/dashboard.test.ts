/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { chromium } from 'playwright-core';
import {
  ProcessCluster,
  allAlive,
  clusterOf,
  freePort,
  loopbackHosts,
  putValue,
  readTopology,
  tempDir,
  writeConfig,
} from './helpers/cluster.js';
import { http, waitFor } from './helpers/http.js';

// The dashboard (GET /ui) in Debian's Chromium, driven by playwright-core (no browser download).

/** Where Chromium is: KVMESH_CHROMIUM, else Debian's package. */
const CHROMIUM = [process.env['KVMESH_CHROMIUM'], '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (path): path is string => path !== undefined && path !== '' && existsSync(path),
);
const HOSTS = loopbackHosts(90, 3);
const IDS = ['n1', 'n2', 'n3'];
/** SWIM made faster so that a death shows in seconds (as swim-cluster.test.ts does). */
const FAST_SWIM = { probeIntervalMs: 300, probeTimeoutMs: 150, pushPullIntervalMs: 9_000 };
/** Three processes and a browser on two busy cores. */
const START_TIMEOUT_MS = 60_000;
/** Detection takes about 3.6 s with these timings; the page polls every second; generous slack on a loaded machine. */
const DEAD_ON_PAGE_TIMEOUT_MS = 30_000;

const title =
  'the dashboard draws the members and the ring of a 3-node cluster, and shows a killed node dead' +
  (CHROMIUM === undefined
    ? ' (skipped: no Chromium found at /usr/bin/chromium or KVMESH_CHROMIUM; install Debian\'s "chromium" package)'
    : '');

(CHROMIUM === undefined ? test.skip : test)(title, async (t) => {
  const config = await readTopology('ring-local.json');
  config['membership'].options = { ...config['membership'].options, ...FAST_SWIM };
  const dir = await tempDir(t, 'ui');
  const file = await writeConfig(dir, 'ring-local.json', config);
  const port = await freePort(HOSTS);
  const cluster = new ProcessCluster({
    configFile: file,
    ids: IDS,
    hosts: HOSTS,
    port,
    dir,
    join: [0, 1].map((i) => `${HOSTS[i]}:${port}`),
  });
  await Promise.all(IDS.map((id) => cluster.start(t, id)));
  await waitFor('3 nodes ready and alive everywhere', () => allAlive(cluster, IDS), START_TIMEOUT_MS, 100);
  const url = cluster.url('n1');
  for (let i = 0; i < 20; i++) t.is((await putValue(url, `k${i}`, `v${i}`)).status, 201);

  const page = await http(url, '/ui');
  t.is(page.status, 200);
  t.regex(String(page.headers['content-type']), /^text\/html/);
  t.regex(String(page.headers['content-security-policy']), /default-src 'self'/);

  const browser = await chromium.launch({ executablePath: CHROMIUM!, headless: true, args: ['--no-sandbox'] });
  t.teardown(() => browser.close());
  const tab = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors: string[] = [];
  const elsewhere: string[] = [];
  tab.on('pageerror', (err) => errors.push(err.message));
  tab.on('console', (message) => void (message.type() === 'error' && errors.push(message.text())));
  tab.on('request', (request) => void (!request.url().startsWith(url) && elsewhere.push(request.url())));
  await tab.goto(`${url}/ui`);

  // The members, each alive, with their incarnations.
  await tab.waitForFunction(
    (ids) =>
      ids.every(
        (id) => document.querySelector(`#members tr[data-member="${id}"]`)?.getAttribute('data-state') === 'alive',
      ),
    IDS,
    { timeout: START_TIMEOUT_MS },
  );
  const rows = await tab.$$eval('#members tbody tr', (trs) =>
    trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')),
  );
  t.is(rows.length, 3);
  t.true(
    rows.every((cells) => cells[2] === 'alive' && /^\d+$/.test(cells[3] ?? '')),
    JSON.stringify(rows),
  );

  // The ring: one mark per virtual point, in the members' colors, as the placement describes it.
  const placement = (await clusterOf(url)).placement as { drawing: { shape: string; points: unknown[] } };
  t.is(placement.drawing.shape, 'ring');
  await tab.waitForSelector('#drawing svg[data-shape="ring"]');
  const points = await tab.$$eval('#drawing svg .point', (marks) => marks.map((m) => m.getAttribute('data-member')));
  t.is(points.length, placement.drawing.points.length);
  t.deepEqual([...new Set(points)].sort(), IDS);
  t.regex((await tab.textContent('#drawing-caption')) ?? '', /virtual points/);
  t.regex((await tab.textContent('#traffic')) ?? '', /keys stored here/);
  const shot = join(dir, 'dashboard.png');
  const png = await tab.screenshot({ path: shot, fullPage: true });
  t.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], 'a PNG');
  t.true(png.length > 20_000, `a screenshot with something drawn (${png.length} bytes)`);
  t.log(`screenshot: ${png.length} bytes (${(await readFile(shot)).length} on disk)`);

  // A node killed: the page shows it dead without being reloaded.
  const killedAt = Date.now();
  await cluster.stop('n3', 'SIGKILL');
  await tab.waitForFunction(
    () => document.querySelector('#members tr[data-member="n3"]')?.getAttribute('data-state') === 'dead',
    undefined,
    { timeout: DEAD_ON_PAGE_TIMEOUT_MS, polling: 100 },
  );
  t.log(`n3 shown dead on the page ${Date.now() - killedAt} ms after SIGKILL`);
  t.is(await tab.getAttribute('#members tr[data-member="n1"]', 'data-state'), 'alive');
  t.deepEqual(errors, [], 'no script errors on the page');
  t.deepEqual(elsewhere, [], 'nothing fetched from anywhere but the node');
});
