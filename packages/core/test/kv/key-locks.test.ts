import test from 'ava';
import { KeyLocks } from '../../src/kv/key-locks.js';

/** A promise and its resolver, to hold a lock until the test lets go. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

test('calls for one key run one at a time, in call order; other keys do not wait', async (t) => {
  const locks = new KeyLocks();
  const order: string[] = [];
  const first = gate();
  const a1 = locks.run('a', async () => {
    order.push('a1 start');
    await first.promise;
    order.push('a1 end');
    return 1;
  });
  const a2 = locks.run('a', async () => {
    order.push('a2');
    return 2;
  });
  const a3 = locks.run('a', async () => {
    order.push('a3');
    return 3;
  });
  const b = locks.run('b', async () => {
    order.push('b');
    return 'b';
  });
  t.is(await b, 'b');
  t.deepEqual(order, ['a1 start', 'b'], 'b ran while a was held; a2 and a3 wait');
  t.is(locks.size, 1, 'only a is held');
  first.open();
  t.deepEqual(await Promise.all([a1, a2, a3]), [1, 2, 3]);
  t.deepEqual(order, ['a1 start', 'b', 'a1 end', 'a2', 'a3']);
  t.is(locks.size, 0, 'a key with no waiter holds no memory');
});

test('a call that fails releases the key for the next one', async (t) => {
  const locks = new KeyLocks();
  const failing = locks.run('k', async () => {
    throw new Error('boom');
  });
  const next = locks.run('k', async () => 'ran');
  await t.throwsAsync(failing, { message: 'boom' });
  t.is(await next, 'ran');
  t.is(locks.size, 0);
});

test('a call made while the lock passes to a waiter queues behind it', async (t) => {
  const locks = new KeyLocks();
  const order: number[] = [];
  const held = gate();
  const first = locks.run('k', () => held.promise.then(() => void order.push(1)));
  const second = locks.run('k', async () => {
    order.push(2);
  });
  held.open();
  await first;
  // The key passed to the second call, which has not run yet: a third must wait for it.
  const third = locks.run('k', async () => {
    order.push(3);
  });
  await Promise.all([second, third]);
  t.deepEqual(order, [1, 2, 3]);
  t.is(locks.size, 0);
});
