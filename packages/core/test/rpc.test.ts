import test from 'ava';
import {
  KvError,
  PluginRegistry,
  SeededRandom,
  SimNetwork,
  TOKENS,
  VirtualClock,
  createNode,
  validateConfig,
} from '../src/index.js';
import type { KvNode, MessageRegistry, Rpc } from '../src/index.js';
import { fakeStorage, stubPlugin } from './helpers/fake-plugins.js';
import { testCodec } from './helpers/test-codec.js';

const ECHO_PROTO = `syntax = "proto3";
package test;
message Echo { string text = 1; bytes data = 2; }
`;

interface Pair {
  clock: VirtualClock;
  a: KvNode;
  b: KvNode;
  rpcA: Rpc;
  rpcB: Rpc;
}

/** Two started nodes on one simulated network; `codecs` are the primary codec names of a and b. */
async function pair(
  t: { teardown(fn: () => Promise<void>): void },
  codecs: [string, string] = ['json', 'json'],
): Promise<Pair> {
  const clock = new VirtualClock();
  const network = new SimNetwork({ clock, random: new SeededRandom(7) });
  const build = async (name: string, codec: string) => {
    // Node a knows only the codec it speaks, as an old node in a migration would.
    const known =
      name === 'a' && codec === 'json' ? [testCodec('json', 1)] : [testCodec('json', 1), testCodec('json-v2', 2)];
    const registry = new PluginRegistry([...known, stubPlugin('transport', 'http'), fakeStorage([])]);
    const config = validateConfig(
      { node: { id: name, address: '127.0.0.1:1' }, codec: { name: codec }, storage: { name: 'fake-store' } },
      registry,
    );
    const node = await createNode({
      config,
      registry,
      provide: { clock, random: new SeededRandom(name.length), transport: network.endpoint(`sim://${name}`) },
    });
    node.get<MessageRegistry>(TOKENS.messages).define(ECHO_PROTO);
    return node;
  };
  const a = await build('a', codecs[0]);
  const b = await build('b', codecs[1]);
  await a.start();
  await b.start();
  t.teardown(async () => {
    await Promise.all([a.stop(), b.stop()]);
  });
  return { clock, a, b, rpcA: a.get<Rpc>(TOKENS.rpc), rpcB: b.get<Rpc>(TOKENS.rpc) };
}

/** Drives virtual time until `promise` settles (bounded). */
async function settle<T>(clock: VirtualClock, promise: Promise<T>, limitMs = 60_000): Promise<T> {
  let done = false;
  const watched = promise.finally(() => {
    done = true;
  });
  watched.catch(() => undefined);
  for (let waited = 0; !done && waited < limitMs; waited += 10) await clock.advanceAsync(10);
  return watched;
}

test('a request reaches its handler and the response comes back typed', async (t) => {
  const { clock, rpcA, rpcB } = await pair(t);
  rpcB.handle('test.Echo', (payload: { text: string; data: Uint8Array }, ctx) => ({
    type: 'test.Echo',
    payload: { text: `${payload.text} from ${ctx.from}`, data: payload.data.slice().reverse() },
  }));
  const reply = await settle(
    clock,
    rpcA.request('sim://b', 'test.Echo', { text: 'hi', data: new Uint8Array([1, 2, 3]) }),
  );
  t.is(reply.type, 'test.Echo');
  t.deepEqual(reply.payload, { text: 'hi from sim://a', data: new Uint8Array([3, 2, 1]) });
});

test("a handler's KvError arrives with its code and message", async (t) => {
  const { clock, rpcA, rpcB } = await pair(t);
  rpcB.handle('test.Echo', () => {
    throw new KvError('KVMESH_ERR_PLACEMENT_EMPTY', 'nobody home');
  });
  const err = await t.throwsAsync<KvError>(settle(clock, rpcA.request('sim://b', 'test.Echo', { text: 'x' })));
  t.is(err.code, 'KVMESH_ERR_PLACEMENT_EMPTY');
  t.is(err.message, 'nobody home');
  t.is(err.details?.['remote'], 'sim://b');
});

