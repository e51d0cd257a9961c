import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { freePort, inParallel, loopbackHosts, request, startUp, tempDir } from './helpers/cluster.js';
import { waitFor } from './helpers/http.js';
import {
  CLIENTS,
  CSE138_CONFIG,
  KEYS,
  VIEW_CHANGE_TIMEOUT_MS,
  get,
  keyCount,
  keysOf,
  put,
  send,
  startNode,
  withoutContext,
} from './helpers/cse138.js';
import type { Cse138Endpoint } from './helpers/cse138.js';

/** Replicas converge within 5 s (anti-entropy every 2 s in configs/cse138.json); slack for a loaded machine. */
const CONVERGE_TIMEOUT_MS = 20_000;

test('2 nodes: 100 keys added, updated, read from the other node and deleted, with exact bodies and key-counts', async (t) => {
  const dir = await tempDir(t, 'cse138-two');
  const hosts = loopbackHosts(220, 2);
  const port = await freePort(hosts);
  const view = hosts.map((h) => `${h}:${port}`);
  const started = Date.now();
  // One node derives its data directory from ADDRESS (under its working directory), the other is given --data-dir.
  const [a, b] = await Promise.all([
    startNode(t, { address: view[0]!, view, cwd: dir }),
    startNode(t, { address: view[1]!, view, dataDir: join(dir, 'b') }),
  ]);
  t.log(`2 nodes on ${view.join(', ')} serving in ${Date.now() - started} ms`);
  t.true((await stat(join(dir, 'data', 'cse138', view[0]!))).isDirectory(), 'data directory derived from ADDRESS');
  t.true((await stat(join(dir, 'b'))).isDirectory(), '--data-dir overrides it');

  const keys = keysOf('key');
  const onB = new Set<string>();
  const problems: string[] = [];
  await inParallel(keys, CLIENTS, async (key) => {
    const answer = await put(a!, key, { value: `value-${key}` });
    const body = withoutContext(t, answer);
    if (body['address'] !== undefined) onB.add(key);
    const expected = {
      message: 'Added successfully',
      replaced: false,
      ...(onB.has(key) ? { address: b!.address } : {}),
    };
    if (answer.status !== 201 || JSON.stringify(body) !== JSON.stringify(expected))
      problems.push(`PUT ${key}: ${answer.status} ${answer.body.toString()}`);
  });
  t.deepEqual(problems, [], 'every add is 201 Added successfully, proxied ones naming the node that stored the key');
  t.true(onB.size > 10 && onB.size < 90, `keys spread over both nodes (${onB.size} on ${b!.address})`);
  t.deepEqual(await keyCount(a!), { message: 'Key count retrieved successfully', 'key-count': KEYS - onB.size });
  t.deepEqual(await keyCount(b!), { message: 'Key count retrieved successfully', 'key-count': onB.size });

  await inParallel(keys, CLIENTS, async (key) => {
    const answer = await put(b!, key, { value: `new-${key}` });
    const expected = {
      message: 'Updated successfully',
      replaced: true,
      ...(onB.has(key) ? {} : { address: a!.address }),
    };
    if (answer.status !== 200 || JSON.stringify(withoutContext(t, answer)) !== JSON.stringify(expected))
      problems.push(`PUT ${key} again: ${answer.status} ${answer.body.toString()}`);
  });
  t.deepEqual(problems, [], 'every update through the other node is 200 Updated successfully');

  await inParallel(keys, CLIENTS, async (key) => {
    const answer = await get(onB.has(key) ? a! : b!, `/kvs/keys/${key}`);
    const owner = onB.has(key) ? b! : a!;
    const expected = {
      doesExist: true,
      message: 'Retrieved successfully',
      value: `new-${key}`,
      address: owner.address,
    };
    if (answer.status !== 200 || JSON.stringify(withoutContext(t, answer)) !== JSON.stringify(expected))
      problems.push(`GET ${key}: ${answer.status} ${answer.body.toString()}`);
  });
  t.deepEqual(problems, [], 'every key reads its new value from the node that does not store it');

  await inParallel(keys, CLIENTS, async (key) => {
    const answer = await request(a!.url, `/kvs/keys/${key}`, { method: 'DELETE' });
    const expected = {
      doesExist: true,
      message: 'Deleted successfully',
      ...(onB.has(key) ? { address: b!.address } : {}),
    };
    if (answer.status !== 200 || JSON.stringify(withoutContext(t, answer)) !== JSON.stringify(expected))
      problems.push(`DELETE ${key}: ${answer.status} ${answer.body.toString()}`);
  });
  t.deepEqual(problems, [], 'every delete is 200 Deleted successfully');

  const gone = await get(b!, `/kvs/keys/${keys[0]}`);
  t.is(gone.status, 404);
  t.like(gone.json(), { doesExist: false, error: 'Key does not exist', message: 'Error in GET' });
  const again = await request(b!.url, `/kvs/keys/${keys[1]}`, { method: 'DELETE' });
  t.is(again.status, 404);
  t.like(again.json(), { doesExist: false, error: 'Key does not exist', message: 'Error in DELETE' });
  t.deepEqual(await keyCount(a!), { message: 'Key count retrieved successfully', 'key-count': 0 });
  t.deepEqual(await keyCount(b!), { message: 'Key count retrieved successfully', 'key-count': 0 });

  const missing = await put(a!, 'novalue', {});
  t.is(missing.status, 400);
  t.deepEqual(withoutContext(t, missing), { error: 'Value is missing', message: 'Error in PUT' });
  const long = await put(b!, 'k'.repeat(51), { value: 'v' });
  t.is(long.status, 400);
  t.deepEqual(withoutContext(t, long), { error: 'Key is too long', message: 'Error in PUT' });
  t.log(`400 adds, updates, reads and deletes checked in ${Date.now() - started} ms`);
});

