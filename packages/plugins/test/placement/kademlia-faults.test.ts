import test from 'ava';
import { EntryStore } from '../../src/placement/kademlia/entry-store.js';
import type { EntryPayload } from '../../src/placement/kademlia/messages.js';
import { SimKademlia } from './kademlia-sim.js';

const FAST = { freezeMs: 2_000 };

const entry = (ownerId: string, version: number, publishedMs = 0): EntryPayload => ({
  key: 'k',
  ownerId,
  ownerAddress: `sim://${ownerId}:7946`,
  version,
  publishedMs,
});

function owners(sim: SimKademlia, key: string): string[] {
  return sim.nodes.filter((n) => n.running && n.placement().admit(key, 'read', 1).kind === 'own').map((n) => n.id);
}

test('a conditional take-up replaces only the entry its taker saw, or none', (t) => {
  const store = new EntryStore(60_000);
  t.like(store.offer(entry('n1', 3), false, 0, entry('n2', 2)), { ownerId: 'n1', version: 3 }, 'none held: taken');
  t.like(
    store.offer(entry('n3', 4), false, 0, entry('n2', 3)),
    { ownerId: 'n1', version: 3 },
    'another owner at that version stays',
  );
  t.like(
    store.offer(entry('n3', 4), false, 0, entry('n1', 2)),
    { ownerId: 'n1', version: 3 },
    'a newer entry than the one seen stays',
  );
  t.like(
    store.offer(entry('n3', 4), false, 0, entry('n1', 3)),
    { ownerId: 'n3', version: 4 },
    'the entry seen is replaced',
  );
  t.like(
    store.offer(entry('n2', 9), false, 0),
    { ownerId: 'n2', version: 9 },
    'an unconditional STORE of a higher version still wins',
  );
});

test('a claim that lost is withdrawn from the store, and nothing else is', (t) => {
  const store = new EntryStore(60_000);
  store.offer(entry('n1', 2), false, 0);
  store.withdraw(entry('n1', 1));
  store.withdraw(entry('n2', 2));
  t.like(store.get('k', 0), { ownerId: 'n1', version: 2 });
  store.withdraw(entry('n1', 2));
  t.is(store.get('k', 0), undefined);
});

test('a node cut off from the others creates no key: its write fails typed, and the key keeps one owner after the heal', async (t) => {
  const sim = await SimKademlia.start(t, { nodes: 3, placement: FAST });
  const [a, b, c] = sim.nodes.map((n) => n.address);
  sim.network.partition([a!], [b!, c!]);
  const alone = await sim.put('n1', 'cart', 'alone').then(
    () => 'acknowledged',
    (err: unknown) => (err as { code?: string }).code,
  );
  t.is(alone, 'KVMESH_ERR_PLACEMENT_EMPTY', 'one node of three is no majority of the holders');
  t.deepEqual(owners(sim, 'cart'), []);
  t.is(sim.node('n1').placement().dht.entries.get('cart', sim.clock.now()), undefined, 'the lost claim left no entry');
  await sim.put('n2', 'cart', 'majority');
  sim.network.heal();
  t.is(await sim.get('n1', 'cart'), 'majority');
  t.deepEqual(owners(sim, 'cart'), ['n1'], 'the key moved to its reader: still one owner');
});

test('an owner restarted without its journal answers again for the keys whose records it holds', async (t) => {
  const sim = await SimKademlia.start(t, {
    nodes: 3,
    storage: 'lmdb',
    // lmdb's writes take real time, which the harness lets pass as virtual time: a long freeze.
    placement: { freezeMs: 60_000, persistOwnership: false },
  });
  await sim.put('n2', 'cart', 'kept');
  t.deepEqual(owners(sim, 'cart'), ['n2']);
  await sim.crash('n2');
  await sim.advance(5_000);
  await sim.startNode('n2');
  t.deepEqual(owners(sim, 'cart'), [], 'restarted, n2 remembers owning nothing');
  t.is(await sim.get('n3', 'cart'), 'kept', 'n2 answered for its record, and handed it over');
  t.deepEqual(owners(sim, 'cart'), ['n3']);
  t.is(await sim.count('n2'), 0, 'its copy went with the key');
});
