import type { ExecutionContext, TestFn } from 'ava';
import type { Transport, TransportHandler } from '../contracts/transport.js';

/** One test's world: a factory of endpoints that can reach each other. */
export interface TransportFixture {
  /**
   * A new transport, not started, whose links to the fixture's other
   * transports are lossless. With `address`, it must listen exactly there (an
   * address a stopped transport just freed); without, anywhere free.
   */
  readonly create: (address?: string) => Transport | Promise<Transport>;
  /** An address of the transport's scheme where nothing listens. */
  readonly unreachableAddress: string;
  /** For simulated transports: the suite advances this clock while it waits, so deliveries and deadlines happen. */
  readonly clock?: { advanceAsync(ms: number): Promise<unknown> };
  /** Frees what `setup` built; runs after every transport stopped. */
  readonly cleanup?: () => void | Promise<void>;
  /**
   * For transports whose wire may duplicate a request (datagrams): an
   * address that reaches `target`, started, over a link that delivers every
   * request twice: a relay repeating each datagram, or a simulated link
   * with `duplicate: 1`. Required when the suite runs with `duplicates`.
   */
  readonly duplicating?: (target: Transport) => string | Promise<string>;
}

export interface TransportConformanceOptions {
  /** Builds a fresh fixture for each test (tests run concurrently). */
  readonly setup: () => TransportFixture | Promise<TransportFixture>;
  /** Prefix of every test title, so several suites can share a file. Default `transport`. */
  readonly title?: string;
  /** Deadline of the requests that must time out. Default 250 ms. */
  readonly timeoutMs?: number;
  /**
   * The transport's wire may duplicate requests and its fixture offers
   * `duplicating`: run the cases that check a request reaches the handler
   * once however often it arrives. Leave out for a wire that never
   * duplicates (TCP), which meets that part of the contract as it is.
   */
  readonly duplicates?: boolean;
}

/** Deadline of requests that must succeed: long enough for a slow CI machine. */
const GENEROUS_TIMEOUT_MS = 10_000;
/** Virtual time the suite lets pass per step while it waits for something. */
const VIRTUAL_STEP_MS = 10;
/** Virtual time after which waiting counts as hanging. */
const VIRTUAL_LIMIT_MS = 600_000;
const CONCURRENT_REQUESTS = 32;
/**
 * The handler answers requests in batches of this size, newest first, so
 * responses leave in another order than requests came. A transport must
 * carry at least this many requests to one peer at once (pooled connections,
 * or correlation ids).
 */
const ANSWER_BATCH = 4;

const reversed = (frame: Uint8Array): Uint8Array => Uint8Array.from(frame).reverse();

function pattern(length: number, salt = 0): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + salt + (i >> 8)) & 0xff;
  return out;
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A handler that records what it sees and answers with the frame reversed (so the answer is provably its own). */
class RecordingHandler implements TransportHandler {
  readonly requests: Array<{ frame: Uint8Array; from: string }> = [];
  readonly messages: Array<{ frame: Uint8Array; from: string }> = [];
  /** When set, requests wait for it (or for `release`) before answering. */
  hold: Promise<void> | undefined;
  /** When > 1, requests wait until this many are waiting, then the batch is answered last-in first-out. */
  batch = 0;
  /** When set, the answer to a request instead of the reversed frame. */
  answer: ((frame: Uint8Array) => Uint8Array) | undefined;
  private batched: Array<() => void> = [];
  private readonly waiters: Array<{ count: number; kind: 'requests' | 'messages'; done: Deferred<void> }> = [];
  private readonly released = deferred<void>();
  private failing = false;

  async onRequest(frame: Uint8Array, from: string): Promise<Uint8Array> {
    this.requests.push({ frame: Uint8Array.from(frame), from });
    this.wake();
    if (this.hold !== undefined) await Promise.race([this.hold, this.released.promise]);
    if (this.batch > 1) await Promise.race([this.inBatch(), this.released.promise]);
    if (this.failing) throw new Error('handler failure on purpose');
    return this.answer?.(frame) ?? reversed(frame);
  }

  onMessage(frame: Uint8Array, from: string): void {
    this.messages.push({ frame: Uint8Array.from(frame), from });
    this.wake();
  }

  failAll(): void {
    this.failing = true;
  }

  /** Resolves once `count` requests (or messages) arrived. */
  seen(kind: 'requests' | 'messages', count: number): Promise<void> {
    const done = deferred<void>();
    this.waiters.push({ count, kind, done });
    this.wake();
    return done.promise;
  }

  release(): void {
    this.released.resolve();
  }