/**
 * 100 keys on two nodes, a third started (`thirdView` `two`: with the view
 * of the two, which it is not part of; `all`: with the new view, as the
 * seed's example starts node3), the view change to the three sent to the
 * second node, then back to two sent to the node it drops.
 */
async function growAndShrink(t: ExecutionContext, firstHost: number, thirdView: 'two' | 'all'): Promise<void> {
  const dir = await tempDir(t, 'cse138-view');
  const hosts = loopbackHosts(firstHost, 3);
  const port = await freePort(hosts);
  const all = hosts.map((h) => `${h}:${port}`);
  const two = all.slice(0, 2);
  const nodes = await Promise.all(
    two.map((address) => startNode(t, { address, view: two, dataDir: join(dir, address) })),
  );
  const keys = keysOf('vc');
  await inParallel(keys, CLIENTS, async (key) => {
    const answer = await put(nodes[keys.indexOf(key) % 2]!, key, { value: key });
    if (answer.status !== 201)
      throw new Error(
        `PUT ${key} via ${nodes[keys.indexOf(key) % 2]!.address}: ${answer.status} ${answer.body.toString()}`,
      );
  });

  const third = await startNode(t, {
    address: all[2]!,
    view: thirdView === 'two' ? two : all,
    dataDir: join(dir, all[2]!),
    until: thirdView === 'two' ? '/v1/ready' : '/kvs/key-count',
  });
  if (thirdView === 'two') {
    // A node started with a view it is not part of serves no keys until the view change names it.
    t.is((await request(third.url, '/v1/health')).status, 200);
    const outside = await get(third, `/kvs/keys/${keys[0]}`);
    t.is(outside.status, 503);
    t.deepEqual(outside.json(), { error: 'Unable to satisfy request', message: 'Error in GET', 'causal-context': {} });
  }
  t.deepEqual(await keyCount(third), { message: 'Key count retrieved successfully', 'key-count': 0 });
  nodes.push(third);
  const sentAt = Date.now();
  const change = await send(nodes[1]!, 'PUT', '/kvs/view-change', { view: all.join(',') }, VIEW_CHANGE_TIMEOUT_MS);
  t.log(`view change to 3 nodes answered ${change.status} in ${Date.now() - sentAt} ms: ${change.body.toString()}`);
  t.is(change.status, 200);
  const body = change.json<{ message: string; shards: { address: string; 'key-count': number }[] }>();
  t.deepEqual(Object.keys(body).sort(), ['message', 'shards']);
  t.is(body.message, 'View change successful');
  t.deepEqual(
    body.shards.map((s) => s.address),
    all,
    'one entry per node of the new view',
  );
  for (const shard of body.shards) t.deepEqual(Object.keys(shard).sort(), ['address', 'key-count']);
  t.is(
    body.shards.reduce((sum, s) => sum + s['key-count'], 0),
    KEYS,
    'the key-counts sum to the keys stored',
  );
  t.true(body.shards[2]!['key-count'] > 0, 'the new node received keys');
  t.is((await request(third.url, '/v1/ready')).status, 200, 'the new node is ready once the view names it');
  for (const [i, node] of nodes.entries()) {
    t.is((await keyCount(node))['key-count'], body.shards[i]!['key-count'], `${node.address} stores what it reported`);
  }

  const problems: string[] = [];
  await inParallel(
    nodes.flatMap((node) => keys.map((key) => [node, key] as const)),
    CLIENTS,
    async ([node, key]) => {
      const answer = await get(node, `/kvs/keys/${key}`);
      if (answer.status !== 200 || answer.json<{ value?: unknown }>().value !== key)
        problems.push(`GET ${key} via ${node.address}: ${answer.status} ${answer.body.toString()}`);
    },
  );
  t.deepEqual(problems.slice(0, 10), [], `all ${KEYS} keys read from each of the 3 nodes`);

  // Back to two nodes, the view change sent to the node it drops: its keys move to the two that stay.
  const shrinkAt = Date.now();
  const shrink = await send(
    nodes[0]!,
    'PUT',
    '/kvs/view-change',
    { view: all.slice(1).join(',') },
    VIEW_CHANGE_TIMEOUT_MS,
  );
  t.log(`view change dropping ${all[0]}, sent to it, answered ${shrink.status} in ${Date.now() - shrinkAt} ms`);
  t.is(shrink.status, 200, shrink.body.toString());
  const shrunk = shrink.json<{ shards: { address: string; 'key-count': number }[] }>().shards;
  t.deepEqual(
    shrunk.map((s) => s.address),
    all.slice(1),
  );
  t.is(
    shrunk.reduce((sum, s) => sum + s['key-count'], 0),
    KEYS,
    'the key-counts of the two that stay sum to 100',
  );
  t.is((await keyCount(nodes[0]!))['key-count'], 0, 'the dropped node handed every key on');
  await inParallel(keys, CLIENTS, async (key) => {
    const answer = await get(nodes[2]!, `/kvs/keys/${key}`);
    if (answer.status !== 200) problems.push(`GET ${key} after the shrink: ${answer.status} ${answer.body.toString()}`);
  });
  t.deepEqual(problems.slice(0, 10), [], 'every key reads after the shrink');
}

