import test from 'ava';
import { SystemRandom } from '../../src/runtime/system-random.js';

test('SystemRandom honours the Random contract', (t) => {
  const r = new SystemRandom();
  for (let i = 0; i < 1000; i++) {
    const x = r.next();
    t.true(x >= 0 && x < 1);
    const k = r.int(3);
    t.true(k >= 0 && k < 3);
  }
  t.true(r.int(2 ** 50) < 2 ** 50);
  t.is(r.bytes(33).length, 33);
  t.deepEqual(r.shuffle([3, 1, 2]).sort(), [1, 2, 3]);
  t.notDeepEqual(r.bytes(16), r.fork().bytes(16));
});
