import test from 'ava';
import type { TransportHandler } from '../../src/contracts/transport.js';
import { isKvError } from '../../src/errors.js';
import { LINK_PROFILES, type LinkProfile } from '../../src/sim/link-profile.js';
import { SeededRandom } from '../../src/sim/seeded-random.js';
import { SimNetwork, type SimTraceEvent } from '../../src/sim/sim-network.js';
import type { SimTransport } from '../../src/sim/sim-transport.js';
import { VirtualClock } from '../../src/sim/virtual-clock.js';

interface Arrival {
  at: number;
  from: string;
  frame: Uint8Array;
}

const FAULTLESS: Partial<LinkProfile> = { loss: 0, duplicate: 0, reorder: 0 };

function world(seed: number, defaults: Partial<LinkProfile> = FAULTLESS, trace?: (e: SimTraceEvent) => void) {
  const clock = new VirtualClock({ startMs: 0 });
  const network = new SimNetwork({ clock, random: new SeededRandom(seed), defaults, ...(trace ? { trace } : {}) });
  const node = async (name: string, onRequest?: TransportHandler['onRequest']) => {
    const arrivals: Arrival[] = [];
    const transport = network.endpoint(name);
    transport.setHandler({
      onRequest: onRequest ?? (async (frame) => frame),
      onMessage: (frame, from) => arrivals.push({ at: clock.now(), from, frame }),
    });
    await transport.start();
    return { transport, arrivals };
  };
  return { clock, network, node };
}

const frameOf = (n: number): Uint8Array => Uint8Array.of(n >> 24, n >> 16, n >> 8, n);
const numberOf = (frame: Uint8Array): number =>
  ((frame[0]! << 24) | (frame[1]! << 16) | (frame[2]! << 8) | frame[3]!) >>> 0;

test('a message arrives exactly after the link latency', async (t) => {
  const { clock, node } = world(1, { ...FAULTLESS, latencyMs: { min: 10, max: 10 } });
  const a = await node('a');
  const b = await node('b');
  a.transport.send(b.transport.address, frameOf(1));
  clock.advance(9);
  t.is(b.arrivals.length, 0);
  clock.advance(1);
  t.deepEqual(
    b.arrivals.map((x) => [x.at, x.from]),
    [[10, 'sim://a']],
  );
});

test('latencies are drawn from the configured range', async (t) => {
  const { clock, node } = world(2, { ...FAULTLESS, latencyMs: { min: 5, max: 20 } });
  const a = await node('a');
  const b = await node('b');
  for (let i = 0; i < 500; i++) a.transport.send(b.transport.address, frameOf(i));
  clock.advance(100);
  const delays = new Set(b.arrivals.map((x) => x.at));
  t.is(b.arrivals.length, 500);
  for (const d of delays) t.true(d >= 5 && d <= 20, `delay ${d}`);
  t.is(delays.size, 16);
});

test('fixed latency without reordering keeps send order', async (t) => {
  const { clock, node } = world(3, { ...FAULTLESS, latencyMs: { min: 4, max: 4 } });
  const a = await node('a');
  const b = await node('b');
  for (let i = 0; i < 100; i++) a.transport.send(b.transport.address, frameOf(i));
  clock.advance(10);
  t.deepEqual(
    b.arrivals.map((x) => numberOf(x.frame)),
    Array.from({ length: 100 }, (_, i) => i),
  );
});

test('reordering lets later messages overtake held-back ones', async (t) => {
  const { clock, node } = world(4, { ...FAULTLESS, latencyMs: { min: 4, max: 4 }, reorder: 0.3, reorderDelayMs: 20 });
  const a = await node('a');
  const b = await node('b');
  for (let i = 0; i < 100; i++) a.transport.send(b.transport.address, frameOf(i));
  clock.advance(100);
  const order = b.arrivals.map((x) => numberOf(x.frame));
  t.is(order.length, 100);
  t.notDeepEqual(
    order,
    [...order].sort((x, y) => x - y),
  );
  const late = b.arrivals.filter((x) => x.at > 4).length;
  t.true(late > 15 && late < 45, `${late} held back`);
});

test('the loss rate is roughly as configured, and stats count it', async (t) => {
  const { clock, network, node } = world(5, { ...FAULTLESS, loss: 0.2 });
  const a = await node('a');
  const b = await node('b');
  const total = 10_000;
  for (let i = 0; i < total; i++) a.transport.send(b.transport.address, frameOf(i));
  clock.advance(100);
  const rate = 1 - b.arrivals.length / total;
  t.true(Math.abs(rate - 0.2) < 0.02, `loss rate ${rate}`);
  const stats = network.stats();
  t.is(stats.sent.message, total);
  t.is(stats.delivered.message, b.arrivals.length);
  t.is(stats.dropped.message, total - b.arrivals.length);
  t.is(stats.dropReasons.loss, total - b.arrivals.length);
});

