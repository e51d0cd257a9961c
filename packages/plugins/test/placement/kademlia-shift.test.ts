import test from 'ava';
import { SeededRandom, drawingProblems, formatVersion, isKvError } from '@kvmesh/core';
import type { BucketsDrawing, KeyTransfer, Rpc, StoredRecord } from '@kvmesh/core';
import { KADEMLIA_MESSAGES } from '../../src/placement/kademlia/index.js';
import { SimKademlia, UTF8, text } from './kademlia-sim.js';

const FAST = { freezeMs: 2_000 };

async function owners(sim: SimKademlia, key: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of sim.nodes) {
    if (n.running && n.placement().admit(key, 'read', 1).kind === 'own') out.push(n.id);
  }
  return out;
}

async function holders(sim: SimKademlia, key: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of sim.nodes) if (n.running && (await n.storage().get(key)) !== undefined) out.push(n.id);
  return out;
}

for (const codec of ['protobuf', 'msgpack', 'json'] as const) {
  test(`${codec}: a key follows its reader: written at n1, read at n2, n3, then n1 again, always the latest value`, async (t) => {
    const sim = await SimKademlia.start(t, { nodes: 3, codec, placement: FAST });
    await sim.put('n1', 'cart', 'v1');
    t.deepEqual(await owners(sim, 'cart'), ['n1'], 'a key nobody owned is created at the node that wrote it');
    t.is(await sim.count('n1'), 1);
    t.is(await sim.get('n2', 'cart'), 'v1');
    t.deepEqual(await owners(sim, 'cart'), ['n2']);
    t.is(await sim.count('n2'), 1, "n2's local count grows");
    t.is(await sim.count('n1'), 0, "n1's shrinks");
    await sim.put('n2', 'cart', 'v2');
    t.is(await sim.get('n3', 'cart'), 'v2');
    t.deepEqual(await holders(sim, 'cart'), ['n3']);
    t.is(await sim.get('n1', 'cart'), 'v2');
    t.deepEqual(await owners(sim, 'cart'), ['n1']);
    t.deepEqual(await holders(sim, 'cart'), ['n1']);
    const shifts = sim.nodes.map((n) => (n.placement().describe()['shifts'] as { shiftsIn: number }).shiftsIn);
    t.deepEqual(shifts, [1, 1, 1], 'n2, n3 and n1 each took the key over once');
  });
}

test('the old owner forwards requests that still reach it to the new owner', async (t) => {
  const sim = await SimKademlia.start(t, { nodes: 3, placement: FAST });
  await sim.put('n1', 'k', 'v');
  t.is(await sim.get('n2', 'k'), 'v');
  const admission = sim.node('n1').placement().admit('k', 'read', 1);
  t.is(admission.kind, 'moved');
  t.is(admission.kind === 'moved' ? admission.to.id : '', 'n2');
  // A request located before the move, sent straight to the old owner, is answered MOVED.
  const rpc = sim.node('n3').node.get<Rpc>('rpc');
  const reply = await sim.settle(
    rpc.request(sim.node('n1').address, 'kvmesh.kv.Get', { key: 'k', epoch: 1, handoff: false }),
  );
  t.is(reply.type, 'kvmesh.kv.Refused');
  t.like(reply.payload, { kind: 'MOVED', toId: 'n2' });
  // ...and so is a ShiftRequest: a node whose entry is stale is sent on.
  const shift = await sim.settle(
    rpc.request(sim.node('n1').address, KADEMLIA_MESSAGES.shiftRequest, {
      sender: { id: 'n3', address: sim.node('n3').address },
      key: 'k',
    }),
  );
  t.like(shift.payload, { outcome: 'SHIFT_MOVED', to: { id: 'n2' } });
});

test('two nodes incrementing one counter with conditional writes 200 times each end at exactly 400', async (t) => {
  const sim = await SimKademlia.start(t, { nodes: 3, placement: FAST });
  await sim.put('n1', 'counter', '0');
  let conflicts = 0;
  const random = new SeededRandom(9);
  const increment = async (id: string, times: number): Promise<void> => {
    const kv = sim.node(id).kv();
    for (let done = 0; done < times;) {
      const { record } = await kv.get('counter');
      const value = Number(text(record!.value));
      // Read and write apart in time, so the other node's increments come in between.
      await sim.clock.sleep(random.int(4));
      try {
        await kv.put('counter', UTF8.encode(String(value + 1)), 'text/plain', {
          ifMatch: formatVersion(record!.version),
        });
        done++;
      } catch (err) {
        if (!isKvError(err, 'KVMESH_ERR_KV_PRECONDITION_FAILED')) throw err;
        conflicts++;
      }
    }
  };
  await sim.settle(Promise.all([increment('n1', 200), increment('n2', 200)]), 3_600_000);
  t.is(await sim.get('n3', 'counter'), '400');
  t.deepEqual(await holders(sim, 'counter'), ['n3']);
  const moved = sim.nodes.reduce(
    (sum, n) => sum + (n.placement().describe()['shifts'] as { shiftsIn: number }).shiftsIn,
    0,
  );
  t.true(conflicts > 0, 'the two writers did race');
  t.log(`${conflicts} conditional writes failed and were retried; the key moved ${moved} times`);
});