  private inBatch(): Promise<void> {
    const turn = deferred<void>();
    this.batched.push(() => turn.resolve());
    if (this.batched.length >= this.batch) {
      const batch = this.batched.reverse();
      this.batched = [];
      for (const answer of batch) answer();
    }
    return turn.promise;
  }

  private wake(): void {
    for (const w of this.waiters) if (this[w.kind].length >= w.count) w.done.resolve();
  }
}

interface Harness {
  /** A started transport with `handler` installed. */
  start(handler?: RecordingHandler, address?: string): Promise<Transport>;
  /** Awaits `promise`, moving virtual time when the fixture has a clock. */
  settle<T>(promise: Promise<T>): Promise<T>;
  readonly fixture: TransportFixture;
}

/**
 * The contract tests every Transport runs unchanged: binary round trips
 * (every byte value, empty, exactly maxFrameBytes, a small request with
 * the largest answer and the other way round), concurrent requests
 * matched to their responses, deadlines, cancellation, unreachable peers,
 * oversize frames refused before sending, one-way delivery, bad addresses,
 * failing handlers, the lifecycle (closed before start and after stop,
 * idempotent stop that frees the address), and with `duplicates`, that a
 * request arriving twice reaches the handler once.
 *
 * Call it from an ava test file: `runTransportConformance(test, { setup })`.
 */
/**
 * Byte-for-byte equality of two frames. ava's deepEqual walks a typed array
 * element by element: for a frame of a few MiB that blocks the event loop for
 * seconds, long enough to time out the requests of the tests running beside.
 */
function sameBytes(t: ExecutionContext, actual: Uint8Array, expected: Uint8Array): void {
  t.is(actual.length, expected.length, 'frame length');
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  t.true(a.equals(b), 'frame bytes');
}