test('100 keys on 2 nodes, a third started outside its view, a view change to 3 and back to 2: counts sum to 100, every key reads everywhere', (t) =>
  growAndShrink(t, 223, 'two'));

test("100 keys on 2 nodes, a third started with the new view as in the seed's example, a view change to 3 and back to 2", (t) =>
  growAndShrink(t, 237, 'all'));

test('4 nodes with REPL_FACTOR=2: two shards of two replicas, and a client passing its causal context reads what it wrote', async (t) => {
  const dir = await tempDir(t, 'cse138-factor');
  const hosts = loopbackHosts(227, 4);
  const port = await freePort(hosts);
  const view = hosts.map((h) => `${h}:${port}`);
  const nodes = await Promise.all(
    view.map((address) => startNode(t, { address, view, replFactor: 2, dataDir: join(dir, address) })),
  );

  const shards = await get(nodes[0]!, '/kvs/shards');
  t.deepEqual(shards.json(), { message: 'Shard membership retrieved successfully', shards: ['1', '2'] });
  const infos = await Promise.all(['1', '2'].map(async (id) => (await get(nodes[3]!, `/kvs/shards/${id}`)).json()));
  const replicas = infos.map((info: { replicas: string[] }) => info.replicas);
  t.deepEqual(replicas.flat().sort(), [...view].sort(), 'every node is a replica of one shard');
  t.true(replicas.every((r) => r.length === 2));

  // One client, its context passed along from answer to answer, writing through one node and reading through others.
  let context: unknown = {};
  const keys = keysOf('cc');
  const problems: string[] = [];
  let proxied = 0;
  for (const [i, key] of keys.entries()) {
    const written = await put(nodes[i % 4]!, key, { value: { n: i }, 'causal-context': context });
    if (written.status !== 201) problems.push(`PUT ${key}: ${written.status} ${written.body.toString()}`);
    // A replica of the key's shard serves the write itself; a node of the other shard names a replica that did.
    const address = written.json<{ address?: string }>().address;
    const own = replicas.find((r) => r.includes(view[i % 4]!))!;
    if (address !== undefined && own.includes(address)) problems.push(`PUT ${key} names ${address}, of its own shard`);
    proxied += address === undefined ? 0 : 1;
    context = written.json<{ 'causal-context': unknown }>()['causal-context'];
    const read = await get(nodes[(i + 1) % 4]!, `/kvs/keys/${key}`, context);
    const value = read.json<{ value?: { n?: number } }>().value;
    if (read.status !== 200 || value?.n !== i) problems.push(`GET ${key}: ${read.status} ${read.body.toString()}`);
    context = read.json<{ 'causal-context': unknown }>()['causal-context'];
  }
  t.deepEqual(problems.slice(0, 10), [], 'every write acknowledged and read back, JSON values intact');
  t.true(proxied > 10 && proxied < 90, `writes through a node of the other shard are proxied (${proxied} of ${KEYS})`);
  t.is(Object.keys(context as object).length, KEYS, 'the context names every key the client saw');

  // Both replicas of a shard store all of its keys; the two shards hold every key once.
  const counts = await Promise.all(nodes.map((node) => keyCount(node)));
  for (const [i, count] of counts.entries()) {
    t.deepEqual(Object.keys(count).sort(), ['key-count', 'message', 'shard-id'], `${view[i]} names its shard`);
    t.is(typeof count['shard-id'], 'string', 'shard ids are strings here as in /kvs/shards');
  }
  const byShard = new Map<unknown, number[]>();
  for (const count of counts)
    byShard.set(count['shard-id'], [...(byShard.get(count['shard-id']) ?? []), count['key-count'] as number]);
  t.deepEqual([...byShard.keys()].sort(), ['1', '2']);
  for (const [id, values] of byShard) t.is(new Set(values).size, 1, `the replicas of shard ${String(id)} agree`);
  t.is(
    [...byShard.values()].reduce((sum, v) => sum + v[0]!, 0),
    KEYS,
    'each key in one shard',
  );
  const shard1 = await get(nodes[0]!, '/kvs/shards/1');
  t.is(shard1.json<{ 'key-count': number }>()['key-count'], byShard.get('1')![0]!);

  // A context from a future this store has not seen cannot be satisfied: 503 within the 5 s bound, not a stale value.
  const future = { [keys[0]!]: 'ffffffffffff-0000-elsewhere' };
  const startedAt = Date.now();
  const stale = await get(nodes[2]!, `/kvs/keys/${keys[0]}`, future);
  t.log(`a read behind its context answered ${stale.status} after ${Date.now() - startedAt} ms`);
  t.is(stale.status, 503);
  t.deepEqual(stale.json(), { error: 'Unable to satisfy request', message: 'Error in GET', 'causal-context': future });

  // The view change to the first shard's two nodes, with the factor, sent to a node of the shard it drops.
  const kept = [...view].sort().slice(0, 2);
  const changeAt = Date.now();
  const change = await send(
    nodes.find((n) => !kept.includes(n.address))!,
    'PUT',
    '/kvs/view-change',
    { view: kept.join(','), 'repl-factor': 2 },
    VIEW_CHANGE_TIMEOUT_MS,
  );
  t.log(`view change to one shard answered ${change.status} in ${Date.now() - changeAt} ms: ${change.body.toString()}`);
  t.is(change.status, 200);
  t.deepEqual(change.json(), {
    message: 'View change successful',
    shards: [{ 'shard-id': '1', 'key-count': KEYS, replicas: kept }],
  });
  for (const node of nodes.filter((n) => kept.includes(n.address))) {
    t.deepEqual(await keyCount(node), {
      message: 'Key count retrieved successfully',
      'key-count': KEYS,
      'shard-id': '1',
    });
  }
  // A factor above the view's two nodes cannot be met: refused, nothing changed.
  const refused = await send(nodes[0]!, 'PUT', '/kvs/view-change', { view: kept.join(','), 'repl-factor': 3 });
  t.is(refused.status, 400);
  t.is(refused.json<{ message: string }>().message, 'Error in PUT');

  // One of the shard's two replicas killed: reads go on from the other, a write cannot be acknowledged by both.
  const [survivor, victim] = kept.map((address) => nodes.find((n) => n.address === address)!);
  await victim!.kill();
  const read = await get(survivor!, `/kvs/keys/${keys[7]}`);
  t.is(read.status, 200);
  t.deepEqual(read.json<{ value: unknown }>().value, { n: 7 });
  const writeAt = Date.now();
  const write = await put(survivor!, keys[7]!, { value: 'lost?' });
  const took = Date.now() - writeAt;
  t.log(`a write with one of its two replicas down answered ${write.status} in ${took} ms`);
  t.is(write.status, 503);
  t.deepEqual(withoutContext(t, write), { error: 'Unable to satisfy request', message: 'Error in PUT' });
  t.true(took < 15_000, 'within the 5 s bound, with slack for a loaded machine');

  // Back on its data directory, the replica converges with the survivor, whichever value the refused write left.
  const back = await startNode(t, {
    address: victim!.address,
    view,
    replFactor: 2,
    dataDir: join(dir, victim!.address),
  });
  const backAt = Date.now();
  const valueVia = async (node: Cse138Endpoint): Promise<string | undefined> => {
    const answer = await get(node, `/kvs/keys/${keys[7]}`);
    return answer.status === 200 ? JSON.stringify(answer.json<{ value: unknown }>().value) : undefined;
  };
  let agreed: string | undefined;
  await waitFor(
    'the two replicas to answer the same value',
    async () => {
      const [here, there] = await Promise.all([valueVia(back), valueVia(survivor!)]);
      agreed = here;
      return here !== undefined && here === there;
    },
    CONVERGE_TIMEOUT_MS,
    50,
  );
  t.log(`the restarted replica agreed with the survivor on ${agreed} ${Date.now() - backAt} ms after it served`);
});