test('duplication delivers some messages twice, roughly as often as configured', async (t) => {
  const { clock, network, node } = world(6, { ...FAULTLESS, duplicate: 0.3 });
  const a = await node('a');
  const b = await node('b');
  const total = 5000;
  for (let i = 0; i < total; i++) a.transport.send(b.transport.address, frameOf(i));
  clock.advance(100);
  const copies = new Map<number, number>();
  for (const x of b.arrivals) copies.set(numberOf(x.frame), (copies.get(numberOf(x.frame)) ?? 0) + 1);
  t.is(copies.size, total);
  t.true([...copies.values()].every((n) => n === 1 || n === 2));
  const rate = (b.arrivals.length - total) / total;
  t.true(Math.abs(rate - 0.3) < 0.03, `duplicate rate ${rate}`);
  t.is(network.stats().duplicated.message, b.arrivals.length - total);
});

test('a duplicated request runs the handler once and both copies get its answer', async (t) => {
  const { clock, network, node } = world(7, { ...FAULTLESS, duplicate: 1 });
  let calls = 0;
  const a = await node('a');
  const b = await node('b', async (frame) => {
    calls++;
    return frame;
  });
  const reply = a.transport.request(b.transport.address, frameOf(9), { timeoutMs: 1000 });
  await clock.advanceAsync(50);
  t.deepEqual(await reply, frameOf(9));
  t.is(calls, 1);
  t.is(network.stats().delivered.request, 2);
  // Each copy is answered, and each answer is duplicated on the way back.
  t.is(network.stats().delivered.response, 4);
});

test('a copy arriving while the first is still being handled waits for its answer instead of running again', async (t) => {
  const { clock, network, node } = world(17, { ...FAULTLESS, duplicate: 1, latencyMs: { min: 1, max: 1 } });
  let calls = 0;
  const a = await node('a');
  const b = await node('b', async (frame) => {
    calls++;
    await clock.sleep(100);
    return frame;
  });
  const reply = a.transport.request(b.transport.address, frameOf(3), { timeoutMs: 1000 });
  await clock.advanceAsync(200);
  t.deepEqual(await reply, frameOf(3));
  t.is(calls, 1);
  t.is(network.stats().delivered.response, 4);
});

test('a partition drops traffic both ways until heal, and spares everyone else', async (t) => {
  const { clock, network, node } = world(8);
  const a = await node('a');
  const b = await node('b');
  const c = await node('c');
  network.partition(['a'], ['sim://b']);
  t.true(network.isPartitioned('b', 'a'));
  a.transport.send(b.transport.address, frameOf(1));
  b.transport.send(a.transport.address, frameOf(2));
  a.transport.send(c.transport.address, frameOf(3));
  const blocked = a.transport.request(b.transport.address, frameOf(4), { timeoutMs: 100 });
  const rejected = blocked.catch((err: unknown) => err);
  await clock.advanceAsync(200);
  t.true(isKvError(await rejected, 'KVMESH_ERR_RPC_TIMEOUT'));
  t.is(b.arrivals.length, 0);
  t.is(a.arrivals.length, 0);
  t.is(c.arrivals.length, 1);
  t.is(network.stats().dropReasons.partition, 3);

  network.heal();
  a.transport.send(b.transport.address, frameOf(5));
  const healed = a.transport.request(b.transport.address, frameOf(6), { timeoutMs: 100 });
  await clock.advanceAsync(50);
  t.deepEqual(await healed, frameOf(6));
  t.is(b.arrivals.length, 1);
});

test('a partition also cuts messages already in flight', async (t) => {
  const { clock, network, node } = world(9, { ...FAULTLESS, latencyMs: { min: 10, max: 10 } });
  const a = await node('a');
  const b = await node('b');
  a.transport.send(b.transport.address, frameOf(1));
  clock.advance(5);
  network.partition(['a'], ['b']);
  clock.advance(10);
  t.is(b.arrivals.length, 0);
});

test('a per-link profile shapes one direction only', async (t) => {
  const { clock, network, node } = world(10);
  const a = await node('a');
  const b = await node('b');
  network.setLink('a', 'b', { loss: 1 });
  t.is(network.link('a', 'b').loss, 1);
  t.is(network.link('b', 'a').loss, 0);
  a.transport.send(b.transport.address, frameOf(1));
  b.transport.send(a.transport.address, frameOf(2));
  clock.advance(20);
  t.is(b.arrivals.length, 0);
  t.is(a.arrivals.length, 1);
  network.clearLinks();
  a.transport.send(b.transport.address, frameOf(3));
  clock.advance(20);
  t.is(b.arrivals.length, 1);
});

test('a request to an address nobody listens at is refused after one round trip', async (t) => {
  const { clock, node } = world(11, { ...FAULTLESS, latencyMs: { min: 7, max: 7 } });
  const a = await node('a');
  const failed = a.transport.request('sim://ghost', frameOf(1), { timeoutMs: 1000 }).catch((err: unknown) => err);
  let settledAt = -1;
  void failed.then(() => (settledAt = clock.now()));
  await clock.advanceAsync(100);
  t.true(isKvError(await failed, 'KVMESH_ERR_TRANSPORT_UNREACHABLE'));
  t.is(settledAt, 14);
});