test('an owner declines to hand a key over until the same node accessed it shiftAfterAccesses times in a row', async (t) => {
  const sim = await SimKademlia.start(t, { nodes: 3, placement: { ...FAST, shiftAfterAccesses: 3 } });
  await sim.put('n1', 'k', 'v');
  t.is(await sim.get('n2', 'k'), 'v');
  t.is(await sim.get('n2', 'k'), 'v');
  t.deepEqual(await owners(sim, 'k'), ['n1'], 'two reads from n2: still at n1');
  t.is(await sim.get('n3', 'k'), 'v');
  t.is(await sim.get('n2', 'k'), 'v');
  t.is(await sim.get('n2', 'k'), 'v');
  t.deepEqual(await owners(sim, 'k'), ['n1'], "n3's read in between restarted n2's count");
  t.is(await sim.get('n2', 'k'), 'v');
  t.deepEqual(await owners(sim, 'k'), ['n2'], 'the third read in a row moved it');
  t.is(await sim.count('n1'), 0);
  // A key read from everywhere in turn stays where it is.
  for (let round = 0; round < 5; round++) for (const id of ['n1', 'n3']) t.is(await sim.get(id, 'k'), 'v');
  t.deepEqual(await owners(sim, 'k'), ['n2']);
});

/** Replaces a node's KeyTransfer by one whose store never finishes (the node stalls mid-shift). */
function stallStores(sim: SimKademlia, id: string): { reached: () => boolean } {
  let reached = false;
  const placement = sim.node(id).placement();
  const stalled: KeyTransfer = {
    read: async () => undefined,
    store: (_record: StoredRecord) => {
      reached = true;
      return new Promise<boolean>(() => undefined);
    },
    purge: async () => false,
  };
  placement.useKeyTransfer(stalled);
  return { reached: () => reached };
}

test('a shift whose taker dies after the owner froze the key: the freeze expires and the old owner keeps it, nothing lost', async (t) => {
  const sim = await SimKademlia.start(t, { nodes: 3, placement: FAST });
  await sim.put('n1', 'k', 'kept');
  const stall = stallStores(sim, 'n2');
  const reading = sim.node('n2').kv().get('k');
  reading.catch(() => undefined);
  await sim.until(() => stall.reached(), 10_000, 1);
  const frozenAt = sim.clock.now();
  t.is(sim.node('n1').placement().admit('k', 'write', 1).kind, 'frozen', 'the owner froze the key for n2');
  await sim.crash('n2');
  // A reader elsewhere waits out the freeze, then gets the value from the old owner.
  t.is(await sim.get('n3', 'k'), 'kept');
  const waited = sim.clock.now() - frozenAt;
  t.true(waited >= FAST.freezeMs, `read after ${waited} ms of a ${FAST.freezeMs} ms freeze`);
  t.deepEqual(await holders(sim, 'k'), ['n3']);
  t.is((sim.node('n1').placement().describe()['shifts'] as { freezesEnded: number }).freezesEnded, 1);
});

test('a taker that never releases: the owner keeps the key readable where it is after freezeMs, and a late release is refused', async (t) => {
  const sim = await SimKademlia.start(t, { nodes: 3, placement: FAST });
  await sim.put('n1', 'k', 'v1');
  const rpc = sim.node('n3').node.get<Rpc>('rpc');
  const ghost = { id: 'ghost', address: 'sim://ghost:1' };
  const grant = await sim.settle(
    rpc.request(sim.node('n1').address, KADEMLIA_MESSAGES.shiftRequest, { sender: ghost, key: 'k' }),
  );
  t.is((grant.payload as { outcome: string }).outcome, 'SHIFT_GRANTED');
  t.is(text((grant.payload as { record: StoredRecord }).record.value), 'v1', 'the grant carries the record');
  t.is(sim.node('n1').placement().admit('k', 'read', 1).kind, 'frozen');
  await sim.advance(FAST.freezeMs + 10);
  // Served again once a majority of the holders took its entry again (the taker's may have reached them).
  const confirmed = await sim.until(() => sim.node('n1').placement().admit('k', 'read', 1).kind === 'own', 5_000, 1);
  t.log(`n1 served the key again ${confirmed} virtual ms after its freeze ended`);
  const late = await sim.settle(
    rpc.request(sim.node('n1').address, KADEMLIA_MESSAGES.release, {
      sender: ghost,
      key: 'k',
      token: (grant.payload as { token: string }).token,
    }),
  );
  t.like(late.payload, { outcome: 'RELEASE_EXPIRED' });
  t.is(await sim.count('n1'), 1, 'the old owner kept its copy');
  await sim.put('n1', 'k', 'v2');
  t.is(await sim.get('n2', 'k'), 'v2');
});

