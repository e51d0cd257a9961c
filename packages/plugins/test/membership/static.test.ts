import test from 'ava';
import { PluginRegistry, SimCluster, TOKENS, isKvError, runMembershipConformance } from '@kvmesh/core';
import type { KvError, MembershipClaims, MembershipEvent, Rpc } from '@kvmesh/core';
import type { StaticMembership } from '../../src/index.js';
import { STATIC_MESSAGES, builtinPlugins, parseView } from '../../src/index.js';

const registry = new PluginRegistry(builtinPlugins);
const SYNC_MS = 200;

/** `n1@n1:7946`...: the simulated nodes, named as the cluster names them. */
const named = (...indexes: number[]): string[] => indexes.map((i) => `n${i}@n${i}:7946`);
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

/** A claim about a member, as an exchange whose sender facts name that member but come from the forger. */
const claims: MembershipClaims = {
  states: ['alive', 'left'],
  forge: (cluster, claim) => {
    const sender = {
      id: claim.subject,
      incarnation: claim.incarnation,
      meta: { ...cluster.membership(claim.subject).self.meta },
      left: claim.state === 'left',
    };
    const rpc = cluster.node(claim.from).get<Rpc>(TOKENS.rpc);
    rpc
      .request(cluster.spec(claim.to).address, STATIC_MESSAGES.exchange, { epoch: 0, view: [], sender })
      .catch(() => undefined);
  },
};

runMembershipConformance(test, {
  registry,
  plugin: 'static',
  options: { view: named(...range(8)), syncIntervalMs: SYNC_MS },
  nodes: 8,
  claims,
  // An administered view has no failure detection. The suite's lifecycle check waits
  // bounds.detectionMs of virtual time, which is Infinity here: the same check runs below.
  skip: ['detect', 'lifecycle'],
});

async function cluster(
  t: { teardown(fn: () => unknown): void },
  nodes: number,
  view: (id: string) => string[] = () => named(...range(nodes)),
): Promise<SimCluster> {
  const c = await SimCluster.create({
    registry,
    nodes,
    seed: 11,
    config: (spec) => ({ membership: { name: 'static', options: { view: view(spec.id), syncIntervalMs: SYNC_MS } } }),
  });
  t.teardown(() => c.dispose());
  await c.start();
  return c;
}

const membership = (c: SimCluster, id: string) => c.membership(id) as StaticMembership;

test('members come from the view: alive, addressed on this transport, with api meta', async (t) => {
  const c = await cluster(t, 3);
  const m = membership(c, 'n2');
  t.deepEqual(
    m.members().map((x) => [x.id, x.address, x.state]),
    [
      ['n1', 'sim://n1:7946', 'alive'],
      ['n2', 'sim://n2:7946', 'alive'],
      ['n3', 'sim://n3:7946', 'alive'],
    ],
  );
  t.deepEqual(m.self.meta, { api: 'http://n2:7946', role: 'storage' });
  t.is(m.epoch, 0);
  t.is(m.bounds.detectionMs, Infinity, 'static declares no failure detection');
  await c.join();
  t.deepEqual(m.members()[0]!.meta, { api: 'http://n1:7946', role: 'storage' }, 'meta learned from the member itself');
});

test('the view option takes the CSE138 VIEW string; ids are host:port unless named', (t) => {
  t.deepEqual(
    parseView(' 10.10.0.3:8085,10.10.0.2:8085 ,,').map((e) => [e.id, e.hostPort]),
    [
      ['10.10.0.2:8085', '10.10.0.2:8085'],
      ['10.10.0.3:8085', '10.10.0.3:8085'],
    ],
  );
  t.deepEqual(
    parseView(['a@h:1', 'h:2', 'h:2']).map((e) => e.text),
    ['a@h:1', 'h:2'],
  );
  for (const bad of [['10.10.0.2'], ['h:1', ''], ['a@h:1', 'a@h:2'], ['a@h:1', 'b@h:1'], ['x y@h:1']]) {
    const err = t.throws<KvError>(() => parseView(bad));
    t.true(isKvError(err, 'KVMESH_ERR_MEMBERSHIP_VIEW_INVALID'), JSON.stringify(bad));
  }
});

test('a view change reaches every member of the old and the new view with the next epoch', async (t) => {
  // n1..n3 run the old view; n4 and n5 start with the new one, as CSE138 starts added nodes.
  const c = await cluster(t, 5, (id) => (['n4', 'n5'].includes(id) ? named(1, 2, 4, 5) : named(1, 2, 3)));
  const seen: Array<[string, MembershipEvent]> = [];
  c.watch((observer, event) => seen.push([observer.id, event]));
  await c.settle(membership(c, 'n2').setView(named(1, 2, 4, 5)));
  for (const id of c.ids) {
    t.is(membership(c, id).epoch, 1, `${id} got the change when setView resolved`);
    t.deepEqual(membership(c, id).view, named(1, 2, 4, 5));
  }
  t.deepEqual(
    membership(c, 'n1')
      .members()
      .map((m) => m.id),
    ['n1', 'n2', 'n4', 'n5'],
  );
  t.is(membership(c, 'n3').self.state, 'left', 'a removed node sees itself out of the view');
  const removal = seen.find(([o, e]) => o === 'n1' && e.member.id === 'n3');
  t.deepEqual([removal?.[1].member.state, removal?.[1].previous], ['left', 'alive']);
  t.true(seen.some(([o, e]) => o === 'n1' && e.member.id === 'n4' && e.previous === undefined));
});

