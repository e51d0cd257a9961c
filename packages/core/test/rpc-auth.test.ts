import test from 'ava';
import {
  FrameAuth,
  FrameKind,
  PluginRegistry,
  SeededRandom,
  SimNetwork,
  TOKENS,
  VirtualClock,
  createNode,
  frameNonce,
  validateConfig,
  writeFrame,
} from '../src/index.js';
import type { KvNode, MessageRegistry, Rpc, RpcStats, Transport, KvError } from '../src/index.js';
import { fakeStorage, stubPlugin } from './helpers/fake-plugins.js';
import { testCodec } from './helpers/test-codec.js';

const OLD = 'old-secret-0123456789abcdef';
const NEW = 'new-secret-fedcba9876543210';
const ECHO_PROTO = `syntax = "proto3";
package test;
message Echo { string text = 1; }
`;

function auth(clock: VirtualClock, secrets: string[], extra: { maxNonces?: number; encrypt?: boolean } = {}) {
  return new FrameAuth({
    secrets,
    senderId: 'n1',
    clock,
    replayWindowMs: 30_000,
    maxNonces: extra.maxNonces ?? 1000,
    encrypt: extra.encrypt ?? false,
  });
}

const REQUEST = { codecTag: 1, kind: FrameKind.Request, deadlineMs: 500 };
const BODY = new TextEncoder().encode('{"type":"test.Echo","payload":{"text":"hello"}}');

test('a sealed frame opens with the same secret, with its header, body and sender', (t) => {
  const clock = new VirtualClock();
  const frame = auth(clock, [OLD]).seal(REQUEST, BODY);
  const opened = auth(clock, [OLD]).open(frame);
  if (typeof opened === 'string') return t.fail(opened);
  t.deepEqual(opened.header, REQUEST);
  t.deepEqual([...opened.body], [...BODY]);
  t.is(opened.sender, 'n1');
});

test('a frame changed in any byte, unsigned or sealed with another secret is refused', (t) => {
  const clock = new VirtualClock();
  const sealer = auth(clock, [OLD]);
  const frame = sealer.seal(REQUEST, BODY);
  for (const at of [2, 3, 5, 9, 13, 25, 37, 40, frame.length - 1]) {
    const changed = frame.slice();
    changed[at]! ^= 0x01;
    const opened = auth(clock, [OLD]).open(changed);
    t.true(typeof opened === 'string', `byte ${at}`);
  }
  t.is(auth(clock, [OLD]).open(writeFrame(REQUEST, BODY)), 'unsigned');
  t.is(auth(clock, [NEW]).open(frame), 'unknown key');
  // Another secret whose key id was forged to look like ours still fails the MAC.
  const other = auth(clock, [NEW]).seal(REQUEST, BODY);
  other.set(frame.subarray(8, 12), 8);
  t.is(auth(clock, [OLD]).open(other), 'bad mac');
});

test('a replayed frame is refused, and so is one outside the replay window', async (t) => {
  const clock = new VirtualClock();
  const receiver = auth(clock, [OLD]);
  const frame = auth(clock, [OLD]).seal(REQUEST, BODY);
  t.is(typeof receiver.open(frame), 'object');
  t.is(receiver.open(frame), 'replayed');
  const stale = auth(clock, [OLD]).seal(REQUEST, BODY);
  await clock.advanceAsync(30_001);
  t.is(receiver.open(stale), 'outside replay window');
  // A sender whose clock runs ahead by more than the window is refused too.
  const ahead = new VirtualClock({ startMs: clock.now() + 31_000 });
  t.is(receiver.open(auth(ahead, [OLD]).seal(REQUEST, BODY)), 'outside replay window');
});

test('when the nonce cache must forget a nonce inside the window, frames no newer than it are refused', async (t) => {
  const clock = new VirtualClock();
  const receiver = auth(clock, [OLD], { maxNonces: 2 });
  const sender = auth(clock, [OLD]);
  const first = sender.seal(REQUEST, BODY);
  await clock.advanceAsync(1);
  const frames = [sender.seal(REQUEST, BODY), sender.seal(REQUEST, BODY)];
  t.is(typeof receiver.open(first), 'object');
  for (const f of frames) t.is(typeof receiver.open(f), 'object');
  // `first` was forgotten to make room: replaying it is still refused.
  t.is(receiver.open(first), 'outside replay window');
  await clock.advanceAsync(1);
  t.is(typeof receiver.open(sender.seal(REQUEST, BODY)), 'object');
});

test('during a rotation a node with both secrets talks to nodes with either', (t) => {
  const clock = new VirtualClock();
  const before = auth(clock, [OLD]);
  const during = auth(clock, [NEW, OLD]);
  const after = auth(clock, [NEW]);
  t.is(typeof during.open(before.seal(REQUEST, BODY)), 'object');
  t.is(typeof during.open(after.seal(REQUEST, BODY)), 'object');
  t.is(typeof after.open(during.seal(REQUEST, BODY)), 'object');
  t.is(before.open(during.seal(REQUEST, BODY)), 'unknown key');
  t.deepEqual(during.keyIds, [after.keyIds[0], before.keyIds[0]]);
});

