import { createHash } from 'node:crypto';
import test from 'ava';
import { SeededRandom, conditionalQuorumProblem } from '@kvmesh/core';
import {
  RoutingTable,
  STALE_AFTER_FAILURES,
  commonPrefixBits,
  compareDistance,
  contactOf,
  idInBucket,
  idOf,
  kademliaPlacement,
} from '../../src/placement/kademlia/index.js';
import type { Contact } from '../../src/placement/kademlia/index.js';
import { SimKademlia } from './kademlia-sim.js';

/** The ids of `ids` sorted by XOR distance to `key`'s id, closest first. */
function closestIds(ids: readonly string[], key: string): string[] {
  const target = idOf(key);
  return [...ids].sort((a, b) => compareDistance(idOf(a), idOf(b), target));
}

test('ids are SHA-256: 256 bits, XOR distance orders them, prefixes pick the bucket', (t) => {
  const a = idOf('n1');
  t.is(a.length, 32);
  t.is(Buffer.from(a).toString('hex'), createHash('sha256').update('n1').digest('hex'));
  t.is(commonPrefixBits(a, a), 256);
  const random = new SeededRandom(3);
  for (let prefix = 0; prefix < 256; prefix += 17) {
    const inside = idInBucket(a, prefix, random.bytes(32));
    t.is(commonPrefixBits(a, inside), prefix);
  }
  const b = idOf('n2');
  t.true(compareDistance(a, b, a) < 0);
  t.true(compareDistance(b, a, a) > 0);
  t.is(compareDistance(b, b, a), 0);
});

/** Contacts that all fall into one bucket of `self` (prefix 0: the far half). */
function farContacts(self: Contact, n: number): Contact[] {
  const out: Contact[] = [];
  for (let i = 0; out.length < n; i++) {
    const c = contactOf(`far-${i}`, `sim://far-${i}`);
    if (commonPrefixBits(self.nodeId, c.nodeId) === 0) out.push(c);
  }
  return out;
}

test('a full bucket pings its least-recently seen contact before evicting it: an answer keeps it', async (t) => {
  const self = contactOf('self', 'sim://self');
  const pinged: string[] = [];
  let answer = true;
  const table = new RoutingTable({
    self,
    k: 4,
    now: () => 0,
    ping: async (c) => {
      pinged.push(c.id);
      return answer;
    },
  });
  const [c0, c1, c2, c3, c4, c5] = farContacts(self, 6) as [Contact, Contact, Contact, Contact, Contact, Contact];
  for (const c of [c0, c1, c2, c3]) table.seen(c);
  t.is(table.size, 4);
  table.seen(c4);
  await Promise.resolve();
  await Promise.resolve();
  t.deepEqual(pinged, [c0.id], 'the least-recently seen contact is pinged');
  t.false(table.has(c4.id), 'the newcomer waits while the old contact answers');
  t.true(table.has(c0.id));
  // c0 answered: it is now the most recently seen; the next newcomer makes c1 the one pinged.
  answer = false;
  table.seen(c5);
  await Promise.resolve();
  await Promise.resolve();
  t.deepEqual(pinged, [c0.id, c1.id]);
  t.false(table.has(c1.id), 'a contact that does not answer is evicted');
  t.true(table.has(c5.id), 'the most recently seen replacement takes the slot');
  t.is(table.size, 4);
});

test('a contact seen again moves to the tail; failures evict it when a replacement waits, or after a few misses', async (t) => {
  const self = contactOf('self', 'sim://self');
  const table = new RoutingTable({ self, k: 3, now: () => 0, ping: () => new Promise(() => undefined) });
  const [c0, c1, c2, c3] = farContacts(self, 4) as [Contact, Contact, Contact, Contact];
  table.seen(c0);
  table.seen(c1);
  for (let i = 1; i < STALE_AFTER_FAILURES; i++) table.failed(c1);
  t.true(table.has(c1.id), 'kept while no replacement waits');
  table.failed(c1);
  t.false(table.has(c1.id), `dropped after ${STALE_AFTER_FAILURES} misses in a row`);
  table.seen(c1);
  table.seen(c2);
  table.seen(c3); // bucket full: c3 waits (the ping of c0 never answers)
  t.false(table.has(c3.id));
  table.failed(c2);
  t.false(table.has(c2.id), 'one failure is enough when a replacement waits');
  t.true(table.has(c3.id));
});