test('any other failure arrives as KVMESH_ERR_RPC_REMOTE without a stack', async (t) => {
  const { clock, rpcA, rpcB } = await pair(t);
  rpcB.handle('test.Echo', () => {
    throw new TypeError('cannot read x of undefined');
  });
  const err = await t.throwsAsync<KvError>(settle(clock, rpcA.request('sim://b', 'test.Echo', { text: 'x' })));
  t.is(err.code, 'KVMESH_ERR_RPC_REMOTE');
  t.notRegex(err.message, /at .*\.js/);
});

test('a type without a handler fails with KVMESH_ERR_RPC_NO_HANDLER', async (t) => {
  const { clock, rpcA } = await pair(t);
  const err = await t.throwsAsync<KvError>(settle(clock, rpcA.request('sim://b', 'test.Echo', { text: 'x' })));
  t.is(err.code, 'KVMESH_ERR_RPC_NO_HANDLER');
});

test('a request past its deadline fails with KVMESH_ERR_RPC_TIMEOUT and the handler sees its signal abort', async (t) => {
  const { clock, rpcA, rpcB } = await pair(t);
  let aborted = false;
  rpcB.handle(
    'test.Echo',
    (_payload, ctx) =>
      new Promise((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          aborted = true;
          resolve({ type: 'test.Echo', payload: { text: 'late' } });
        });
      }),
  );
  const started = clock.now();
  const err = await t.throwsAsync<KvError>(
    settle(clock, rpcA.request('sim://b', 'test.Echo', { text: 'x' }, { timeoutMs: 500 })),
  );
  t.is(err.code, 'KVMESH_ERR_RPC_TIMEOUT');
  t.true(clock.now() - started >= 500);
  await clock.advanceAsync(100);
  t.true(aborted);
});

test('a cancelled request fails with KVMESH_ERR_RPC_ABORTED', async (t) => {
  const { clock, rpcA, rpcB } = await pair(t);
  rpcB.handle('test.Echo', () => new Promise(() => undefined));
  const controller = new AbortController();
  const pending = rpcA.request('sim://b', 'test.Echo', { text: 'x' }, { signal: controller.signal });
  clock.setTimeout(() => controller.abort(), 5);
  const err = await t.throwsAsync<KvError>(settle(clock, pending));
  t.is(err.code, 'KVMESH_ERR_RPC_ABORTED');
});

test('one-way messages reach every listener of their type', async (t) => {
  const { clock, rpcA, rpcB } = await pair(t);
  const seen: string[] = [];
  rpcB.on('test.Echo', (p: { text: string }) => seen.push(`1:${p.text}`));
  const off = rpcB.on('test.Echo', (p: { text: string }) => seen.push(`2:${p.text}`));
  rpcA.send('sim://b', 'test.Echo', { text: 'gossip' });
  await clock.advanceAsync(100);
  off();
  rpcA.send('sim://b', 'test.Echo', { text: 'again' });
  await clock.advanceAsync(100);
  t.deepEqual(seen, ['1:gossip', '2:gossip', '1:again']);
});

test('a node answers in the codec of the request, so an old node and a new one still talk', async (t) => {
  const { clock, rpcA, rpcB } = await pair(t, ['json', 'json-v2']);
  rpcA.handle('test.Echo', (p: { text: string }) => ({ type: 'test.Echo', payload: { text: `a got ${p.text}` } }));
  rpcB.handle('test.Echo', (p: { text: string }) => ({ type: 'test.Echo', payload: { text: `b got ${p.text}` } }));
  const fromA = await settle(clock, rpcA.request('sim://b', 'test.Echo', { text: 'v1' }));
  t.is((fromA.payload as { text: string }).text, 'b got v1');
  // b speaks json-v2, which a does not know: a refuses the frame by its tag.
  const err = await t.throwsAsync<KvError>(settle(clock, rpcB.request('sim://a', 'test.Echo', { text: 'v2' })));
  t.is(err.code, 'KVMESH_ERR_CODEC_UNKNOWN');
});

test('an unregistered message type is refused before anything is sent', async (t) => {
  const { rpcA } = await pair(t);
  const err = await t.throwsAsync<KvError>(rpcA.request('sim://b', 'test.Nope', {}));
  t.is(err.code, 'KVMESH_ERR_MESSAGE_UNKNOWN');
});
