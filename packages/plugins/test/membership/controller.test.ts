import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { PluginRegistry, SimCluster, TOKENS, runMembershipConformance } from '@kvmesh/core';
import type { Logger, Member, MembershipClaims, Rpc } from '@kvmesh/core';
import { CONTROLLER_MESSAGES, CONTROLLER_STATE_FILE, builtinPlugins } from '../../src/index.js';
import type { ControllerMembership } from '../../src/index.js';

const registry = new PluginRegistry(builtinPlugins);
const OPTIONS = {
  controller: 'n1:7946',
  heartbeatMs: 100,
  failAfterMs: 300,
  probeTimeoutMs: 30,
  probeAttempts: 3,
  removeDeadAfterMs: 0,
};

/** The controller's state names on the wire. */
const WIRE_STATE = { alive: 'ALIVE', suspect: 'SUSPECT', dead: 'DEAD', left: 'LEFT' } as const;

/**
 * A claim about a member, as the forger can make it: to the controller, a
 * leave in the member's name or a heartbeat carrying it; to every other
 * member, a whole member list pushed as if by the controller, naming the
 * member in the claimed state (a death is otherwise the controller's own
 * finding).
 */
const claims: MembershipClaims = {
  states: ['alive', 'suspect', 'dead', 'left'],
  forge: (cluster, claim) => {
    const rpc = cluster.node(claim.from).get<Rpc>(TOKENS.rpc);
    const controller = cluster.specs[0]!.address;
    const subject = cluster.membership(claim.subject).self;
    const members = cluster
      .membership(claim.from)
      .members()
      .map((m) => (m.id === subject.id ? { ...m, state: claim.state, incarnation: claim.incarnation } : m))
      .map((m) => ({ ...m, state: `CONTROLLER_STATE_${WIRE_STATE[m.state]}`, meta: { ...m.meta } }));
    const list = { generation: 2 ** 42, version: 1, full: true, baseVersion: 0, members };
    // Pushed as the controller pushes a change: to every member (the one meant to hear it among them).
    for (const id of cluster.runningIds().filter((id) => id !== cluster.specs[0]!.id && id !== claim.from)) {
      rpc.request(cluster.spec(id).address, CONTROLLER_MESSAGES.list, list).catch(() => undefined);
    }
    if (claim.state !== 'alive' && claim.state !== 'left') return;
    const sent =
      claim.state === 'left'
        ? rpc.request(controller, CONTROLLER_MESSAGES.leave, { id: subject.id, incarnation: claim.incarnation })
        : rpc.request(controller, CONTROLLER_MESSAGES.heartbeat, {
            member: {
              id: subject.id,
              address: subject.address,
              state: 'CONTROLLER_STATE_ALIVE',
              incarnation: claim.incarnation,
              meta: { ...subject.meta },
            },
            generation: 0,
            version: 0,
          });
    sent.catch(() => undefined);
  },
};

runMembershipConformance(test, {
  registry,
  plugin: 'controller',
  options: OPTIONS,
  nodes: 8,
  claims,
  configure: (spec) => ({
    node: { role: spec.index === 0 ? 'controller' : spec.index === 1 ? 'frontend' : 'storage' },
  }),
  essential: (spec) => spec.index === 0,
});

interface Line {
  readonly level: string;
  readonly fields: Record<string, unknown>;
  readonly message: string | undefined;
}

/** A logger that keeps every line, to see what the controller did. */
function recordingLogger(lines: Line[], bindings: Record<string, unknown> = {}): Logger {
  const log =
    (level: string) =>
    (fields: Record<string, unknown>, message?: string): void => {
      lines.push({ level, fields: { ...bindings, ...fields }, message });
    };
  return {
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    child: (more) => recordingLogger(lines, { ...bindings, ...more }),
  };
}

/** n1 is the controller, n2 a frontend, the rest storage nodes. */
async function cluster(
  t: { teardown(fn: () => unknown): void },
  nodes = 5,
  options: Partial<typeof OPTIONS> = {},
  logger?: Logger,
): Promise<SimCluster> {
  const c = await SimCluster.create({
    registry,
    nodes,
    seed: 5,
    ...(logger ? { logger } : {}),
    config: (spec) => ({
      node: { role: spec.index === 0 ? 'controller' : spec.index === 1 ? 'frontend' : 'storage' },
      membership: { name: 'controller', options: { ...OPTIONS, ...options } },
    }),
  });
  t.teardown(() => c.dispose());
  await c.start();
  await c.join();
  await c.waitFor(() => everyoneSees(c, 'alive'), 10 * OPTIONS.heartbeatMs);
  return c;
}

