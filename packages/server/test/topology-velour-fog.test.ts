import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { Member } from '@kvmesh/core';
import { CONTROLLER_STATE_FILE, PartitionLayout } from '@kvmesh/plugins';
import { startCli } from './helpers/cli.js';
import {
  CONFIGS_DIR,
  clusterOf,
  freePort,
  inParallel,
  loopbackHosts,
  readTopology,
  request,
  startUp,
  storedKeys,
  tempDir,
} from './helpers/cluster.js';
import type { UpNode } from './helpers/cluster.js';
import { waitFor } from './helpers/http.js';

/**
 * Velour Fog (seeds/002) as a user runs it: `kvmesh up configs/velour-fog.json`
 * with a controller, four storage nodes and two stateless frontends; K = 2
 * replicas per SHA-1 partition; clients talk to the frontends only, through
 * the seed's own API.
 */
const TOPOLOGY = 'velour-fog.json';
/** This file's loopback range (7 nodes of `up`, a storage node and a frontend started by hand); the other cluster tests use others. */
const HOSTS = loopbackHosts(160, 9);
const KEYS = 120;
const CLIENTS = 8;
const K = 2;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

const set = (base: string, key: string, value: string) =>
  request(base, `/${encodeURIComponent(key)}`, { method: 'POST', body: value, headers: FORM });
const get = (base: string, key: string) => request(base, `/get/?key=${encodeURIComponent(key)}`);
const valueOf = (key: string): string => `value of ${key}`;

/** The storage ids holding `key` when `ids` are the storage members: what hash-mod computes on every node. */
function replicasOf(ids: readonly string[], key: string, digits: number): string[] {
  const members: Member[] = [...ids]
    .sort()
    .map((id) => ({ id, address: id, state: 'alive', incarnation: 1, meta: { role: 'storage' } }));
  const layout = new PartitionLayout(members, { digits, replicas: K, fallbacks: 0, writeQuorum: 'all', readQuorum: 1 });
  return layout.idsAt(layout.slotOf(key));
}