test('an endpoint that stops while handling a request answers with a failure', async (t) => {
  const { clock, node } = world(12);
  let release!: () => void;
  const a = await node('a');
  const b = await node('b', async (frame) => {
    await new Promise<void>((r) => (release = r));
    return frame;
  });
  const call = a.transport.request(b.transport.address, frameOf(1), { timeoutMs: 1000 }).catch((err: unknown) => err);
  await clock.advanceAsync(20);
  await b.transport.stop();
  release();
  await clock.advanceAsync(20);
  t.true(isKvError(await call, 'KVMESH_ERR_TRANSPORT_UNREACHABLE'));
});

test('two started endpoints cannot share an address', async (t) => {
  const { network, node } = world(13);
  await node('a');
  const twin = network.endpoint('a');
  await t.throwsAsync(twin.start(), { code: 'KVMESH_ERR_TRANSPORT_LISTEN' });
  t.deepEqual(network.listening(), ['sim://a']);
});

test('rejects bad link profiles and addresses', (t) => {
  const { network } = world(14);
  t.throws(() => network.setLink('a', 'b', { loss: 1.5 }), { instanceOf: RangeError });
  t.throws(() => network.setLink('a', 'b', { latencyMs: { min: 5, max: 2 } }), { instanceOf: RangeError });
  t.throws(() => network.endpoint('sim://has space'), { code: 'KVMESH_ERR_TRANSPORT_ADDRESS' });
});

interface ScenarioResult {
  trace: SimTraceEvent[];
  outcomes: string[];
  stats: ReturnType<SimNetwork['stats']>;
}

/**
 * Many endpoints, random requests and gossip over a lossy network with a
 * partition that comes and goes. Everything random comes from `seed`.
 */
async function scenario(seed: number): Promise<ScenarioResult> {
  const trace: SimTraceEvent[] = [];
  const outcomes: string[] = [];
  const clock = new VirtualClock();
  const random = new SeededRandom(seed);
  const network = new SimNetwork({
    clock,
    random: random.fork(),
    defaults: LINK_PROFILES.lossy,
    trace: (e) => trace.push(e),
  });
  const script = random.fork();
  const names = Array.from({ length: 24 }, (_, i) => `sim://node-${i}`);
  const endpoints: SimTransport[] = [];
  for (const name of names) {
    const transport = network.endpoint(name);
    const local = script.fork();
    transport.setHandler({
      onRequest: async (frame) => {
        await clock.sleep(local.int(20));
        return Uint8Array.from(frame).reverse();
      },
      onMessage: (frame, from) => {
        if (frame.length > 1 && local.next() < 0.5) {
          transport.send(names[local.int(names.length)]!, frame.subarray(1));
        }
        outcomes.push(`${clock.now()} gossip ${from}->${name} ${frame.length}`);
      },
    });
    await transport.start();
    endpoints.push(transport);
  }
  network.setLink(names[0]!, names[1]!, { loss: 0.5 });
  const traffic = clock.setInterval(() => {
    const from = endpoints[script.int(endpoints.length)]!;
    const to = names[script.int(names.length)]!;
    const frame = script.bytes(1 + script.int(64));
    if (script.next() < 0.5) {
      from.send(to, frame);
      return;
    }
    const started = clock.now();
    from.request(to, frame, { timeoutMs: 50 + script.int(100) }).then(
      (response) => outcomes.push(`${started} ok ${from.address}->${to} ${response.length} at ${clock.now()}`),
      (err: { code?: string }) => outcomes.push(`${started} ${err.code} ${from.address}->${to} at ${clock.now()}`),
    );
  }, 3);
  await clock.advanceAsync(600);
  network.partition(names.slice(0, 12), names.slice(12));
  await clock.advanceAsync(600);
  network.heal();
  await endpoints[5]!.stop();
  await clock.advanceAsync(600);
  traffic.cancel();
  await clock.runUntilIdleAsync();
  for (const e of endpoints) await e.stop();
  return { trace, outcomes, stats: network.stats() };
}

test('the same seed replays the same run bit for bit; another seed does not', async (t) => {
  const first = await scenario(20240601);
  const second = await scenario(20240601);
  t.true(first.trace.length > 2000, `only ${first.trace.length} trace events`);
  for (const reason of ['loss', 'partition', 'unreachable'] as const) t.true(first.stats.dropReasons[reason] > 0);
  t.true(first.stats.duplicated.message + first.stats.duplicated.request > 0);
  t.true(first.outcomes.some((o) => o.includes(' KVMESH_ERR_RPC_TIMEOUT ')));
  t.true(first.outcomes.some((o) => o.includes(' ok ')));
  t.deepEqual(second.trace, first.trace);
  t.deepEqual(second.outcomes, first.outcomes);
  t.deepEqual(second.stats, first.stats);

  const other = await scenario(20240602);
  t.notDeepEqual(other.trace, first.trace);
});