test("a response opens only as the answer to its own request's nonce", (t) => {
  const clock = new VirtualClock();
  const a = auth(clock, [OLD]);
  const request = a.seal(REQUEST, BODY);
  const other = a.seal(REQUEST, BODY);
  const response = a.seal({ codecTag: 1, kind: FrameKind.Response, deadlineMs: 0 }, BODY, frameNonce(request));
  t.is(a.open(response, frameNonce(other)), 'bad mac');
  t.is(a.open(response), 'malformed');
  t.is(typeof a.open(response, frameNonce(request)), 'object');
});

test('with encrypt, gossip and responses are unreadable on the wire and open whole; a signing node opens them too', (t) => {
  const clock = new VirtualClock();
  const sealer = auth(clock, [OLD], { encrypt: true });
  const frame = sealer.seal({ codecTag: 1, kind: FrameKind.OneWay, deadlineMs: 0 }, BODY);
  t.false(Buffer.from(frame).includes(Buffer.from('hello')));
  const opened = auth(clock, [OLD]).open(frame);
  if (typeof opened === 'string') return t.fail(opened);
  t.deepEqual([...opened.body], [...BODY]);
  const changed = new Uint8Array(frame);
  changed[frame.length - 20]! ^= 1;
  t.is(auth(clock, [OLD]).open(changed), 'bad mac');

  const request = auth(clock, [OLD]).seal(REQUEST, BODY);
  const response = sealer.seal({ codecTag: 1, kind: FrameKind.Response, deadlineMs: 0 }, BODY, frameNonce(request));
  t.false(Buffer.from(response).includes(Buffer.from('hello')));
  t.is(sealer.open(response, frameNonce(sealer.seal(REQUEST, BODY))), 'bad mac', 'bound to its request');
  const answer = sealer.open(response, frameNonce(request));
  if (typeof answer === 'string') return t.fail(answer);
  t.deepEqual([...answer.body], [...BODY]);
});

test('a secret shorter than 16 characters is refused without showing it', (t) => {
  const err = t.throws<KvError>(() => auth(new VirtualClock(), ['short-secret']));
  t.is(err.code, 'KVMESH_ERR_CONFIG_INVALID');
  t.notRegex(err.message, /short-secret/);
});

interface Cluster {
  clock: VirtualClock;
  network: SimNetwork;
  node(name: string): KvNode;
  rpc(name: string): Rpc;
  stats(name: string): RpcStats;
}

/** Nodes on one simulated network, each with its own `cluster` section. */
async function cluster(
  t: { teardown(fn: () => Promise<void>): void },
  nodes: Record<string, Record<string, unknown>>,
): Promise<Cluster> {
  const clock = new VirtualClock();
  const network = new SimNetwork({ clock, random: new SeededRandom(7) });
  const built = new Map<string, KvNode>();
  for (const [name, section] of Object.entries(nodes)) {
    const registry = new PluginRegistry([testCodec('json', 1), stubPlugin('transport', 'http'), fakeStorage([])]);
    const config = validateConfig(
      {
        node: { id: name, address: '127.0.0.1:1' },
        join: Object.keys(nodes).map((n) => `sim://${n}`),
        codec: { name: 'json' },
        storage: { name: 'fake-store' },
        cluster: section,
      },
      registry,
    );
    const node = await createNode({
      config,
      registry,
      provide: { clock, random: new SeededRandom(name.length), transport: network.endpoint(`sim://${name}`) },
    });
    node.get<MessageRegistry>(TOKENS.messages).define(ECHO_PROTO);
    node.get<Rpc>(TOKENS.rpc).handle('test.Echo', (p: { text: string }) => ({
      type: 'test.Echo',
      payload: { text: `${name} got ${p.text}` },
    }));
    await node.start();
    built.set(name, node);
  }
  t.teardown(async () => {
    await Promise.all([...built.values()].map((n) => n.stop()));
  });
  const node = (name: string) => built.get(name)!;
  return {
    clock,
    network,
    node,
    rpc: (name) => node(name).get<Rpc>(TOKENS.rpc),
    stats: (name) => (node(name).get<Rpc>(TOKENS.rpc) as unknown as { stats: RpcStats }).stats,
  };
}

async function settle<T>(clock: VirtualClock, promise: Promise<T>, limitMs = 10_000): Promise<T> {
  let done = false;
  const watched = promise.finally(() => {
    done = true;
  });
  watched.catch(() => undefined);
  for (let waited = 0; !done && waited < limitMs; waited += 10) await clock.advanceAsync(10);
  return watched;
}

