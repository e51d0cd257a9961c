import test from 'ava';
import { VIRTUAL_EPOCH_MS, VirtualClock } from '../../src/sim/virtual-clock.js';

test('starts at the fixed epoch, or at the given start', (t) => {
  t.is(new VirtualClock().now(), VIRTUAL_EPOCH_MS);
  t.is(new VirtualClock({ startMs: 5 }).now(), 5);
});

test('fires timers in due order, and timers due together in the order they were set', (t) => {
  const clock = new VirtualClock({ startMs: 0 });
  const fired: string[] = [];
  clock.setTimeout(() => fired.push('c@30'), 30);
  clock.setTimeout(() => fired.push('a@10'), 10);
  clock.setTimeout(() => fired.push('b1@20'), 20);
  clock.setTimeout(() => fired.push('b2@20'), 20);
  clock.setTimeout(() => fired.push('b3@20'), 20);
  t.is(clock.advance(25), 4);
  t.deepEqual(fired, ['a@10', 'b1@20', 'b2@20', 'b3@20']);
  t.is(clock.now(), 25);
  t.is(clock.pending(), 1);
});

test('each callback sees now() equal to its due time', (t) => {
  const clock = new VirtualClock({ startMs: 100 });
  const seen: number[] = [];
  for (const ms of [7, 3, 12]) clock.setTimeout(() => seen.push(clock.now()), ms);
  clock.advance(50);
  t.deepEqual(seen, [103, 107, 112]);
  t.is(clock.now(), 150);
});

test('timers set during advance run in the same advance when due by its end, and not otherwise', (t) => {
  const clock = new VirtualClock({ startMs: 0 });
  const fired: string[] = [];
  clock.setTimeout(() => {
    fired.push('outer@10');
    clock.setTimeout(() => fired.push('inner@15'), 5);
    clock.setTimeout(() => fired.push('late@60'), 50);
  }, 10);
  clock.advance(20);
  t.deepEqual(fired, ['outer@10', 'inner@15']);
  clock.advance(40);
  t.deepEqual(fired, ['outer@10', 'inner@15', 'late@60']);
});

test('setTimeout(0) never fires synchronously, and fires on advance(0)', (t) => {
  const clock = new VirtualClock();
  let fired = false;
  clock.setTimeout(() => (fired = true), 0);
  t.false(fired);
  clock.advance(0);
  t.true(fired);
});

test('an interval repeats until cancelled, and cancel is idempotent', (t) => {
  const clock = new VirtualClock({ startMs: 0 });
  const at: number[] = [];
  const timer = clock.setInterval(() => at.push(clock.now()), 10);
  clock.advance(35);
  t.deepEqual(at, [10, 20, 30]);
  timer.cancel();
  timer.cancel();
  clock.advance(100);
  t.deepEqual(at, [10, 20, 30]);
  t.is(clock.pending(), 0);
  t.throws(() => clock.setInterval(() => undefined, 0), { instanceOf: RangeError });
});

test('an interval may cancel itself from its own callback', (t) => {
  const clock = new VirtualClock();
  let runs = 0;
  const timer = clock.setInterval(() => {
    runs++;
    if (runs === 2) timer.cancel();
  }, 5);
  clock.advance(100);
  t.is(runs, 2);
  t.is(clock.pending(), 0);
});

test('a cancelled timer never fires, and cancelling after it fired changes nothing', (t) => {
  const clock = new VirtualClock();
  let fired = 0;
  const a = clock.setTimeout(() => fired++, 10);
  const b = clock.setTimeout(() => fired++, 20);
  a.cancel();
  clock.advance(30);
  b.cancel();
  t.is(fired, 1);
  t.is(clock.pending(), 0);
});

test('thousands of cancelled timers do not disturb the live ones', (t) => {
  const clock = new VirtualClock({ startMs: 0 });
  const fired: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    const timer = clock.setTimeout(() => fired.push(-1), 1 + (i % 50));
    if (i % 1000 !== 0) timer.cancel();
    else clock.setTimeout(() => fired.push(i), 100 + i);
  }
  t.is(clock.pending(), 20);
  clock.advance(20_000);
  t.deepEqual(fired, [...Array.from({ length: 10 }, () => -1), ...Array.from({ length: 10 }, (_, k) => k * 1000)]);
});