export function runTransportConformance(test: TestFn, options: TransportConformanceOptions): void {
  const prefix = options.title ?? 'transport';
  const timeoutMs = options.timeoutMs ?? 250;

  const harness = async (t: ExecutionContext): Promise<Harness> => {
    const fixture = await options.setup();
    const transports: Transport[] = [];
    const handlers: RecordingHandler[] = [];
    const settle = async <T>(promise: Promise<T>): Promise<T> => {
      const clock = fixture.clock;
      if (clock === undefined) return promise;
      let done = false;
      const tracked = promise.finally(() => {
        done = true;
      });
      for (let waited = 0; !done; waited += VIRTUAL_STEP_MS) {
        if (waited > VIRTUAL_LIMIT_MS) throw new Error(`nothing happened within ${VIRTUAL_LIMIT_MS} virtual ms`);
        await clock.advanceAsync(VIRTUAL_STEP_MS);
      }
      return tracked;
    };
    t.teardown(async () => {
      for (const handler of handlers) handler.release();
      for (const transport of transports) await transport.stop();
      await fixture.cleanup?.();
    });
    return {
      fixture,
      settle,
      async start(handler = new RecordingHandler(), address) {
        const transport = await fixture.create(address);
        transports.push(transport);
        handlers.push(handler);
        transport.setHandler(handler);
        await settle(transport.start());
        return transport;
      },
    };
  };

  const pair = async (t: ExecutionContext) => {
    const h = await harness(t);
    const handler = new RecordingHandler();
    const a = await h.start();
    const b = await h.start(handler);
    const ask = (frame: Uint8Array, ms = GENEROUS_TIMEOUT_MS, signal?: AbortSignal) =>
      h.settle(a.request(b.address, frame, { timeoutMs: ms, ...(signal ? { signal } : {}) }));
    return { h, a, b, handler, ask };
  };

  test(`${prefix}: address uses the transport's scheme and names the real port after start`, async (t) => {
    const { a, b } = await pair(t);
    for (const transport of [a, b]) {
      t.is(new URL(transport.address).protocol, `${transport.name}:`);
      t.notRegex(transport.address, /:0$/);
    }
    t.not(a.address, b.address);
  });

  test(`${prefix}: round-trips a frame holding every byte value and reports the sender's address`, async (t) => {
    const { a, handler, ask } = await pair(t);
    const frame = Uint8Array.from({ length: 1024 }, (_, i) => i & 0xff);
    t.deepEqual(await ask(frame), reversed(frame));
    t.is(handler.requests.length, 1);
    t.deepEqual(handler.requests[0]?.frame, frame);
    t.is(handler.requests[0]?.from, a.address);
  });

  test(`${prefix}: round-trips an empty frame`, async (t) => {
    const { ask, handler } = await pair(t);
    t.deepEqual(await ask(new Uint8Array(0)), new Uint8Array(0));
    t.is(handler.requests[0]?.frame.length, 0);
  });

  test(`${prefix}: round-trips a frame of exactly maxFrameBytes both ways`, async (t) => {
    const { a, b, ask } = await pair(t);
    const frame = pattern(Math.min(a.maxFrameBytes, b.maxFrameBytes), 7);
    const response = await ask(frame);
    sameBytes(t, response, reversed(frame));
  });

  test(`${prefix}: answers a small request with a response of maxFrameBytes`, async (t) => {
    const { a, b, ask, handler } = await pair(t);
    const large = pattern(Math.min(a.maxFrameBytes, b.maxFrameBytes), 11);
    handler.answer = () => large;
    const response = await ask(pattern(16));
    sameBytes(t, response, large);
    t.is(handler.requests.length, 1);
  });

  test(`${prefix}: answers a request of maxFrameBytes with a small response`, async (t) => {
    const { a, b, ask, handler } = await pair(t);
    handler.answer = (frame) => frame.subarray(0, 16);
    const frame = pattern(Math.min(a.maxFrameBytes, b.maxFrameBytes), 13);
    t.deepEqual(await ask(frame), frame.subarray(0, 16));
    t.is(handler.requests[0]?.frame.length, frame.length);
  });

  if (options.duplicates) {
    test(`${prefix}: a request that arrives twice reaches the handler once, and its caller gets the answer`, async (t) => {
      const { h, a, b, handler, ask } = await pair(t);
      const duplicating = h.fixture.duplicating;
      if (duplicating === undefined) throw new Error('the fixture must offer duplicating() when duplicates is set');
      const via = await duplicating(b);
      const frames = Array.from({ length: 8 }, (_, i) => pattern(8 + i, 40 + i));
      for (const frame of frames) {
        t.deepEqual(await h.settle(a.request(via, frame, { timeoutMs: GENEROUS_TIMEOUT_MS })), reversed(frame));
      }
      // A last request, after every copy of the others was on its way: the
      // copies are in before it (and, simulated, a virtual second more).
      t.deepEqual(await ask(pattern(4)), reversed(pattern(4)));
      await h.fixture.clock?.advanceAsync(1000);
      t.deepEqual(
        handler.requests.map((r) => r.frame.length),
        [...frames.map((f) => f.length), 4],
      );
    });
  }

  test(`${prefix}: matches concurrent requests to their own responses, even when answered out of order`, async (t) => {
    const { h, a, b, handler } = await pair(t);
    handler.batch = ANSWER_BATCH;
    const frames = Array.from({ length: CONCURRENT_REQUESTS }, (_, i) => pattern(16 + i * 3, i));
    const calls = frames.map((frame) => a.request(b.address, frame, { timeoutMs: GENEROUS_TIMEOUT_MS }));
    const responses = await h.settle(Promise.all(calls));
    responses.forEach((response, i) => t.deepEqual(response, reversed(frames[i]!)));
    t.is(handler.requests.length, CONCURRENT_REQUESTS);
  });

  test(`${prefix}: fails with KVMESH_ERR_RPC_TIMEOUT when no response comes before the deadline`, async (t) => {
    const { ask, handler } = await pair(t);
    handler.hold = new Promise(() => undefined);
    await t.throwsAsync(ask(pattern(8), timeoutMs), { code: 'KVMESH_ERR_RPC_TIMEOUT' });
    t.is(handler.requests.length, 1);
  });

  test(`${prefix}: fails with KVMESH_ERR_RPC_ABORTED when the caller aborts`, async (t) => {
    const { h, a, b, handler } = await pair(t);
    handler.hold = new Promise(() => undefined);
    const controller = new AbortController();
    const call = a.request(b.address, pattern(8), { timeoutMs: GENEROUS_TIMEOUT_MS, signal: controller.signal });
    await h.settle(handler.seen('requests', 1));
    controller.abort();
    await t.throwsAsync(h.settle(call), { code: 'KVMESH_ERR_RPC_ABORTED' });
  });

  test(`${prefix}: an already aborted signal fails without sending`, async (t) => {
    const { ask, handler } = await pair(t);
    await t.throwsAsync(ask(pattern(8), GENEROUS_TIMEOUT_MS, AbortSignal.abort()), {
      code: 'KVMESH_ERR_RPC_ABORTED',
    });
    t.deepEqual(await ask(pattern(4)), reversed(pattern(4)));
    t.is(handler.requests.length, 1);
  });

  test(`${prefix}: a request to an address where nothing listens fails as unreachable or timed out`, async (t) => {
    const { h, a } = await pair(t);
    const error = await t.throwsAsync(h.settle(a.request(h.fixture.unreachableAddress, pattern(8), { timeoutMs })));
    t.true(
      ['KVMESH_ERR_TRANSPORT_UNREACHABLE', 'KVMESH_ERR_RPC_TIMEOUT'].includes((error as { code?: string }).code ?? ''),
      `unexpected error ${String(error)}`,
    );
  });

  test(`${prefix}: refuses frames over the limits before sending them`, async (t) => {
    const { a, b, ask, handler } = await pair(t);
    await t.throwsAsync(ask(new Uint8Array(a.maxFrameBytes + 1)), { code: 'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE' });
    t.throws(() => a.send(b.address, new Uint8Array(a.maxMessageBytes + 1)), {
      code: 'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE',
    });
    t.deepEqual(await ask(pattern(4)), reversed(pattern(4)));
    t.is(handler.requests.length, 1);
    t.is(handler.messages.length, 0);
    t.true(a.maxMessageBytes <= a.maxFrameBytes);
  });

  test(`${prefix}: delivers one-way frames, up to maxMessageBytes, with the sender's address`, async (t) => {
    const { h, a, b, handler } = await pair(t);
    const small = Uint8Array.from({ length: 256 }, (_, i) => i);
    const largest = pattern(Math.min(a.maxMessageBytes, b.maxMessageBytes), 3);
    a.send(b.address, small);
    a.send(b.address, largest);
    await h.settle(handler.seen('messages', 2));
    const received = handler.messages.map((m) => m.frame.length).sort((x, y) => x - y);
    t.deepEqual(
      received,
      [small.length, largest.length].sort((x, y) => x - y),
    );
    for (const m of handler.messages) {
      t.is(m.from, a.address);
      sameBytes(t, m.frame, m.frame.length === small.length ? small : largest);
    }
  });

  test(`${prefix}: a handler that rejects shows up as KVMESH_ERR_TRANSPORT_UNREACHABLE`, async (t) => {
    const { ask, handler } = await pair(t);
    handler.failAll();
    await t.throwsAsync(ask(pattern(8)), { code: 'KVMESH_ERR_TRANSPORT_UNREACHABLE' });
  });

  test(`${prefix}: rejects malformed addresses with KVMESH_ERR_TRANSPORT_ADDRESS`, async (t) => {
    const { h, a } = await pair(t);
    for (const bad of ['not an address', 'wrong-scheme://127.0.0.1:1']) {
      await t.throwsAsync(h.settle(a.request(bad, pattern(4), { timeoutMs })), {
        code: 'KVMESH_ERR_TRANSPORT_ADDRESS',
      });
      t.throws(() => a.send(bad, pattern(4)), { code: 'KVMESH_ERR_TRANSPORT_ADDRESS' });
    }
  });

  test(`${prefix}: requests before start and after stop fail with KVMESH_ERR_TRANSPORT_CLOSED`, async (t) => {
    const { h, a, b } = await pair(t);
    const idle = await h.fixture.create();
    t.teardown(() => idle.stop());
    await t.throwsAsync(idle.request(b.address, pattern(4), { timeoutMs }), { code: 'KVMESH_ERR_TRANSPORT_CLOSED' });
    await h.settle(a.stop());
    await t.throwsAsync(a.request(b.address, pattern(4), { timeoutMs }), { code: 'KVMESH_ERR_TRANSPORT_CLOSED' });
  });

  test(`${prefix}: stop fails in-flight requests with KVMESH_ERR_TRANSPORT_CLOSED`, async (t) => {
    const { h, a, b, handler } = await pair(t);
    handler.hold = new Promise(() => undefined);
    const call = a.request(b.address, pattern(8), { timeoutMs: GENEROUS_TIMEOUT_MS });
    await h.settle(handler.seen('requests', 1));
    await h.settle(a.stop());
    await t.throwsAsync(h.settle(call), { code: 'KVMESH_ERR_TRANSPORT_CLOSED' });
  });

  test(`${prefix}: stop is idempotent and frees the address for a new transport`, async (t) => {
    const { h, a, b, ask } = await pair(t);
    t.deepEqual(await ask(pattern(4)), reversed(pattern(4)));
    const address = b.address;
    await h.settle(b.stop());
    await h.settle(b.stop());
    const successor = new RecordingHandler();
    const again = await h.start(successor, address);
    t.is(again.address, address);
    const response = await h.settle(a.request(address, pattern(6), { timeoutMs: GENEROUS_TIMEOUT_MS }));
    t.deepEqual(response, reversed(pattern(6)));
    t.is(successor.requests.length, 1);
  });
}