/** Every running node sees every running node in `state`. */
function everyoneSees(c: SimCluster, state: string, subjects: readonly string[] = c.runningIds()): boolean {
  return c.runningIds().every((o) => subjects.every((s) => s === o || c.view(o, s)?.state === state));
}

const states = (c: SimCluster, observer: string) =>
  Object.fromEntries(
    c
      .membership(observer)
      .members()
      .map((m) => [m.id, m.state]),
  );

test('every member lists every node with its role; the controller persists the list atomically', async (t) => {
  const c = await cluster(t);
  t.deepEqual(
    c
      .membership('n3')
      .members()
      .map((m) => [m.id, m.meta['role'], m.meta['api']]),
    [
      ['n1', 'controller', 'http://n1:7946'],
      ['n2', 'frontend', 'http://n2:7946'],
      ['n3', 'storage', 'http://n3:7946'],
      ['n4', 'storage', 'http://n4:7946'],
      ['n5', 'storage', 'http://n5:7946'],
    ],
  );
  t.true((c.membership('n1') as ControllerMembership).isController);
  // Stopping waits for the write under way.
  await c.stop('n1');
  const dir = c.node('n1').info.dataDir;
  const saved = JSON.parse(await readFile(join(dir, CONTROLLER_STATE_FILE), 'utf8')) as { members: Member[] };
  t.deepEqual(
    saved.members.map((m) => [m.id, m.state]),
    ['n1', 'n2', 'n3', 'n4', 'n5'].map((id) => [id, 'alive']),
  );
  t.deepEqual(
    (await readdir(dir)).filter((f) => f.endsWith('.tmp')),
    [],
    'no temporary file left behind',
  );
});

test('a restarted controller starts from its file and members re-register with it', async (t) => {
  const c = await cluster(t);
  await c.leave('n5');
  await c.waitFor(() => c.view('n3', 'n5')?.state === 'left', OPTIONS.heartbeatMs);
  await c.advance(10);
  await c.crash('n1');
  await c.restart('n1');
  t.deepEqual(states(c, 'n1'), { n1: 'alive', n2: 'alive', n3: 'alive', n4: 'alive', n5: 'left' }, 'read from disk');
  await c.crash('n4');
  const took = await c.waitFor(() => c.view('n2', 'n4')?.state === 'dead', 10 * OPTIONS.failAfterMs);
  t.true(took <= OPTIONS.failAfterMs + OPTIONS.probeAttempts * OPTIONS.probeTimeoutMs + OPTIONS.heartbeatMs);
  t.deepEqual(states(c, 'n2'), { n1: 'alive', n2: 'alive', n3: 'alive', n4: 'dead', n5: 'left' });
});

test('frontends receive changes pushed at once, without waiting for their next heartbeat', async (t) => {
  const c = await cluster(t, 5, { heartbeatMs: 5_000, failAfterMs: 15_000 });
  const start = c.clock.now();
  await c.leave('n4');
  await c.waitFor(() => c.view('n2', 'n4')?.state === 'left', 5_000, 1);
  t.true(c.clock.now() - start < 50, `the frontend heard of the leave after ${c.clock.now() - start} ms`);
  await c.restart('n4');
  const back = c.clock.now();
  await c.waitFor(() => c.view('n2', 'n4')?.state === 'alive', 5_000, 1);
  t.true(c.clock.now() - back < 50, 'a registration is pushed too');
});

test('a lost push is healed by the next heartbeat answer', async (t) => {
  const c = await cluster(t);
  c.network.partition([c.spec('n2').address], [c.spec('n1').address]);
  await c.leave('n5');
  await c.advance(3 * OPTIONS.heartbeatMs);
  t.is(c.view('n2', 'n5')?.state, 'alive', 'the push could not reach the frontend');
  c.network.heal();
  await c.waitFor(() => c.view('n2', 'n5')?.state === 'left', 2 * OPTIONS.heartbeatMs);
  t.pass();
});

