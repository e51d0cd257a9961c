import test from 'ava';
import { conditionalQuorumProblem, drawingProblems, isKvError } from '@kvmesh/core';
import type { RingDrawing } from '@kvmesh/core';
import { ChordRing } from './chord-ring.js';

const BACKUPS = 2;

/** A ring of `n` md5 nodes joined one after another, each through a random earlier one, then settled. */
async function ring(n: number, seed = 1): Promise<ChordRing> {
  const r = new ChordRing(seed);
  await r.add('n1');
  for (let i = 2; i <= n; i++) {
    await r.add(`n${i}`, `n${1 + r.random.int(i - 1)}`);
    await r.periods(1);
  }
  return r;
}

async function settle(r: ChordRing, limitPeriods = 60): Promise<number> {
  for (let p = 0; p < limitPeriods; p++) {
    if (r.ringCorrect()) return p;
    await r.periods(1);
  }
  throw new Error(`the ring did not settle within ${limitPeriods} periods`);
}

test('nodes joining through any member form the ring: every successor and predecessor is the true one', async (t) => {
  const r = await ring(24);
  t.teardown(() => r.stopAll());
  const periods = await settle(r);
  t.log(`24 nodes settled ${periods} periods after the last join`);
  t.true(r.ringCorrect());
  for (const node of r.running()) t.is(node.placement.table!.successors.length, 8);
});

test('fix-fingers makes every finger the first node at or after self + 2^i', async (t) => {
  const r = await ring(32, 2);
  t.teardown(() => r.stopAll());
  await settle(r);
  // One distinct finger per period; 32 nodes have about log2(32) + a few distinct fingers.
  await r.periods(20);
  let checked = 0;
  for (const node of r.running()) {
    const table = node.placement.table!;
    for (let i = 0; i < 128; i++) {
      const finger = table.finger(i);
      if (finger === undefined) continue;
      t.is(finger.id, r.trueFinger(table.self.ident, i, 128), `finger ${i} of ${node.id}`);
      checked++;
    }
  }
  t.true(checked > 32 * 100, `${checked} fingers checked`);
});

test('lookups from any node name the key successor and the next backups, in O(log N) hops', async (t) => {
  const r = await ring(64, 3);
  t.teardown(() => r.stopAll());
  await settle(r);
  await r.periods(20);
  const nodes = r.running();
  let hops = 0;
  for (let i = 0; i < 300; i++) {
    const key = `key-${i}`;
    const origin = nodes[r.random.int(nodes.length)]!;
    const set = await r.drive(origin.placement.locate(key, { intent: 'read', retry: true }));
    t.deepEqual(
      set.replicas.map((m) => m.id),
      r.replicasOf(key, BACKUPS + 1),
      key,
    );
    t.is(set.writeQuorum, 2);
    // Nodes whose successor lists differ for a moment name different sets: a compare-and-set needs all three.
    t.is(set.conditionalWriteQuorum, 3);
    t.is(conditionalQuorumProblem(set, true), undefined);
    t.is(set.readQuorum, 2);
    t.is(set.epoch, 1);
    hops += set.hops;
    const primary = r.nodes.get(set.replicas[0]!.id)!;
    t.is(primary.placement.admit(key, 'read', 1).kind, 'own');
  }
  t.log(`mean hops at N = 64: ${hops / 300}`);
  t.true(hops / 300 <= 0.5 * Math.log2(64) + 1);
});

test('admit owns the own arc and the backed-up arcs of the predecessors, and names the owners otherwise', async (t) => {
  const r = await ring(16, 4);
  t.teardown(() => r.stopAll());
  await settle(r);
  // News of a join travels along the lists one node per period: 8 successors.
  await r.periods(10);
  for (let i = 0; i < 200; i++) {
    const key = `k${i}`;
    const replicas = r.replicasOf(key, BACKUPS + 1);
    for (const node of r.running()) {
      const admission = node.placement.admit(key, 'write', 1);
      if (replicas.includes(node.id)) {
        t.is(admission.kind, 'own', `${node.id} holds ${key}`);
      } else {
        t.is(admission.kind, 'not-owner', `${node.id} does not hold ${key}`);
        if (admission.kind === 'not-owner' && admission.owners !== undefined) {
          t.deepEqual(
            admission.owners.map((m) => m.id),
            replicas,
          );
        }
      }
    }
  }
  const described = r.running()[0]!.placement.describe();
  t.is((described['backups'] as unknown[]).length, BACKUPS);
  t.truthy(described['owned']);
  // The dashboard draws this node's view of the ring: itself, its neighbours and fingers, a chord to each finger.
  const drawing = described.drawing as RingDrawing;
  t.deepEqual(drawingProblems(drawing, new Set(r.running().map((n) => n.id))), []);
  t.is(drawing.shape, 'ring');
  t.true(
    drawing.points.some((p) => p.member === r.running()[0]!.id),
    'this node is on it',
  );
  t.is(
    drawing.links?.length,
    (described['fingers'] as unknown[]).filter((f) => (f as { id: string }).id !== r.running()[0]!.id).length,
  );
});

