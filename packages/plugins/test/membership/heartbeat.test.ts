import test from 'ava';
import { PluginRegistry, SimCluster, TOKENS, runMembershipConformance } from '@kvmesh/core';
import type { KvError, MembershipClaims, Rpc } from '@kvmesh/core';
import { HEARTBEAT_MESSAGES, builtinPlugins } from '../../src/index.js';

const registry = new PluginRegistry(builtinPlugins);
const OPTIONS = { heartbeatMs: 100, fanout: 3, failAfterMs: 800, cleanupAfterMs: 1600 };

/**
 * A claim about a member, as one table entry gossiped by the forger: a
 * departure or a counter far ahead of the member's own (a death is never
 * gossiped, each member concludes it from a counter that stopped growing).
 */
const claims: MembershipClaims = {
  states: ['alive', 'left'],
  forge: (cluster, claim) => {
    const entry = {
      id: claim.subject,
      address: cluster.spec(claim.subject).address,
      generation: claim.incarnation,
      counter: 2 ** 30,
      ageMs: 0,
      left: claim.state === 'left',
      meta: { ...cluster.membership(claim.subject).self.meta },
    };
    const rpc = cluster.node(claim.from).get<Rpc>(TOKENS.rpc);
    rpc.send(cluster.spec(claim.to).address, HEARTBEAT_MESSAGES.gossip, { entries: [entry] });
  },
};

runMembershipConformance(test, {
  registry,
  plugin: 'heartbeat',
  options: OPTIONS,
  nodes: 8,
  claims,
});

async function cluster(
  t: { teardown(fn: () => unknown): void },
  nodes: number,
  options: Partial<typeof OPTIONS> = {},
  seed = 3,
): Promise<SimCluster> {
  const c = await SimCluster.create({
    registry,
    nodes,
    seed,
    transport: { maxMessageBytes: 1192 },
    config: () => ({ membership: { name: 'heartbeat', options: { ...OPTIONS, ...options } } }),
  });
  t.teardown(() => c.dispose());
  await c.start();
  await c.join();
  await c.waitFor(() => seenBy(c, c.runningIds(), 'alive'), 100 * OPTIONS.heartbeatMs);
  return c;
}

/** Every running node other than the subject sees each subject in `state` (undefined: forgotten). */
function seenBy(c: SimCluster, subjects: readonly string[], state: string | undefined): boolean {
  return c.runningIds().every((o) => subjects.every((s) => s === o || c.view(o, s)?.state === state));
}

test('a crash is seen dead by every member within failAfterMs + heartbeatMs, and not long before failAfterMs', async (t) => {
  const c = await cluster(t, 20);
  const seen = new Map<string, number>();
  c.watch((observer, event) => {
    if (event.member.id === 'n7' && event.member.state === 'dead') seen.set(observer.id, c.clock.now());
  });
  await c.advance(OPTIONS.heartbeatMs / 2);
  const crashedAt = c.clock.now();
  await c.crash('n7');
  await c.waitFor(() => seen.size === 19, 3 * OPTIONS.failAfterMs);
  const delays = [...seen.values()].map((at) => at - crashedAt);
  t.log(`detection: min ${Math.min(...delays)} ms, max ${Math.max(...delays)} ms`);
  t.true(Math.max(...delays) <= OPTIONS.failAfterMs + OPTIONS.heartbeatMs);
  t.true(Math.min(...delays) >= OPTIONS.failAfterMs / 2);
});

test('a dead member is forgotten after cleanupAfterMs and stale gossip does not bring it back', async (t) => {
  const c = await cluster(t, 8);
  await c.crash('n4');
  const crashedAt = c.clock.now();
  await c.waitFor(() => seenBy(c, ['n4'], 'dead'), 2 * OPTIONS.failAfterMs);
  await c.waitFor(() => seenBy(c, ['n4'], undefined), 2 * OPTIONS.cleanupAfterMs);
  const forgottenAfter = c.clock.now() - crashedAt;
  t.log(`forgotten everywhere ${forgottenAfter} ms after the crash`);
  t.true(forgottenAfter >= OPTIONS.cleanupAfterMs - OPTIONS.heartbeatMs);
  t.true(forgottenAfter <= OPTIONS.cleanupAfterMs + OPTIONS.heartbeatMs);
  await c.advance(3 * OPTIONS.cleanupAfterMs);
  t.true(seenBy(c, ['n4'], undefined), 'still forgotten');
});

test('a member restarted before anyone noticed its crash is recognised by its new generation', async (t) => {
  const c = await cluster(t, 8);
  const before = c.view('n1', 'n5')!.incarnation;
  const dead: string[] = [];
  c.watch((observer, event) => {
    if (event.member.id === 'n5' && event.member.state !== 'alive') dead.push(observer.id);
  });
  await c.restart('n5');
  await c.join(['n5']);
  await c.waitFor(
    () => c.runningIds().every((o) => o === 'n5' || (c.view(o, 'n5')?.incarnation ?? 0) > before),
    20 * OPTIONS.heartbeatMs,
  );
  await c.advance(2 * OPTIONS.failAfterMs);
  t.true(seenBy(c, ['n5'], 'alive'));
  t.deepEqual(dead, [], 'the new run counts from 0, and nobody took the lower counter for silence');
});

test('a table too large for one datagram goes out in parts, and members stay alive when failAfterMs allows for it', async (t) => {
  // About 7 JSON entries fit in 1192 bytes, so news of a member spreads slower than with whole tables.
  const c = await cluster(t, 24, { failAfterMs: 2_000, cleanupAfterMs: 4_000 });
  const falsePositives: string[] = [];
  c.watch((observer, event) => {
    if (event.member.state !== 'alive') falsePositives.push(`${observer.id}: ${event.member.id}`);
  });
  const sentBefore = c.network.stats().sent.message;
  await c.advance(50 * OPTIONS.heartbeatMs);
  t.deepEqual(falsePositives, []);
  const perMemberPerPeriod = (c.network.stats().sent.message - sentBefore) / 24 / 50;
  t.true(perMemberPerPeriod <= OPTIONS.fanout, 'parts of one table are one datagram, not several');
  t.is(c.membership('n1').members().length, 24);
});

test('a member that is cut off sees the others dead and, after the heal, everyone is alive again', async (t) => {
  const c = await cluster(t, 6);
  const away = [c.spec('n6').address];
  c.network.partition(
    away,
    c.ids.slice(0, 5).map((id) => c.spec(id).address),
  );
  await c.waitFor(
    () => c.view('n6', 'n1')?.state === 'dead' && c.view('n1', 'n6')?.state === 'dead',
    2 * OPTIONS.failAfterMs,
  );
  c.network.heal();
  await c.waitFor(() => seenBy(c, c.ids, 'alive'), OPTIONS.cleanupAfterMs);
  t.pass();
});

test('cleanupAfterMs below failAfterMs is refused', async (t) => {
  const err = await t.throwsAsync<KvError>(
    SimCluster.create({
      registry,
      nodes: 1,
      config: () => ({ membership: { name: 'heartbeat', options: { failAfterMs: 1000, cleanupAfterMs: 500 } } }),
    }),
  );
  t.is(err.code, 'KVMESH_ERR_CONFIG_INVALID');
});