test('a reported member is probed before it is declared dead; a false report kills nobody', async (t) => {
  const lines: Line[] = [];
  // Heartbeat timeouts far away: only reports can lead to a verdict here.
  const c = await cluster(t, 5, { heartbeatMs: 1_000, failAfterMs: 60_000 }, recordingLogger(lines));
  const frontend = c.membership('n2');
  // The frontend cannot reach n3, the controller can: the report is false.
  c.network.partition([c.spec('n2').address], [c.spec('n3').address]);
  frontend.reportUnreachable?.('n3');
  t.is(c.view('n2', 'n3')?.state, 'alive', 'a report never marks a member dead by itself');
  await c.advance(2_000);
  t.true(lines.some((l) => l.fields['node'] === 'n1' && l.fields['id'] === 'n3' && /probing/.test(l.message ?? '')));
  t.true(everyoneSees(c, 'alive'), 'n3 answered the probe and stays alive');
  c.network.heal();

  await c.crash('n4');
  const crashedAt = c.clock.now();
  frontend.reportUnreachable?.('n4');
  await c.waitFor(() => everyoneSees(c, 'dead', ['n4']), 1_000, 1);
  const took = c.clock.now() - crashedAt;
  t.log(`a reported crash was confirmed and seen everywhere after ${took} ms`);
  t.true(took < OPTIONS.probeAttempts * OPTIONS.probeTimeoutMs + 50);
});

test('a probe that times out counts: a black-holed member is dead after every attempt failed', async (t) => {
  const c = await cluster(t, 4, { heartbeatMs: 1_000, failAfterMs: 60_000 });
  c.network.partition(
    [c.spec('n4').address],
    ['n1', 'n2', 'n3'].map((id) => c.spec(id).address),
  );
  const start = c.clock.now();
  c.membership('n3').reportUnreachable?.('n4');
  await c.waitFor(() => c.view('n3', 'n4')?.state === 'dead', 5_000, 1);
  t.true(c.clock.now() - start >= OPTIONS.probeAttempts * OPTIONS.probeTimeoutMs, 'every probe waited its deadline');
});

test('members keep their view while the controller is down and register again when it returns', async (t) => {
  const c = await cluster(t);
  await c.crash('n1');
  await c.advance(20 * OPTIONS.failAfterMs);
  t.true(everyoneSees(c, 'alive', ['n2', 'n3', 'n4', 'n5']), 'nobody lost a member while the controller was away');
  await c.crash('n5');
  await c.restart('n1');
  const took = await c.waitFor(
    () => everyoneSees(c, 'alive') && everyoneSees(c, 'dead', ['n5']),
    20 * OPTIONS.heartbeatMs,
  );
  t.log(`back in step ${took} ms after the controller restarted`);
  t.is(c.view('n1', 'n3')?.state, 'alive');
});

test('a member declared dead behind a partition refutes with a new incarnation after the heal', async (t) => {
  const c = await cluster(t);
  const before = c.view('n2', 'n3')!.incarnation;
  c.network.partition(
    [c.spec('n3').address],
    ['n1', 'n2', 'n4', 'n5'].map((id) => c.spec(id).address),
  );
  await c.waitFor(() => c.view('n2', 'n3')?.state === 'dead', 10 * OPTIONS.failAfterMs);
  c.network.heal();
  await c.waitFor(() => everyoneSees(c, 'alive'), 10 * OPTIONS.heartbeatMs);
  t.true(c.view('n2', 'n3')!.incarnation > before);
  t.is(c.membership('n3').self.state, 'alive');
});