test('a crashed node: its successor serves from the backup and the backup count comes back on the new last successor', async (t) => {
  const r = await ring(16, 5);
  t.teardown(() => r.stopAll());
  await settle(r);
  const key = 'the-key';
  const [owner, backup1, backup2] = r.replicasOf(key, 3) as [string, string, string];
  for (const node of r.running()) node.changes.length = 0;
  await r.crash(owner);
  const periods = await settle(r);
  t.log(`ring repaired ${periods} periods after the crash`);
  const after = r.replicasOf(key, 3);
  t.deepEqual(after.slice(0, 2), [backup1, backup2]);
  // The former first backup is the owner now: it answers for the key, and lookups name it.
  t.is(r.nodes.get(backup1)!.placement.admit(key, 'read', 1).kind, 'own');
  const origin = r.running().find((n) => !after.includes(n.id))!;
  const set = await r.drive(origin.placement.locate(key, { intent: 'read', retry: true }));
  t.deepEqual(
    set.replicas.map((m) => m.id),
    after,
  );
  // The new third replica was told by an old holder: a move of the arc from the survivors to it.
  const newcomer = after[2]!;
  const announced = r
    .running()
    .flatMap((n) => n.changes.flatMap((c) => c.moves.map((m) => ({ by: n.id, move: m, members: c.members ?? [] }))))
    .filter(({ move }) => move.contains(key) && move.to.includes(newcomer) && !move.from.includes(newcomer));
  t.true(
    announced.some(({ by, move }) => move.from.includes(by) && by !== newcomer),
    'a survivor holding the key announces the copy',
  );
  t.true(announced.every(({ move }) => !move.to.includes(owner)));
  t.true(
    announced.some(({ members }) => members.some((m) => m.id === newcomer)),
    'the move names the newcomer as a member',
  );
  t.true(r.running().some((n) => n.changes.some((c) => (c.departed ?? []).includes(owner))));
});

test('a node that joins takes its arc: its successor announces the hand-over, the joiner reads through the old holders', async (t) => {
  const r = await ring(12, 6);
  t.teardown(() => r.stopAll());
  await settle(r);
  for (const node of r.running()) node.changes.length = 0;
  const joiner = await r.add('joiner', 'n1');
  await settle(r);
  await r.periods(BACKUPS + 1);
  const ident = joiner.placement.table!.self.ident;
  const order = r.order();
  const at = order.findIndex((n) => n.id === 'joiner');
  const successor = order[(at + 1) % order.length]!.id;
  // A key in (predecessor, joiner]: the joiner's own arc.
  const owned = joiner.placement.describe()['owned'] as { start: string; end: string };
  t.is(owned.end, ident);
  const moves = r.nodes.get(successor)!.changes.flatMap((c) => c.moves);
  const handover = moves.find((m) => m.range === `(${owned.start}, ${owned.end}]` && m.to[0] === 'joiner');
  t.truthy(handover, 'the successor announces the arc the joiner took, the joiner first among its replicas');
  t.true(handover!.from.includes(successor));
  const incoming = joiner.changes.flatMap((c) => c.moves).find((m) => m.range === handover!.range);
  t.truthy(incoming, 'the joiner announces the same range');
  t.true(incoming!.from.includes(successor), 'and reads through its successor meanwhile');
  // The joiner also asked the holders to copy the arc over (Claim): the successor announces that copy too.
  t.true(
    moves.some(
      (m) => m.range === handover!.range && m.from.length === 1 && m.from[0] === successor && m.to.includes('joiner'),
    ),
  );
});

test('a graceful leave closes the ring at once and hands the arc to the successor', async (t) => {
  const r = await ring(10, 7);
  t.teardown(() => r.stopAll());
  await settle(r);
  const order = r.order();
  const leaving = order[3]!.id;
  const predecessor = order[2]!.id;
  const successor = order[4]!.id;
  for (const node of r.running()) node.changes.length = 0;
  await r.leave(leaving);
  // No period passed: the neighbours heard the goodbye.
  t.is(r.nodes.get(predecessor)!.placement.table!.successor?.id, successor);
  t.is(r.nodes.get(successor)!.placement.table!.predecessor?.id, predecessor);
  const owned = r.nodes.get(successor)!.placement.describe()['owned'] as { start: string };
  t.is(owned.start, r.nodes.get(predecessor)!.placement.table!.self.ident);
  t.true(r.nodes.get(successor)!.changes.some((c) => (c.departed ?? []).includes(leaving)));
  t.true(
    r.nodes
      .get(successor)!
      .changes.flatMap((c) => c.moves)
      .some((m) => m.from.includes(leaving) && !m.to.includes(leaving) && m.from.includes(successor)),
  );
  await settle(r);
  t.true(r.ringCorrect());
});