test('a controller, 2 frontends and 4 storage nodes with K = 2: a new storage node is ready only with its partitions, a frontend comes and goes moving nothing, and with one storage node killed every key is still readable from both frontends', async (t) => {
  const file = join(CONFIGS_DIR, TOPOLOGY);
  const config = await readTopology(TOPOLOGY);
  t.is(config['membership'].name, 'controller');
  t.is(config['placement'].name, 'hash-mod');
  t.is(config['placement'].options.writeQuorum, 'all');
  t.is(config['placement'].options.replicas, `\${VELOUR_FOG_REPLICAS:-${K}}`);
  const digits = config['placement'].options.digits as number;

  // `up` seals the cluster with this secret; the nodes started by hand below inherit it, as an operator's would.
  process.env['KVMESH_CLUSTER_SECRET'] = 'velour-fog-test-cluster-secret';
  const port = await freePort(HOSTS);
  const dir = await tempDir(t, 'velour-fog');
  const startedAt = Date.now();
  const up = await startUp(t, file, [
    '--frontends',
    '2',
    '--storage',
    '4',
    '--port',
    String(port),
    '--host-base',
    HOSTS[0]!,
    '--data-dir',
    dir,
    '--log-level',
    'warn',
  ]);
  t.log(`kvmesh up: ${up.nodes.length} nodes ready in ${up.readyMs} ms`);
  const byRole = (role: string): UpNode[] =>
    up.nodes.filter((n) => n.role === role).sort((a, b) => (a.id < b.id ? -1 : 1));
  const [controller] = byRole('controller');
  const frontends = byRole('frontend');
  const storage = byRole('storage');
  t.deepEqual(up.nodes.map((n) => `${n.id}:${n.role}`).sort(), [
    'n1:controller',
    'n2:storage',
    'n3:storage',
    'n4:storage',
    'n5:storage',
    'n6:frontend',
    'n7:frontend',
  ]);

  // Every node hears of every other from the controller.
  await waitFor(
    'every node to list the 7 members alive',
    async () => {
      for (const node of up.nodes) {
        const view = await clusterOf(node.url);
        if (view.members.filter((m) => m.state === 'alive').length !== 7) return false;
      }
      return true;
    },
    30_000,
  );

  // The seed's own lines, with curl itself: `curl -d VALUE host:port/KEY`, `curl host:port/get/?key=KEY`.
  const curl = promisify(execFile);
  const front = new URL(frontends[0]!.url).host;
  t.is((await curl('curl', ['-s', '-d', 'VALUE', `${front}/KEY`])).stdout, '');
  t.is((await curl('curl', ['-s', `${front}/get/?key=KEY`])).stdout, 'VALUE');
  const absent = await curl('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${front}/get/?key=nothing`]);
  t.is(absent.stdout, '204');

  const keys = Array.from({ length: KEYS }, (_, i) => `key-${i}`);
  await inParallel(keys, CLIENTS, async (key) => {
    const res = await set(frontends[keys.indexOf(key) % 2]!.url, key, valueOf(key));
    if (res.status !== 200) throw new Error(`POST /${key}: ${res.status} ${res.body.toString()}`);
  });
  const all = [...keys, 'KEY'];
  // Frontends and the controller hold nothing; each key is on exactly K storage nodes.
  for (const node of [controller!, ...frontends])
    t.is(await storedKeys(node.url), 0, `${node.id} (${node.role}) stores nothing`);
  const ids = storage.map((n) => n.id);
  for (const node of storage) {
    const expected = all.filter((k) => replicasOf(ids, k, digits).includes(node.id)).length;
    t.is(await storedKeys(node.url), expected, `${node.id} holds the keys of its partitions`);
  }

  // Seed iteration 5: a storage node started by hand, joining through the controller, has its partitions once ready.
  const added = { id: 'n8', address: `${HOSTS[7]}:${port}` };
  const joinedAt = Date.now();
  const extra = await startCli(t, [
    '--config',
    file,
    '--role',
    'storage',
    '--address',
    added.address,
    '--join',
    controller!.address,
    '--id',
    added.id,
    '--data-dir',
    join(dir, added.id),
  ]);
  await waitFor(
    'the added storage node to be ready',
    async () => (await request(extra.url, '/v1/ready')).status === 200,
    60_000,
  );
  const grown = [...ids, added.id];
  const owed = all.filter((k) => replicasOf(grown, k, digits).includes(added.id)).length;
  t.true(owed > 0);
  t.is(await storedKeys(extra.url), owed, 'the new storage node holds every key of its partitions when it is ready');
  const badReads: string[] = [];
  await inParallel(all, CLIENTS, async (key) => {
    const res = await get(extra.url, key);
    const want = key === 'KEY' ? 'VALUE' : valueOf(key);
    if (res.status !== 200 || res.body.toString() !== want) badReads.push(`${key}: ${res.status}`);
  });
  t.deepEqual(badReads, [], 'n8 answers every key');
  t.log(`n8 joined and pulled ${owed} keys in ${Date.now() - joinedAt} ms`);
  await waitFor(
    'the old owners to hand over: every key on exactly K storage nodes',
    async () => {
      let sum = 0;
      for (const url of [...storage.map((n) => n.url), extra.url]) sum += await storedKeys(url);
      return sum === K * all.length;
    },
    30_000,
  );

  // A frontend added and removed at any time: it holds nothing, answers every key, and nothing moves when it goes.
  const frontendAddress = `${HOSTS[8]}:${port}`;
  const third = await startCli(t, [
    '--config',
    file,
    '--role',
    'frontend',
    '--address',
    frontendAddress,
    '--join',
    controller!.address,
    '--data-dir',
    join(dir, 'n9'),
  ]);
  await waitFor('the added frontend to be ready', async () => (await request(third.url, '/v1/ready')).status === 200);
  const unread: string[] = [];
  await inParallel(all, CLIENTS, async (key) => {
    const res = await get(third.url, key);
    if (res.status !== 200) unread.push(`${key}: ${res.status}`);
  });
  t.deepEqual(unread, [], 'a frontend added later answers every key');
  t.is(await storedKeys(third.url), 0, 'and stores nothing');
  const holdings = async (): Promise<number[]> =>
    Promise.all([...storage.map((n) => n.url), extra.url].map((url) => storedKeys(url)));
  const before = await holdings();
  third.child.kill('SIGTERM');
  await third.exited;
  await waitFor('the controller to list the removed frontend as left', async () => {
    const view = await clusterOf(controller!.url);
    return view.members.find((m) => m.address.endsWith(frontendAddress))?.state === 'left';
  });
  t.deepEqual(await holdings(), before, 'no record moved when the frontend left');

  // One storage node killed: every key still readable from both frontends, at once and after the controller noticed.
  const victim = storage[1]!;
  process.kill(victim.pid, 'SIGKILL');
  const readAll = async (when: string): Promise<void> => {
    for (const frontend of frontends) {
      const wrong: string[] = [];
      await inParallel(all, CLIENTS, async (key) => {
        const res = await get(frontend.url, key);
        const want = key === 'KEY' ? 'VALUE' : valueOf(key);
        if (res.status !== 200 || res.body.toString() !== want) wrong.push(`${key}: ${res.status}`);
      });
      t.deepEqual(wrong, [], `${when}: every key readable from ${frontend.id}`);
    }
  };
  await readAll(`${victim.id} just killed`);
  await waitFor(
    `both frontends to hear that ${victim.id} is dead`,
    async () => {
      for (const frontend of frontends) {
        const view = await clusterOf(frontend.url);
        if (view.members.find((m) => m.id === victim.id)?.state !== 'dead') return false;
      }
      return true;
    },
    30_000,
  );
  await readAll(`${victim.id} declared dead`);
  // Seed iteration 4: the controller removes the dead node; its partitions get a second replica again, and sets go on.
  const removeDeadAfterMs = config['membership'].options.removeDeadAfterMs as number;
  await waitFor(
    `both frontends to hear that ${victim.id} was removed`,
    async () => {
      for (const frontend of frontends) {
        const view = await clusterOf(frontend.url);
        if (view.members.find((m) => m.id === victim.id)?.state !== 'left') return false;
      }
      return true;
    },
    removeDeadAfterMs + 30_000,
  );
  const survivors = [...storage.filter((n) => n.id !== victim.id).map((n) => n.url), extra.url];
  let counts: number[] = [];
  await waitFor(
    'every key on K storage nodes again',
    async () => {
      counts = [];
      for (const url of survivors) counts.push(await storedKeys(url));
      return counts.reduce((a, b) => a + b, 0) === K * all.length;
    },
    30_000,
  ).catch((err: unknown) => {
    const live = [...storage.filter((n) => n.id !== victim.id).map((n) => n.id), added.id];
    const want = live.map((id) => all.filter((k) => replicasOf(live, k, digits).includes(id)).length);
    t.log(`held ${counts.join(',')} expected ${want.join(',')}`);
    throw err;
  });
  await readAll(`${victim.id} removed`);
  const later = Array.from({ length: 40 }, (_, i) => `after-${i}`);
  const refused: string[] = [];
  await inParallel(later, CLIENTS, async (key) => {
    const res = await set(frontends[later.indexOf(key) % 2]!.url, key, valueOf(key));
    if (res.status !== 200) refused.push(`${key}: ${res.status} ${res.body.toString()}`);
  });
  t.deepEqual(refused, [], `sets with ${victim.id} removed`);
  for (const key of later) all.push(key);
  await readAll(`sets after ${victim.id} was removed`);
  const absentAfter = await get(frontends[1]!.url, 'never-written');
  t.is(absentAfter.status, 204);

  // Seed iteration 6: the controller keeps its member list on disk.
  const saved = JSON.parse(await readFile(join(controller!.dataDir, CONTROLLER_STATE_FILE), 'utf8')) as {
    members: { id: string; state: string; meta: { role?: string } }[];
  };
  t.deepEqual(saved.members.map((m) => `${m.id}:${m.meta.role}:${m.state}`).sort(), [
    // A node started without --id is known by its address.
    `${frontendAddress}:frontend:left`,
    'n1:controller:alive',
    'n2:storage:alive',
    'n3:storage:left',
    'n4:storage:alive',
    'n5:storage:alive',
    'n6:frontend:alive',
    'n7:frontend:alive',
    'n8:storage:alive',
  ]);

  // ... and starts from it: killed and started again by hand, it lists at once the members that no longer heartbeat.
  process.kill(controller!.pid, 'SIGKILL');
  await readAll('the controller down');
  const restarted = await startCli(t, [
    '--config',
    file,
    '--role',
    'controller',
    '--id',
    controller!.id,
    '--address',
    controller!.address,
    '--data-dir',
    controller!.dataDir,
  ]);
  const relisted = await clusterOf(restarted.url);
  t.deepEqual(
    relisted.members
      .filter((m) => m.state === 'left')
      .map((m) => m.id)
      .sort(),
    [`${frontendAddress}`, victim.id].sort(),
    'the restarted controller read the removed members from its file',
  );
  await waitFor('the 7 members alive to register again', async () => {
    const view = await clusterOf(restarted.url);
    return view.members.filter((m) => m.state === 'alive').length === 7;
  });
  t.log(`whole run: ${Date.now() - startedAt} ms`);
});
