import { execFile } from 'node:child_process';
import test from 'ava';
import { SystemClock } from '../../src/runtime/system-clock.js';

test('now follows the wall clock', (t) => {
  const before = Date.now();
  const now = new SystemClock().now();
  t.true(now >= before && now <= Date.now());
});

test('a timeout fires once and a cancelled one never does', async (t) => {
  const clock = new SystemClock();
  let cancelledFired = false;
  clock.setTimeout(() => (cancelledFired = true), 1).cancel();
  await new Promise<void>((resolve) => clock.setTimeout(resolve, 5));
  t.false(cancelledFired);
});

test('an interval repeats until cancelled', async (t) => {
  const clock = new SystemClock();
  let runs = 0;
  // Intervals are unref()ed, so something else must keep the event loop alive while the test waits.
  const keepAlive = setTimeout(() => undefined, 60_000);
  t.teardown(() => clearTimeout(keepAlive));
  await new Promise<void>((resolve) => {
    const timer = clock.setInterval(() => {
      runs++;
      if (runs === 3) {
        timer.cancel();
        resolve();
      }
    }, 1);
  });
  t.is(runs, 3);
  t.throws(() => clock.setInterval(() => undefined, 0), { instanceOf: RangeError });
});

test('a throwing callback is logged, not thrown', async (t) => {
  const logged: unknown[] = [];
  const logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: (fields: Record<string, unknown>) => logged.push(fields['err']),
    child: () => logger,
  };
  const clock = new SystemClock({ logger });
  clock.setTimeout(() => {
    throw new Error('boom');
  }, 0);
  await new Promise<void>((resolve) => clock.setTimeout(resolve, 5));
  t.is((logged[0] as Error).message, 'boom');
});

test('sleep resolves, and rejects with the abort reason', async (t) => {
  const clock = new SystemClock();
  await clock.sleep(1);
  const controller = new AbortController();
  const sleeping = clock.sleep(60_000, controller.signal);
  controller.abort(new Error('stop'));
  await t.throwsAsync(sleeping, { message: 'stop' });
  await t.throwsAsync(clock.sleep(1, AbortSignal.abort(new Error('early'))), { message: 'early' });
});

test('a forgotten interval does not keep the process alive', async (t) => {
  const module = new URL('../../src/runtime/system-clock.js', import.meta.url).href;
  const code = `import { SystemClock } from ${JSON.stringify(module)}; new SystemClock().setInterval(() => undefined, 50);`;
  const exitCode = await new Promise<number | null>((resolve) => {
    const child = execFile(process.execPath, ['--input-type=module', '-e', code], { timeout: 30_000 });
    child.on('exit', (code, signal) => resolve(signal === null ? code : null));
  });
  t.is(exitCode, 0);
});
