import test from 'ava';
import { PluginRegistry, SimCluster, isKvError } from '@kvmesh/core';
import type { KvError, MembershipEvent, ViewParameters } from '@kvmesh/core';
import type { StaticMembership } from '../../src/index.js';
import { builtinPlugins, parseParameters } from '../../src/index.js';

// The parameters a static view carries for the placement (Membership.viewParameters), e.g. a CSE138 repl-factor.

const registry = new PluginRegistry(builtinPlugins);
const SYNC_MS = 200;

/** `n1@n1:7946`...: the simulated nodes, named as the cluster names them. */
const named = (...indexes: number[]): string[] => indexes.map((i) => `n${i}@n${i}:7946`);
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

async function cluster(t: { teardown(fn: () => unknown): void }, nodes: number): Promise<SimCluster> {
  const c = await SimCluster.create({
    registry,
    nodes,
    seed: 13,
    config: () => ({
      membership: { name: 'static', options: { view: named(...range(nodes)), syncIntervalMs: SYNC_MS } },
    }),
  });
  t.teardown(() => c.dispose());
  await c.start();
  return c;
}

const membership = (c: SimCluster, id: string) => c.membership(id) as StaticMembership;

test('view parameters travel with a view change to every member, survive a restart, and stay when a change names none', async (t) => {
  const c = await cluster(t, 4);
  await c.join();
  const seen: Array<[string, MembershipEvent]> = [];
  c.watch((observer, event) => seen.push([observer.id, event]));
  await c.settle(membership(c, 'n2').setView(named(1, 2, 3, 4), { replicationFactor: 1 }));
  for (const id of c.ids) {
    t.deepEqual(membership(c, id).viewParameters, { replicationFactor: 1 }, `${id} got the parameters with the view`);
    t.is(membership(c, id).epoch, 1);
  }
  // The members did not change, yet every listener hears about every member: placement and movement look again.
  for (const id of c.ids) {
    t.deepEqual(
      seen
        .filter(([o, e]) => o === id && e.member.state === 'alive' && e.previous === 'alive')
        .map(([, e]) => e.member.id)
        .sort(),
      ['n1', 'n2', 'n3', 'n4'],
      `${id} heard of every member`,
    );
  }

  seen.length = 0;
  await c.settle(membership(c, 'n3').setView(named(1, 2, 3, 4, 5)));
  t.deepEqual(membership(c, 'n1').viewParameters, { replicationFactor: 1 }, 'a view change naming none keeps them');
  t.false(
    seen.some(([o, e]) => o === 'n1' && e.member.id === 'n2'),
    'unchanged parameters and members: no event for a member that stayed',
  );
  await c.settle(membership(c, 'n1').setView(named(1, 2, 3, 4), { replicationFactor: 2 }));
  t.deepEqual(membership(c, 'n4').viewParameters, { replicationFactor: 2 }, 'a view change naming them replaces them');

  await c.restart('n3');
  t.deepEqual(membership(c, 'n3').viewParameters, { replicationFactor: 2 }, 'before any exchange: read from disk');
  t.is(membership(c, 'n3').epoch, 3);
});

test('a member that missed a change of parameters alone pulls it from a peer with the higher epoch', async (t) => {
  const c = await cluster(t, 3);
  await c.join();
  c.network.partition(
    [c.spec('n3').address],
    ['n1', 'n2'].map((id) => c.spec(id).address),
  );
  await c.settle(membership(c, 'n1').setView(named(1, 2, 3), { replicationFactor: 3 }));
  await c.advance(10 * SYNC_MS);
  t.deepEqual(membership(c, 'n3').viewParameters, {}, 'the partition kept the change away');
  c.network.heal();
  const took = await c.waitFor(() => membership(c, 'n3').viewParameters['replicationFactor'] === 3, 50 * SYNC_MS);
  t.log(`caught up ${took} virtual ms after the heal`);
  t.is(membership(c, 'n3').epoch, 1);
});

test('concurrent view changes of one epoch that differ only in parameters settle on the same parameters everywhere', async (t) => {
  const c = await cluster(t, 4);
  await c.settle(
    Promise.all([
      membership(c, 'n1').setView(named(1, 2, 3, 4), { replicationFactor: 2 }),
      membership(c, 'n4').setView(named(1, 2, 3, 4), { replicationFactor: 4 }),
    ]),
  );
  await c.waitFor(
    () => new Set(c.ids.map((id) => JSON.stringify(membership(c, id).viewParameters))).size === 1,
    50 * SYNC_MS,
  );
  t.true(c.ids.every((id) => membership(c, id).epoch === 1));
  t.deepEqual(
    membership(c, 'n2').viewParameters,
    { replicationFactor: 4 },
    'ordered by the parameters: the larger text',
  );
});

test('view parameters that are not whole numbers from 0 to 2^32 - 1 named by a word are refused and change nothing', async (t) => {
  const c = await cluster(t, 2);
  const m = membership(c, 'n1');
  for (const bad of [{ replicationFactor: 1.5 }, { replicationFactor: -1 }, { 'not a word': 1 }, { f: 2 ** 32 }]) {
    const err = await t.throwsAsync<KvError>(m.setView(named(1, 2), bad as unknown as ViewParameters));
    t.true(isKvError(err, 'KVMESH_ERR_MEMBERSHIP_VIEW_INVALID'), JSON.stringify(bad));
  }
  t.is(m.epoch, 0);
  t.deepEqual(m.viewParameters, {});
  t.deepEqual(parseParameters({ b: 2, a: 1 }), { a: 1, b: 2 });
});