test('with removeDeadAfterMs the controller removes a dead member, which registers again when it returns', async (t) => {
  const removeDeadAfterMs = 1_000;
  const c = await cluster(t, 5, { removeDeadAfterMs });
  await c.crash('n4');
  await c.waitFor(() => everyoneSees(c, 'dead', ['n4']), 10 * OPTIONS.failAfterMs);
  const deadAt = c.clock.now();
  t.is(c.view('n2', 'n4')?.state, 'dead', 'dead first: a crash alone moves nothing');
  await c.waitFor(() => everyoneSees(c, 'left', ['n4']), 2 * removeDeadAfterMs);
  const took = c.clock.now() - deadAt;
  t.log(`removed ${took} ms after it was declared dead`);
  t.true(took >= removeDeadAfterMs - OPTIONS.heartbeatMs, `removed after ${took} ms, not before ${removeDeadAfterMs}`);
  const dir = c.node('n1').info.dataDir;
  // The file is written by real I/O after the change, not on the virtual clock: wait for it, in real time.
  const persisted = async (): Promise<string | undefined> => {
    try {
      const saved = JSON.parse(await readFile(join(dir, CONTROLLER_STATE_FILE), 'utf8')) as { members: Member[] };
      return saved.members.find((m) => m.id === 'n4')?.state;
    } catch {
      return undefined; // Not written yet, or being replaced.
    }
  };
  const deadline = Date.now() + 10_000;
  while ((await persisted()) !== 'left' && Date.now() < deadline) await c.advance(10);
  t.is(await persisted(), 'left', 'the removal is persisted');
  await c.restart('n4');
  await c.waitFor(() => everyoneSees(c, 'alive'), 10 * OPTIONS.heartbeatMs);
  t.deepEqual(states(c, 'n2'), { n1: 'alive', n2: 'alive', n3: 'alive', n4: 'alive', n5: 'alive' });
});

test('a controller cut off from most members declares them dead but removes none, and they return alive', async (t) => {
  const removeDeadAfterMs = 1_000;
  const c = await cluster(t, 5, { removeDeadAfterMs });
  const others = ['n2', 'n3', 'n4', 'n5'];
  c.network.partition(
    [c.spec('n1').address],
    others.map((id) => c.spec(id).address),
  );
  await c.waitFor(() => others.every((id) => c.view('n1', id)?.state === 'dead'), 20 * OPTIONS.failAfterMs);
  // Far past removeDeadAfterMs: the controller hears from itself alone, a minority of the five.
  await c.advance(5 * removeDeadAfterMs);
  t.deepEqual(
    others.map((id) => c.view('n1', id)?.state),
    ['dead', 'dead', 'dead', 'dead'],
    'kept as dead, not removed (left)',
  );
  c.network.heal();
  await c.waitFor(() => everyoneSees(c, 'alive'), 20 * OPTIONS.heartbeatMs);
  t.deepEqual(states(c, 'n2'), { n1: 'alive', n2: 'alive', n3: 'alive', n4: 'alive', n5: 'alive' });
});

test('a member that registers again while dead is not removed later', async (t) => {
  const removeDeadAfterMs = 1_000;
  const c = await cluster(t, 5, { removeDeadAfterMs });
  await c.crash('n4');
  await c.waitFor(() => everyoneSees(c, 'dead', ['n4']), 10 * OPTIONS.failAfterMs);
  await c.restart('n4');
  await c.waitFor(() => everyoneSees(c, 'alive'), 10 * OPTIONS.heartbeatMs);
  await c.advance(2 * removeDeadAfterMs);
  t.deepEqual(states(c, 'n1'), { n1: 'alive', n2: 'alive', n3: 'alive', n4: 'alive', n5: 'alive' });
});

test('with the controller learned from the seeds, its pushes count from the join on and a list pushed by another node is refused', async (t) => {
  const c = await cluster(t, 5, { controller: '' });
  const refused = (): number =>
    c.runningIds().reduce((sum, id) => sum + (c.membership(id) as ControllerMembership).refusedClaims, 0);
  t.is(refused(), 0, 'a push that arrived while the join was under way was taken for a forgery');
  const members = c
    .membership('n3')
    .members()
    .map((m) => ({
      ...m,
      state: m.id === 'n5' ? 'CONTROLLER_STATE_DEAD' : 'CONTROLLER_STATE_ALIVE',
      meta: { ...m.meta },
    }));
  const rpc = c.node('n3').get<Rpc>(TOKENS.rpc);
  await c.settle(
    rpc.request(c.spec('n4').address, CONTROLLER_MESSAGES.list, {
      generation: 2 ** 42,
      version: 1,
      full: true,
      baseVersion: 0,
      members,
    }),
  );
  t.is(c.view('n4', 'n5')?.state, 'alive');
  t.is(refused(), 1);
});