test('a node refuses to join a ring of another metric, with an error naming both', async (t) => {
  const r = new ChordRing(8);
  t.teardown(() => r.stopAll());
  await r.add('n1');
  await r.add('n2', 'n1');
  const odd = await r.build('n3', { metric: 'trivial' }, [r.nodes.get('n1')!.address]);
  await odd.transport.start();
  odd.running = true;
  const err = await t.throwsAsync(r.drive(odd.placement.start()));
  t.true(isKvError(err, 'KVMESH_ERR_PLACEMENT_INCOMPATIBLE'), String(err));
  t.log(err!.message);
  t.regex(err!.message, /md5/);
  t.regex(err!.message, /trivial/);
  t.false(odd.placement.joined);
  t.is(odd.placement.admit('1', 'read', 1).kind, 'not-owner');
  const located = await t.throwsAsync(odd.placement.locate('1', { intent: 'read' }));
  t.true(isKvError(located, 'KVMESH_ERR_PLACEMENT_INCOMPATIBLE'));
  // The ring itself is untouched.
  await r.crash('n3');
  await r.periods(3);
  t.true(r.ringCorrect());
  t.is(r.order().length, 2);
});

test('the trivial metric places integer keys mod 16 at their successor, as in dyschord', async (t) => {
  const r = new ChordRing(9);
  t.teardown(() => r.stopAll());
  // Positions 1, 3, 7, 12: the integer each id ends with.
  await r.add('n1', undefined, { metric: 'trivial' });
  for (const id of ['n3', 'n7', 'n12']) {
    await r.add(id, 'n1', { metric: 'trivial' });
    await r.periods(1);
  }
  await settle(r);
  const n3 = r.nodes.get('n3')!.placement;
  const cases: Array<[string, string[]]> = [
    ['5', ['n7', 'n12', 'n1']],
    ['21', ['n7', 'n12', 'n1']],
    ['7', ['n7', 'n12', 'n1']],
    ['13', ['n1', 'n3', 'n7']],
    ['-3', ['n1', 'n3', 'n7']],
    ['2', ['n3', 'n7', 'n12']],
  ];
  for (const [key, replicas] of cases) {
    const set = await r.drive(n3.locate(key, { intent: 'write' }));
    t.deepEqual(
      set.replicas.map((m) => m.id),
      replicas,
      `key ${key}`,
    );
  }
  t.is(r.nodes.get('n3')!.placement.admit('5', 'read', 1).kind, 'not-owner');
  t.is(r.nodes.get('n12')!.placement.admit('5', 'read', 1).kind, 'own');
  const err = await t.throwsAsync(n3.locate('apple', { intent: 'read' }));
  t.true(isKvError(err, 'KVMESH_ERR_PLACEMENT_KEY_INVALID'), String(err));
  t.is(n3.admit('apple', 'read', 1).kind, 'not-owner');
});

test('a second node at a taken position is refused', async (t) => {
  const r = new ChordRing(10);
  t.teardown(() => r.stopAll());
  await r.add('n1', undefined, { metric: 'trivial' });
  const twin = await r.build('n17', { metric: 'trivial' }, [r.nodes.get('n1')!.address]);
  await twin.transport.start();
  twin.running = true;
  const err = await t.throwsAsync(r.drive(twin.placement.start()));
  t.true(isKvError(err, 'KVMESH_ERR_PLACEMENT_INCOMPATIBLE'), String(err));
  t.regex(err!.message, /position/);
});

test('a cached route is used until a replica refuses: a retry locates afresh', async (t) => {
  const r = await ring(20, 11);
  t.teardown(() => r.stopAll());
  await settle(r);
  await r.periods(15);
  const nodes = r.running();
  // A key whose lookup takes at least one hop from its origin.
  let origin = nodes[0]!;
  let key = '';
  for (let i = 0; key === ''; i++) {
    const candidate = `cached-${i}`;
    const set = await r.drive(origin.placement.locate(candidate, { intent: 'read' }));
    if (set.hops > 0) key = candidate;
    else origin = nodes[i % nodes.length]!;
  }
  const again = await r.drive(origin.placement.locate(key, { intent: 'read' }));
  t.is(again.hops, 0, 'answered from the route cache');
  const fresh = await r.drive(origin.placement.locate(key, { intent: 'read', retry: true }));
  t.true(fresh.hops > 0, 'a retry skips the cache');
  t.deepEqual(
    fresh.replicas.map((m) => m.id),
    r.replicasOf(key, 3),
  );
});

test('start and stop are idempotent, and a stopped node refuses data', async (t) => {
  const r = new ChordRing(12);
  const node = await r.add('n1');
  await r.drive(node.placement.start());
  t.true(node.placement.joined);
  const set = await node.placement.locate('x', { intent: 'read' });
  t.deepEqual(
    set.replicas.map((m) => m.id),
    ['n1'],
  );
  t.is(set.writeQuorum, 1);
  await r.leave('n1');
  await r.drive(node.placement.stop());
  const err = await t.throwsAsync(node.placement.locate('x', { intent: 'read' }));
  t.true(isKvError(err, 'KVMESH_ERR_PLACEMENT_EMPTY'));
});