test('a member partitioned during a view change catches up from a peer with a higher epoch after the heal', async (t) => {
  const c = await cluster(t, 4);
  await c.join();
  const away = [c.spec('n4').address];
  c.network.partition(
    away,
    c.ids.slice(0, 3).map((id) => c.spec(id).address),
  );
  await c.settle(membership(c, 'n1').setView(named(1, 2, 3, 4).concat('n9@n9:7946')));
  await c.advance(10 * SYNC_MS);
  t.is(membership(c, 'n4').epoch, 0, 'the partition kept the change away');
  c.network.heal();
  const took = await c.waitFor(() => membership(c, 'n4').epoch === 1, 50 * SYNC_MS);
  t.log(`caught up ${took} virtual ms after the heal`);
  t.true(
    membership(c, 'n4')
      .members()
      .some((m) => m.id === 'n9'),
  );
});

test('concurrent view changes of one epoch settle on the same view everywhere', async (t) => {
  const c = await cluster(t, 4);
  await c.settle(
    Promise.all([membership(c, 'n1').setView(named(1, 2, 3)), membership(c, 'n4').setView(named(2, 3, 4))]),
  );
  await c.waitFor(() => new Set(c.ids.map((id) => membership(c, id).view.join())).size === 1, 50 * SYNC_MS);
  t.true(c.ids.every((id) => membership(c, id).epoch === 1));
});

test('a restarted member keeps the latest view and epoch from its data directory', async (t) => {
  const c = await cluster(t, 3);
  await c.settle(membership(c, 'n1').setView(named(1, 2, 3).concat('n7@n7:7946')));
  await c.restart('n3');
  t.is(membership(c, 'n3').epoch, 1, 'before any exchange: read from disk');
  t.deepEqual(membership(c, 'n3').view, named(1, 2, 3, 7));
});

test('a leave is announced: others list the member left until it runs again', async (t) => {
  const c = await cluster(t, 3);
  await c.join();
  await c.leave('n3');
  t.is(c.view('n1', 'n3')?.state, 'left');
  t.is(c.view('n2', 'n3')?.state, 'left');
  await c.restart('n3');
  await c.join(['n3']);
  t.is(c.view('n1', 'n3')?.state, 'alive');
  t.is(c.view('n2', 'n3')?.state, 'alive');
});

test('a view change with a bad entry is refused and changes nothing', async (t) => {
  const c = await cluster(t, 2);
  const m = membership(c, 'n1');
  for (const bad of [[], ['nonsense']]) {
    const err = await t.throwsAsync<KvError>(m.setView(bad));
    t.is(err.code, 'KVMESH_ERR_MEMBERSHIP_VIEW_INVALID');
  }
  t.is(m.epoch, 0);
});

test('a view change keeps the id of every member it keeps, and refuses to rename one', async (t) => {
  const c = await cluster(t, 3);
  await c.join();
  const m = membership(c, 'n1');
  // Plain host:port entries (as a CSE138 client writes them) name the members already at those addresses.
  await c.settle(m.setView(['n1:7946', 'n2:7946', 'n3:7946', 'n4:7946']));
  t.deepEqual(
    m.members().map((x) => x.id),
    ['n1', 'n2', 'n3', 'n4:7946'],
  );
  t.deepEqual(m.view, ['n1@n1:7946', 'n2@n2:7946', 'n3@n3:7946', 'n4:7946']);
  await c.waitFor(() => membership(c, 'n3').epoch === 1, 10 * SYNC_MS);
  t.is(membership(c, 'n3').self.id, 'n3', 'a member that received the view is still itself');
  const err = await t.throwsAsync<KvError>(m.setView(['n9@n1:7946', 'n2:7946']));
  t.is(err.code, 'KVMESH_ERR_MEMBERSHIP_VIEW_INVALID');
  t.regex(err.message, /n1:7946 is member 'n1', which a view change cannot rename to 'n9'/);
  t.is(m.epoch, 1, 'nothing changed');
});

test('a member refuses a view that names it other than its node.id, and keeps its keys where they are', async (t) => {
  const c = await cluster(t, 3);
  await c.join();
  // n1 does not know n3's address (a view of n1, n2), so the plain entry it sends names n3 by its address.
  await c.settle(membership(c, 'n1').setView(['n1:7946', 'n2:7946']));
  await c.waitFor(() => membership(c, 'n2').epoch === 1, 10 * SYNC_MS);
  await c.settle(membership(c, 'n1').setView(['n1:7946', 'n2:7946', 'n3:7946']));
  await c.advance(10 * SYNC_MS);
  t.is(membership(c, 'n2').epoch, 2);
  t.is(membership(c, 'n3').epoch, 1, 'n3 did not install the view calling it n3:7946');
  t.is(membership(c, 'n3').self.id, 'n3');
});

test('a node whose view names it other than its node.id refuses to start, saying what to write', async (t) => {
  const err = await t.throwsAsync(() => cluster(t, 2, () => ['n1:7946', 'n2:7946']));
  t.true(isKvError(err, 'KVMESH_ERR_CONFIG_INVALID') || /names this node/.test(String(err?.message)), String(err));
  t.regex(
    String(err?.message),
    /the view names this node \(n\d:7946\) 'n\d:7946', but its node.id is 'n\d': write n\d@n\d:7946/,
  );
});

test('a second start schedules nothing and stopped members leave no timer behind', async (t) => {
  const c = await cluster(t, 3);
  await c.join();
  const pending = c.clock.pending();
  await c.settle(Promise.resolve(membership(c, 'n2').start()));
  t.is(c.clock.pending(), pending);
  await membership(c, 'n2').stop();
  await membership(c, 'n2').stop();
  await c.dispose();
  await c.clock.runUntilIdleAsync(10 * SYNC_MS);
  t.is(c.clock.pending(), 0);
});