test('replicate mode: every node locates a key on the replicas closest to it by XOR distance', async (t) => {
  const sim = await SimKademlia.start(t, {
    nodes: 40,
    kv: false,
    placement: { mode: 'replicate', k: 8, replicas: 3 },
    seed: 11,
  });
  const ids = sim.nodes.map((n) => n.id);
  const random = new SeededRandom(5);
  let hops = 0;
  let lookups = 0;
  for (let i = 0; i < 200; i++) {
    const key = `key-${i}`;
    const from = sim.nodes[random.int(sim.nodes.length)]!;
    const set = await sim.settle(from.placement().locate(key, { intent: 'read' }));
    t.deepEqual(
      set.replicas.map((m) => m.id),
      closestIds(ids, key).slice(0, 3),
      `key ${key} from ${from.id}`,
    );
    t.is(set.writeQuorum, 2);
    t.is(conditionalQuorumProblem(set, true), undefined);
    t.is(set.readQuorum, 2);
    hops += set.hops;
    lookups++;
  }
  t.log(`40 nodes, k = 8: mean hops ${(hops / lookups).toFixed(2)}`);
});

test('replicate mode: a value written at one node is read at every other, stored on its closest nodes', async (t) => {
  const sim = await SimKademlia.start(t, { nodes: 6, placement: { mode: 'replicate', replicas: 3 } });
  const ids = sim.nodes.map((n) => n.id);
  for (let i = 0; i < 20; i++) await sim.put(ids[i % ids.length]!, `k${i}`, `v${i}`);
  for (let i = 0; i < 20; i++) {
    for (const id of ids) t.is(await sim.get(id, `k${i}`), `v${i}`);
  }
  for (let i = 0; i < 20; i++) {
    const holders: string[] = [];
    for (const id of ids) if ((await sim.node(id).storage().get(`k${i}`)) !== undefined) holders.push(id);
    t.deepEqual(holders.sort(), closestIds(ids, `k${i}`).slice(0, 3).sort(), `k${i}`);
  }
});

test('the manifest is a placement named kademlia with the paper defaults', (t) => {
  t.is(kademliaPlacement.family, 'placement');
  t.is(kademliaPlacement.name, 'kademlia');
  const props = (kademliaPlacement.optionsSchema as { properties: Record<string, { default?: unknown }> }).properties;
  t.is(props['k']!.default, 20);
  t.is(props['alpha']!.default, 3);
  t.is(props['freezeMs']!.default, 5000);
  t.is(props['shiftAfterAccesses']!.default, 1);
  t.is(props['mode']!.default, 'shift');
});

test('replicate mode: a node that joins gets the keys it is now a replica of, and a crashed replica is replaced', async (t) => {
  const sim = await SimKademlia.start(t, {
    nodes: 6,
    started: 5,
    placement: { mode: 'replicate', replicas: 2, requestTimeoutMs: 200, refreshIntervalMs: 5_000 },
    kvOptions: { moveRetryMs: 100 },
  });
  const keys = Array.from({ length: 60 }, (_, i) => `key-${i}`);
  // n6 starts after the keys are written.
  const live = (): string[] => sim.nodes.filter((n) => n.running).map((n) => n.id);
  for (const [i, key] of keys.entries()) await sim.put(live()[i % 5]!, key, `v-${key}`);
  const holdersOk = async (ids: readonly string[]): Promise<number> => {
    let missing = 0;
    for (const key of keys) {
      for (const id of closestIds(ids, key).slice(0, 2)) {
        if ((await sim.node(id).storage().get(key)) === undefined) missing++;
      }
    }
    return missing;
  };
  t.is(await holdersOk(live()), 0, 'written to the 2 closest live nodes');
  await sim.startNode('n6');
  const joinedIn = await sim.until(async () => (await holdersOk(sim.nodes.map((n) => n.id))) === 0, 120_000, 100);
  t.log(`n6 held every key it is a replica of ${joinedIn} virtual ms after it joined`);
  t.true((await sim.count('n6')) > 0);
  // A replica crashes: the next closest node gets a copy from the surviving replica.
  await sim.crash('n2');
  const crashedAt = sim.clock.now();
  for (let i = 0; i < 5; i++) {
    for (const id of live()) await sim.settle(sim.node(id).placement().dht.refresh());
    await sim.advance(1_000);
  }
  await sim.until(async () => (await holdersOk(live())) === 0, 300_000, 200);
  // Reads need both replicas (R = 2): they work once the routing tables let the dead node go.
  await sim.until(
    async () => {
      for (const id of live()) await sim.settle(sim.node(id).placement().dht.refresh());
      return live().every((id) => !sim.node(id).placement().dht.table.has('n2'));
    },
    300_000,
    1_000,
  );
  t.log(`the keys of n2 were on their new replicas ${sim.clock.now() - crashedAt} virtual ms after it crashed`);
  for (const key of keys) t.is(await sim.get('n1', key), `v-${key}`);
});