test('kvmesh up configs/cse138.json --nodes 3: a static view of the three, one shard each', async (t) => {
  const dir = await tempDir(t, 'cse138-up');
  const hosts = loopbackHosts(233, 3);
  const port = await freePort(hosts);
  const up = await startUp(t, CSE138_CONFIG, [
    '--nodes',
    '3',
    '--host-base',
    hosts[0]!,
    '--port',
    String(port),
    '-d',
    dir,
  ]);
  t.log(`3 nodes ready in ${up.readyMs} ms`);
  // Listed as each became ready: in node order, n1 first.
  const nodes = [...up.nodes].sort((a, b) => a.id.localeCompare(b.id)).map((n) => ({ address: n.address, url: n.url }));
  t.deepEqual(
    nodes.map((n) => n.address),
    hosts.map((h) => `${h}:${port}`),
  );
  const keys = keysOf('up').slice(0, 30);
  for (const [i, key] of keys.entries()) t.is((await put(nodes[i % 3]!, key, { value: i })).status, 201);
  for (const [i, key] of keys.entries()) {
    const read = await get(nodes[(i + 2) % 3]!, `/kvs/keys/${key}`);
    t.is(read.json<{ value: number }>().value, i);
  }
  t.deepEqual((await get(nodes[1]!, '/kvs/shards')).json(), {
    message: 'Shard membership retrieved successfully',
    shards: ['1', '2', '3'],
  });
  const counts = await Promise.all(nodes.map(async (n) => (await keyCount(n))['key-count'] as number));
  t.is(
    counts.reduce((a, b) => a + b, 0),
    keys.length,
    `key-counts ${JSON.stringify(counts)} sum to the keys written`,
  );

  // The seed's view names nodes by host:port while kvmesh up names them n1..n3: the same nodes, nothing moves.
  const change = await send(
    nodes[0]!,
    'PUT',
    '/kvs/view-change',
    { view: nodes.map((n) => n.address).join(',') },
    VIEW_CHANGE_TIMEOUT_MS,
  );
  t.is(change.status, 200, change.body.toString());
  const after = await Promise.all(nodes.map(async (n) => (await keyCount(n))['key-count'] as number));
  t.deepEqual(after, counts, 'every node keeps its keys');
  for (const [i, key] of keys.entries()) {
    t.is((await get(nodes[i % 3]!, `/kvs/keys/${key}`)).status, 200, `${key} still reads`);
  }
});