test('nodes sharing a secret serve each other; a node without it is refused and counted', async (t) => {
  const c = await cluster(t, { a: { secrets: [OLD] }, b: { secrets: [OLD, NEW] }, x: {} });
  const reply = await settle(c.clock, c.rpc('a').request('sim://b', 'test.Echo', { text: 'hi' }));
  t.is((reply.payload as { text: string }).text, 'b got hi');
  const refused = await t.throwsAsync<KvError>(
    settle(c.clock, c.rpc('x').request('sim://b', 'test.Echo', { text: 'x' })),
  );
  t.is(refused.code, 'KVMESH_ERR_RPC_UNAUTHENTICATED');
  t.is(c.stats('b').framesRejectedAuth, 1);
  t.is(c.stats('b').requestsServed, 1);
  // The other way round: the node without a secret refuses sealed frames.
  const sealed = await t.throwsAsync<KvError>(
    settle(c.clock, c.rpc('a').request('sim://x', 'test.Echo', { text: 'y' })),
  );
  t.is(sealed.code, 'KVMESH_ERR_RPC_UNAUTHENTICATED');
  t.is(c.stats('x').framesRejectedAuth, 1);
  t.is(c.stats('x').requestsServed, 0);
});

test('a forged or replayed frame reaches no handler or listener', async (t) => {
  const c = await cluster(t, { a: { secrets: [OLD] }, b: { secrets: [OLD] } });
  const heard: string[] = [];
  c.rpc('b').on('test.Echo', (p: { text: string }) => heard.push(p.text));
  // Capture what a sends, as someone on the wire would.
  const wire = c.network.endpoint('sim://eve') as Transport;
  const captured: Uint8Array[] = [];
  wire.setHandler({ onRequest: async (f) => f, onMessage: (f) => void captured.push(f) });
  await wire.start();
  t.teardown(() => wire.stop());
  c.rpc('a').send('sim://eve', 'test.Echo', { text: 'captured' });
  await c.clock.advanceAsync(100);
  t.is(captured.length, 1);
  wire.send('sim://b', captured[0]!);
  await c.clock.advanceAsync(100);
  t.deepEqual(heard, ['captured']);
  wire.send('sim://b', captured[0]!);
  wire.send('sim://b', writeFrame({ codecTag: 1, kind: FrameKind.OneWay, deadlineMs: 0 }, BODY));
  await c.clock.advanceAsync(100);
  t.deepEqual(heard, ['captured']);
  t.is(c.stats('b').framesRejectedAuth, 2);
  const forged = await settle(c.clock, wire.request('sim://b', writeFrame(REQUEST, BODY), { timeoutMs: 1000 }));
  t.is(forged[1], 1, 'the refusal is an unsigned frame');
  t.is(c.stats('b').requestsServed, 0);
  t.is(c.stats('b').framesRejectedAuth, 3);
});

test('without a secret, a node with no join seeds and no other member takes no frames', async (t) => {
  const clock = new VirtualClock();
  const network = new SimNetwork({ clock, random: new SeededRandom(3) });
  const registry = new PluginRegistry([testCodec('json', 1), stubPlugin('transport', 'http'), fakeStorage([])]);
  const build = async (name: string, join: string[]) => {
    const config = validateConfig(
      { node: { id: name, address: '127.0.0.1:1' }, join, codec: { name: 'json' }, storage: { name: 'fake-store' } },
      registry,
    );
    const node = await createNode({
      config,
      registry,
      provide: { clock, random: new SeededRandom(1), transport: network.endpoint(`sim://${name}`) },
      closedWithoutPeers: true,
    });
    node.get<MessageRegistry>(TOKENS.messages).define(ECHO_PROTO);
    node.get<Rpc>(TOKENS.rpc).handle('test.Echo', () => ({ type: 'test.Echo', payload: { text: name } }));
    await node.start();
    t.teardown(() => node.stop());
    return node.get<Rpc>(TOKENS.rpc);
  };
  const alone = await build('alone', []);
  const seed = await build('seed', ['sim://seed']);
  const caller = await build('caller', ['sim://seed']);
  const refused = await t.throwsAsync<KvError>(
    settle(clock, caller.request('sim://alone', 'test.Echo', { text: 'x' })),
  );
  t.is(refused.code, 'KVMESH_ERR_RPC_UNAUTHENTICATED');
  t.is((alone as unknown as { stats: RpcStats }).stats.framesRejectedAuth, 1);
  // A seed that lists only itself in join is part of a cluster: it takes frames.
  const reply = await settle(clock, caller.request('sim://seed', 'test.Echo', { text: 'x' }));
  t.is((reply.payload as { text: string }).text, 'seed');
  t.truthy(seed);
  // Once the lone node spoke to another (a peer it found by itself), it takes frames too.
  await settle(clock, alone.request('sim://seed', 'test.Echo', { text: 'hello' }));
  const now = await settle(clock, caller.request('sim://alone', 'test.Echo', { text: 'x' }));
  t.is((now.payload as { text: string }).text, 'alone');
});
