import test from 'ava';
import { isKvError } from '@kvmesh/core';
import { ChordRing } from './chord-ring.js';

/** A ring of `n` md5 nodes joined one after another through n1, then settled. */
async function ring(n: number, seed: number): Promise<ChordRing> {
  const r = new ChordRing(seed);
  await r.add('n1');
  for (let i = 2; i <= n; i++) {
    await r.add(`n${i}`, 'n1');
    await r.periods(1);
  }
  await until(r, () => r.ringCorrect(), 60, 'the ring settles');
  return r;
}

/** Moves virtual time one period at a time until `condition` holds; @returns the periods it took. */
async function until(r: ChordRing, condition: () => boolean, limitPeriods: number, what: string): Promise<number> {
  for (let p = 0; p < limitPeriods; p++) {
    if (condition()) return p;
    await r.periods(1);
  }
  throw new Error(`${what}: not within ${limitPeriods} periods`);
}

function address(r: ChordRing, id: string): string {
  return r.nodes.get(id)!.address;
}

/** Cuts each group off from every node outside it. */
function split(r: ChordRing, ...groups: string[][]): void {
  for (const group of groups) {
    const others = [...r.nodes.keys()].filter((id) => !group.includes(id));
    r.network.partition(
      group.map((id) => address(r, id)),
      others.map((id) => address(r, id)),
    );
  }
}

/** A locate on node `id`, driven in virtual time: the replica ids, or the error code, and the virtual ms it took. */
async function locate(r: ChordRing, id: string, key: string): Promise<{ result: string[] | string; ms: number }> {
  const started = r.clock.now();
  try {
    const set = await r.drive(r.nodes.get(id)!.placement.locate(key, { intent: 'write', retry: true }));
    return { result: set.replicas.map((m) => m.id), ms: r.clock.now() - started };
  } catch (err) {
    return { result: isKvError(err) ? err.code : String(err), ms: r.clock.now() - started };
  }
}

const KEYS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot'];

test('a node cut off until it lost every successor answers a retriable error at once, and rejoins the ring after the heal', async (t) => {
  const r = await ring(5, 3);
  t.teardown(() => r.stopAll());
  const cut = r.nodes.get('n3')!.placement;
  split(r, ['n3']);
  const periods = await until(r, () => cut.table!.lost, 30, 'n3 loses every successor');
  t.log(`n3 lost every successor ${periods} periods after it was cut off`);
  t.is(cut.describe()['state'], 'rejoining');
  for (const key of KEYS) {
    const { result, ms } = await locate(r, 'n3', key);
    t.is(result, 'KVMESH_ERR_PLACEMENT_EMPTY', `locate of ${key} on the cut-off node`);
    t.true(ms <= 100, `answered in ${ms} virtual ms, without waiting for a lookup`);
  }
  t.is(cut.admit('alpha', 'write', 1).kind, 'not-owner', 'a lost node admits no key');

  r.network.heal();
  const back = await until(r, () => r.ringCorrect(), 60, 'the ring takes n3 back');
  t.log(`the ring was whole again ${back} periods after the heal`);
  t.is(cut.describe()['state'], 'joined');
  for (const key of KEYS) {
    t.deepEqual((await locate(r, 'n3', key)).result, r.replicasOf(key, 3), `replicas of ${key} named by n3`);
  }
});

test('nodes that all lost their successors at once form one ring again after the heal', async (t) => {
  const r = await ring(4, 5);
  t.teardown(() => r.stopAll());
  const ids = [...r.nodes.keys()];
  split(r, ...ids.map((id) => [id]));
  await until(r, () => r.running().every((n) => n.placement.table!.lost), 40, 'every node loses every successor');
  r.network.heal();
  const back = await until(r, () => r.ringCorrect(), 60, 'the nodes form one ring');
  t.log(`one ring again ${back} periods after the heal`);
  for (const key of KEYS) t.deepEqual((await locate(r, 'n1', key)).result, r.replicasOf(key, 3));
});

test('the two halves of a partition name no replicas while apart, and join into one ring after the heal', async (t) => {
  const r = await ring(4, 7);
  t.teardown(() => r.stopAll());
  const [a, b, c, d] = r.order().map((n) => n.id) as [string, string, string, string];
  // Each half takes every other node of the ring, so each side's ring interleaves with the other's.
  split(r, [a, c], [b, d]);
  const apart = (): boolean =>
    r.running().every((n) => {
      const window = n.placement.table!.window();
      return window.complete && window.nodes.length === 2;
    });
  const periods = await until(r, apart, 40, 'each half forms a ring of its own');
  t.log(`two rings of two ${periods} periods after the partition`);
  for (const node of r.running()) {
    for (const key of KEYS) {
      t.is((await locate(r, node.id, key)).result, 'KVMESH_ERR_PLACEMENT_EMPTY', `${key} on ${node.id}`);
    }
  }
  r.network.heal();
  const back = await until(r, () => r.ringCorrect(), 60, 'the two rings join');
  t.log(`one ring again ${back} periods after the heal`);
  for (const node of r.running()) {
    for (const key of KEYS) t.deepEqual((await locate(r, node.id, key)).result, r.replicasOf(key, 3));
  }
});

test('the larger side of a partition keeps serving, with the replicas of the nodes it reaches', async (t) => {
  const r = await ring(5, 9);
  t.teardown(() => r.stopAll());
  const [a, b, c, d, e] = r.order().map((n) => n.id) as [string, string, string, string, string];
  split(r, [a, c], [b, d, e]);
  const larger = [b, d, e];
  const ringOf = (ids: string[]): boolean =>
    ids.every((id) => {
      const window = r.nodes.get(id)!.placement.table!.window();
      return window.complete && window.nodes.length === ids.length;
    });
  await until(r, () => ringOf(larger) && ringOf([a, c]), 40, 'each side forms a ring of its own');
  // The key's successor and the next nodes among those of the larger side: the whole ring's order, without a and c.
  const truth = (key: string): string[] =>
    r
      .replicasOf(key, 5)
      .filter((id) => larger.includes(id))
      .slice(0, 3);
  for (const id of larger) {
    for (const key of KEYS) t.deepEqual((await locate(r, id, key)).result, truth(key), `${key} on ${id}`);
  }
  for (const id of [a, c]) {
    for (const key of KEYS) t.is((await locate(r, id, key)).result, 'KVMESH_ERR_PLACEMENT_EMPTY', `${key} on ${id}`);
  }
  r.network.heal();
  await until(r, () => r.ringCorrect(), 60, 'the two rings join');
});

test('two nodes restarted through each other find the ring through the nodes that remember them', async (t) => {
  const r = await ring(4, 11);
  t.teardown(() => r.stopAll());
  await r.crash('n1');
  await r.crash('n2');
  // Each restarts with the other as its only seed: neither is in a ring, so neither can let the other join.
  const n1 = await r.build('n1', {}, [address(r, 'n2')]);
  const n2 = await r.build('n2', {}, [address(r, 'n1')]);
  await r.start(n1);
  await r.start(n2);
  t.false(n1.placement.joined);
  t.false(n2.placement.joined);
  const periods = await until(r, () => r.ringCorrect(), 120, 'the restarted nodes join the ring');
  t.log(`one ring of four ${periods} periods after the restarts`);
  for (const key of KEYS) t.deepEqual((await locate(r, 'n1', key)).result, r.replicasOf(key, 3));
});