test('a throwing callback is reported and the clock keeps going', (t) => {
  const errors: unknown[] = [];
  const clock = new VirtualClock({ onError: (err) => errors.push(err) });
  const fired: number[] = [];
  clock.setTimeout(() => {
    throw new Error('boom');
  }, 1);
  clock.setTimeout(() => fired.push(2), 2);
  clock.advance(5);
  t.deepEqual(fired, [2]);
  t.is(errors.length, 1);
  t.is((errors[0] as Error).message, 'boom');
  t.is(clock.errorCount, 1);
});

test('advancing from inside a timer callback is refused', (t) => {
  const errors: unknown[] = [];
  const clock = new VirtualClock({ onError: (err) => errors.push(err) });
  clock.setTimeout(() => clock.advance(1), 1);
  clock.advance(2);
  t.regex((errors[0] as Error).message, /already advancing/);
});

test('runUntilIdle stops at the last timer, or at the limit when an interval keeps it busy', (t) => {
  const clock = new VirtualClock({ startMs: 0 });
  clock.setTimeout(() => clock.setTimeout(() => undefined, 40), 30);
  t.is(clock.runUntilIdle(), 2);
  t.is(clock.now(), 70);
  clock.setInterval(() => undefined, 10);
  t.is(clock.runUntilIdle(100), 10);
  t.is(clock.now(), 170);
});

test('nextDue names the earliest live timer', (t) => {
  const clock = new VirtualClock({ startMs: 0 });
  t.is(clock.nextDue(), undefined);
  const a = clock.setTimeout(() => undefined, 5);
  clock.setTimeout(() => undefined, 9);
  t.is(clock.nextDue(), 5);
  a.cancel();
  t.is(clock.nextDue(), 9);
});

test('sleep resolves at its time and rejects with the abort reason', async (t) => {
  const clock = new VirtualClock({ startMs: 0 });
  const slept = clock.sleep(10).then(() => clock.now());
  clock.advance(10);
  t.is(await slept, 10);

  const controller = new AbortController();
  const aborted = clock.sleep(10, controller.signal);
  controller.abort(new Error('stop'));
  await t.throwsAsync(aborted, { message: 'stop' });
  t.is(clock.pending(), 0);
  await t.throwsAsync(clock.sleep(10, AbortSignal.abort(new Error('early'))), { message: 'early' });
});

test('advanceAsync runs promise continuations at the virtual time they belong to', async (t) => {
  const clock = new VirtualClock({ startMs: 0 });
  const seen: number[] = [];
  const work = async (): Promise<void> => {
    await clock.sleep(10);
    seen.push(clock.now());
    await Promise.resolve();
    await clock.sleep(5);
    seen.push(clock.now());
  };
  const done = work();
  t.is(await clock.advanceAsync(100), 2);
  await done;
  t.deepEqual(seen, [10, 15]);
  t.is(clock.now(), 100);
});

test('synchronous advance runs promise continuations only after it returns, so they run late', async (t) => {
  const clock = new VirtualClock({ startMs: 0 });
  const seen: number[] = [];
  void (async () => {
    await clock.sleep(10);
    await clock.sleep(5);
    seen.push(clock.now());
  })();
  clock.advance(100);
  await new Promise(setImmediate);
  t.deepEqual(seen, []);
  clock.advance(100);
  t.deepEqual(seen, []);
  await new Promise(setImmediate);
  // The second sleep only started once the first advance had returned, so it ran late.
  t.deepEqual(seen, [200]);
});

test('advanceAsync with stepMs lets promises settle at every step', async (t) => {
  const clock = new VirtualClock({ startMs: 0 });
  const steps: number[] = [];
  let stop = false;
  const watch = async (): Promise<void> => {
    while (!stop) {
      steps.push(clock.now());
      await new Promise(setImmediate);
    }
  };
  const watching = watch();
  await clock.advanceAsync(50, 10);
  stop = true;
  await watching;
  for (const at of [10, 20, 30, 40, 50]) t.true(steps.includes(at), `no settling at ${at}`);
});

test('runUntilIdleAsync follows async chains until nothing is pending', async (t) => {
  const clock = new VirtualClock({ startMs: 0 });
  let hops = 0;
  const hop = async (): Promise<void> => {
    while (hops < 5) {
      await clock.sleep(7);
      hops++;
    }
  };
  const done = hop();
  await clock.runUntilIdleAsync();
  await done;
  t.is(hops, 5);
  t.is(clock.now(), 35);
});

test('two advances at once are refused', async (t) => {
  const clock = new VirtualClock();
  clock.setTimeout(() => undefined, 5);
  const first = clock.advanceAsync(10);
  await t.throwsAsync(clock.advanceAsync(10), { message: /already advancing/ });
  await first;
});