test('a locate waiting for a freeze to end fails once its node stops, rather than waiting again at once for ever', async (t) => {
  const sim = await SimKademlia.start(t, { nodes: 3, placement: FAST });
  await sim.put('n1', 'k', 'v1');
  const rpc = sim.node('n3').node.get<Rpc>('rpc');
  const ghost = { id: 'ghost', address: 'sim://ghost:1' };
  const grant = await sim.settle(
    rpc.request(sim.node('n1').address, KADEMLIA_MESSAGES.shiftRequest, { sender: ghost, key: 'k' }),
  );
  t.is((grant.payload as { outcome: string }).outcome, 'SHIFT_GRANTED');
  const outcome = sim
    .node('n1')
    .placement()
    .locate('k', { intent: 'read' })
    .then(
      () => 'located',
      (err: unknown) => (err as { code?: string }).code,
    );
  await sim.advance(10);
  await sim.crash('n1');
  t.is(await sim.settle(outcome, 1_000), 'KVMESH_ERR_KERNEL_STATE');
});

test('a release repeated (its answer was lost) is answered the same, once', async (t) => {
  const sim = await SimKademlia.start(t, { nodes: 3, placement: FAST });
  await sim.put('n1', 'k', 'v1');
  const rpc = sim.node('n3').node.get<Rpc>('rpc');
  const taker = { id: 'n3', address: sim.node('n3').address };
  const grant = await sim.settle(
    rpc.request(sim.node('n1').address, KADEMLIA_MESSAGES.shiftRequest, { sender: taker, key: 'k' }),
  );
  const token = (grant.payload as { token: string }).token;
  const release = { sender: taker, key: 'k', token };
  const first = await sim.settle(rpc.request(sim.node('n1').address, KADEMLIA_MESSAGES.release, release));
  const again = await sim.settle(rpc.request(sim.node('n1').address, KADEMLIA_MESSAGES.release, release));
  t.like(first.payload, { outcome: 'RELEASE_DONE' });
  t.like(again.payload, { outcome: 'RELEASE_DONE' });
  t.is(await sim.count('n1'), 0, 'the old copy was removed once');
  t.like(sim.node('n1').placement().admit('k', 'read', 1), { kind: 'moved', to: { id: 'n3' } });
  const other = await sim.settle(
    rpc.request(sim.node('n1').address, KADEMLIA_MESSAGES.release, { ...release, token: 'not-the-token' }),
  );
  t.like(other.payload, { outcome: 'RELEASE_EXPIRED' });
});

test('entries live on the closest nodes while their owner republishes them, and expire once it is gone', async (t) => {
  const sim = await SimKademlia.start(t, {
    nodes: 5,
    placement: { ...FAST, republishIntervalMs: 60_000, expiryMs: 180_000, refreshIntervalMs: 600_000 },
  });
  await sim.put('n5', 'k', 'v');
  const held = (): string[] =>
    sim.nodes
      .filter((n) => n.running && n.placement().dht.entries.get('k', sim.clock.now()) !== undefined)
      .map((n) => n.id);
  t.is(held().length, 5, 'with fewer than k nodes, every node holds the entry');
  await sim.advance(400_000);
  t.is(held().length, 5, 'republished by its owner: still held after twice the expiry');
  await sim.crash('n5');
  await sim.advance(400_000);
  t.deepEqual(held(), [], 'the owner is gone: the entry expired everywhere');
});

test('two nodes creating one key at once: one owner, and the other works through it', async (t) => {
  const sim = await SimKademlia.start(t, { nodes: 4, placement: FAST });
  const a = sim.node('n2').kv().put('new', UTF8.encode('from n2'), 'text/plain', { ifNoneMatch: '*' });
  const b = sim.node('n3').kv().put('new', UTF8.encode('from n3'), 'text/plain', { ifNoneMatch: '*' });
  const settled = await sim.settle(Promise.allSettled([a, b]));
  const won = settled.filter((s) => s.status === 'fulfilled').length;
  t.is(won, 1, 'exactly one If-None-Match: * create wins');
  t.is((await owners(sim, 'new')).length, 1);
  const value = await sim.get('n4', 'new');
  t.true(value === 'from n2' || value === 'from n3');
  t.is((await holders(sim, 'new')).length, 1);
});

test('describe() says how the dashboard draws a node: its k-buckets, each with its contacts', async (t) => {
  const sim = await SimKademlia.start(t, { nodes: 5, placement: FAST });
  const described = sim.node('n1').placement().describe();
  const drawing = described['drawing'] as BucketsDrawing;
  t.deepEqual(drawingProblems(drawing, new Set(sim.nodes.map((n) => n.id))), []);
  t.is(drawing.shape, 'buckets');
  const members = drawing.buckets.flatMap((b) => b.members);
  t.deepEqual([...members].sort(), ['n2', 'n3', 'n4', 'n5'], 'every other node in some bucket');
  t.true(drawing.buckets.every((b) => b.size === b.members.length && b.capacity >= b.size));
});
