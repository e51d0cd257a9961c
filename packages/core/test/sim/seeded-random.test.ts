import test from 'ava';
import fc from 'fast-check';
import { SeededRandom } from '../../src/sim/seeded-random.js';

const draw = (r: SeededRandom) => ({
  floats: Array.from({ length: 20 }, () => r.next()),
  ints: Array.from({ length: 20 }, () => r.int(1000)),
  big: r.int(2 ** 40),
  bytes: [...r.bytes(13)],
  shuffled: r.shuffle(['a', 'b', 'c', 'd', 'e', 'f', 'g']),
});

test('the same seed gives the same sequence', (t) => {
  t.deepEqual(draw(new SeededRandom(42)), draw(new SeededRandom(42)));
});

test('different seeds give different sequences', (t) => {
  t.notDeepEqual(draw(new SeededRandom(42)), draw(new SeededRandom(43)));
});

test('a known seed keeps producing the same first values across releases', (t) => {
  const r = new SeededRandom(1);
  // Simulation seeds printed by failing tests must replay after an upgrade of pure-rand.
  t.deepEqual([r.int(1_000_000), r.int(1_000_000), r.int(1_000_000)], [483646, 575328, 902081]);
});

test('fork is deterministic and drawing from the child never moves the parent', (t) => {
  const p1 = new SeededRandom(7);
  const p2 = new SeededRandom(7);
  const c1 = p1.fork();
  const c2 = p2.fork();
  for (let i = 0; i < 100; i++) c1.next();
  t.deepEqual(draw(p1), draw(p2));
  const c2Values = draw(c2);
  t.notDeepEqual(c2Values, draw(new SeededRandom(7)));
  t.is(c2.seed, 7);
});

test('sibling forks are independent streams', (t) => {
  const parent = new SeededRandom(9);
  const a = parent.fork();
  const b = parent.fork();
  t.notDeepEqual(draw(a), draw(b));
});

test('next stays in [0, 1) and int(n) in [0, n) for any seed', (t) => {
  fc.assert(
    fc.property(fc.integer(), fc.integer({ min: 1, max: 2 ** 40 }), (seed, n) => {
      const r = new SeededRandom(seed);
      for (let i = 0; i < 20; i++) {
        const x = r.next();
        const k = r.int(n);
        if (!(x >= 0 && x < 1) || !Number.isInteger(k) || k < 0 || k >= n) return false;
      }
      return true;
    }),
  );
  t.pass();
});

test('int is roughly uniform', (t) => {
  const r = new SeededRandom(3);
  const counts = new Array<number>(10).fill(0);
  for (let i = 0; i < 100_000; i++) counts[r.int(10)]!++;
  for (const c of counts) t.true(Math.abs(c - 10_000) < 500, `bucket count ${c}`);
});

test('shuffle returns a permutation and leaves its input alone', (t) => {
  const r = new SeededRandom(5);
  const input = Object.freeze([1, 2, 3, 4, 5, 6, 7, 8]);
  const out = r.shuffle(input);
  t.deepEqual([...out].sort(), [...input]);
  t.not(out, input);
});

test('rejects bad arguments', (t) => {
  const r = new SeededRandom(1);
  t.throws(() => r.int(0), { instanceOf: RangeError });
  t.throws(() => r.int(1.5), { instanceOf: RangeError });
  t.throws(() => new SeededRandom(Number.NaN), { instanceOf: RangeError });
});
