import test from 'ava';
import fc from 'fast-check';
import type { Clock, Timer, Version } from '../src/index.js';
import {
  HybridLogicalClock,
  MAX_LOGICAL,
  compareVersions,
  formatVersion,
  isKvError,
  parseVersion,
} from '../src/index.js';

/** A clock that returns whatever the test sets; timers are not needed here. */
class ManualClock implements Clock {
  constructor(public ms: number) {}
  now(): number {
    return this.ms;
  }
  setTimeout(): Timer {
    throw new Error('not used');
  }
  setInterval(): Timer {
    throw new Error('not used');
  }
  sleep(): Promise<void> {
    throw new Error('not used');
  }
}

const v = (wallMs: number, logical: number, node: string): Version => ({ wallMs, logical, node });

test('now() increases the logical counter while the physical clock stands still', (t) => {
  const clock = new ManualClock(1_000);
  const hlc = new HybridLogicalClock(clock, 'n1');
  t.deepEqual(hlc.now(), v(1_000, 0, 'n1'));
  t.deepEqual(hlc.now(), v(1_000, 1, 'n1'));
  t.deepEqual(hlc.now(), v(1_000, 2, 'n1'));
  clock.ms = 1_001;
  t.deepEqual(hlc.now(), v(1_001, 0, 'n1'), 'the counter resets when physical time moves on');
});

test('now() stays monotonic when the physical clock goes backwards', (t) => {
  const clock = new ManualClock(5_000);
  const hlc = new HybridLogicalClock(clock, 'n1');
  const first = hlc.now();
  clock.ms = 4_000;
  const second = hlc.now();
  const third = hlc.now();
  t.true(compareVersions(second, first) > 0);
  t.true(compareVersions(third, second) > 0);
  t.is(second.wallMs, 5_000, 'wall time never follows the clock backwards');
});

test('now() borrows the next millisecond when the logical counter is exhausted', (t) => {
  const clock = new ManualClock(7_000);
  const hlc = new HybridLogicalClock(clock, 'n1');
  let last = hlc.now();
  for (let i = 0; i < MAX_LOGICAL + 3; i++) {
    const next = hlc.now();
    t.true(compareVersions(next, last) > 0);
    t.true(next.logical <= MAX_LOGICAL);
    last = next;
  }
  t.is(last.wallMs, 7_001);
});

test('now() never repeats or decreases under any sequence of clock readings and observations', (t) => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 3_000 }) }),
          fc.record({
            kind: fc.constant('observe' as const),
            wallMs: fc.integer({ min: 0, max: 3_000 }),
            logical: fc.integer({ min: 0, max: MAX_LOGICAL }),
          }),
        ),
        { maxLength: 200 },
      ),
      (steps) => {
        const clock = new ManualClock(1_000);
        const hlc = new HybridLogicalClock(clock, 'local');
        let last = hlc.now();
        for (const step of steps) {
          if (step.kind === 'tick') {
            clock.ms = step.ms;
          } else {
            const remote = v(step.wallMs, step.logical, 'remote');
            const merged = hlc.observe(remote);
            if (compareVersions(merged, last) <= 0 || merged.wallMs < remote.wallMs) return false;
            if (merged.wallMs === remote.wallMs && merged.logical <= remote.logical) {
              // Equal wall time: the merged counter must pass the remote one (or borrow a millisecond).
              return false;
            }
            last = merged;
          }
          const next = hlc.now();
          if (compareVersions(next, last) <= 0 || next.wallMs < clock.ms) return false;
          last = next;
        }
        return true;
      },
    ),
  );
  t.pass();
});

test('observe() moves the clock past a remote version from the future', (t) => {
  const clock = new ManualClock(1_000);
  const hlc = new HybridLogicalClock(clock, 'n1');
  hlc.now();
  t.deepEqual(hlc.observe(v(1_500, 4, 'n2')), v(1_500, 5, 'n1'));
  t.deepEqual(hlc.now(), v(1_500, 6, 'n1'));
  clock.ms = 2_000;
  t.deepEqual(hlc.now(), v(2_000, 0, 'n1'));
});

test('observe() of an older remote version only advances the local counter', (t) => {
  const clock = new ManualClock(1_000);
  const hlc = new HybridLogicalClock(clock, 'n1');
  hlc.now();
  hlc.now();
  t.deepEqual(hlc.observe(v(900, 50, 'n2')), v(1_000, 2, 'n1'));
});

test('observe() with equal wall time takes the larger counter plus one', (t) => {
  const clock = new ManualClock(1_000);
  const hlc = new HybridLogicalClock(clock, 'n1');
  hlc.now();
  t.deepEqual(hlc.observe(v(1_000, 9, 'n2')), v(1_000, 10, 'n1'));
  t.deepEqual(hlc.observe(v(1_000, 3, 'n2')), v(1_000, 11, 'n1'));
});

test('observe() refuses a version too far in the future and leaves the clock unchanged', (t) => {
  const clock = new ManualClock(10_000);
  const hlc = new HybridLogicalClock(clock, 'n1', { maxDriftMs: 1_000 });
  const before = hlc.now();
  const err = t.throws(() => hlc.observe(v(11_001, 0, 'wild')));
  t.true(isKvError(err, 'KVMESH_ERR_VERSION_DRIFT'));
  t.regex(err!.message, /wild/);
  t.deepEqual(hlc.peek(), before);
  t.deepEqual(hlc.observe(v(11_000, 0, 'ok')), v(11_000, 1, 'n1'), 'exactly maxDriftMs ahead is accepted');
});

test('the default drift limit is one minute', (t) => {
  const clock = new ManualClock(100_000);
  const hlc = new HybridLogicalClock(clock, 'n1');
  t.notThrows(() => hlc.observe(v(160_000, 0, 'n2')));
  t.true(
    isKvError(
      t.throws(() => hlc.observe(v(160_002, 0, 'n2'))),
      'KVMESH_ERR_VERSION_DRIFT',
    ),
  );
});

test('observe() rejects something that is not a version', (t) => {
  const hlc = new HybridLogicalClock(new ManualClock(1), 'n1');
  for (const bad of [null, {}, v(-1, 0, 'a'), v(1, 70_000, 'a'), v(1.5, 0, 'a'), v(1, 0, '')]) {
    t.true(
      isKvError(
        t.throws(() => hlc.observe(bad as Version)),
        'KVMESH_ERR_VERSION_INVALID',
      ),
    );
  }
});

test('formatVersion and parseVersion round-trip', (t) => {
  t.is(formatVersion(v(0x18f2c3a4b5c, 1, 'node-a')), '018f2c3a4b5c-0001-node-a');
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2 ** 48 - 1 }),
      fc.integer({ min: 0, max: MAX_LOGICAL }),
      fc.string({ minLength: 1, unit: 'grapheme' }),
      (wallMs, logical, node) => {
        const version = v(wallMs, logical, node);
        const text = formatVersion(version);
        const back = parseVersion(text);
        return compareVersions(back, version) === 0 && back.node === node && /^[\x21\x23-\x7e]+$/.test(text);
      },
    ),
  );
  t.pass();
});

test('formatted versions of one node sort like the versions', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2 ** 48 - 1 }),
      fc.integer({ min: 0, max: MAX_LOGICAL }),
      fc.integer({ min: 0, max: 2 ** 48 - 1 }),
      fc.integer({ min: 0, max: MAX_LOGICAL }),
      (w1, l1, w2, l2) => {
        const a = v(w1, l1, 'n');
        const b = v(w2, l2, 'n');
        const fa = formatVersion(a);
        const fb = formatVersion(b);
        return Math.sign(compareVersions(a, b)) === Math.sign(fa < fb ? -1 : fa > fb ? 1 : 0);
      },
    ),
  );
  t.pass();
});

test('parseVersion rejects garbage with KVMESH_ERR_VERSION_INVALID', (t) => {
  const garbage = [
    '',
    'nonsense',
    '018f2c3a4b5c-0001-',
    '018f2c3a4b5c-0001',
    '18f2c3a4b5c-0001-n',
    '018F2C3A4B5C-0001-n',
    '018f2c3a4b5c-001-n',
    '018f2c3a4b5c-00001-n',
    '-018f2c3a4b5-0001-n',
    '018f2c3a4b5c-0001-%E0%A4%A',
    '018f2c3a4b5c-0001-a b',
    '018f2c3a4b5c-0001-%61',
    ' 018f2c3a4b5c-0001-n',
    '018f2c3a4b5c-0001-n\n',
    '"018f2c3a4b5c-0001-n"',
  ];
  for (const s of garbage) {
    t.true(
      isKvError(
        t.throws(() => parseVersion(s)),
        'KVMESH_ERR_VERSION_INVALID',
      ),
      JSON.stringify(s),
    );
  }
  t.true(
    isKvError(
      t.throws(() => parseVersion(42 as unknown as string)),
      'KVMESH_ERR_VERSION_INVALID',
    ),
  );
  fc.assert(
    fc.property(fc.string(), (s) => {
      try {
        const parsed = parseVersion(s);
        return formatVersion(parsed) === s;
      } catch (err) {
        return isKvError(err, 'KVMESH_ERR_VERSION_INVALID');
      }
    }),
  );
});

test('formatVersion rejects an invalid version', (t) => {
  for (const bad of [v(2 ** 48, 0, 'a'), v(1, -1, 'a'), v(1, 0, ''), v(1, 0, '\uD800'), v(Number.NaN, 0, 'a')]) {
    t.true(
      isKvError(
        t.throws(() => formatVersion(bad)),
        'KVMESH_ERR_VERSION_INVALID',
      ),
    );
  }
});

const arbVersion = fc.record({
  wallMs: fc.integer({ min: 0, max: 20 }),
  logical: fc.integer({ min: 0, max: 3 }),
  node: fc.constantFrom('a', 'b', 'ab', 'B', 'é', '\u{1F600}'),
});

test('compareVersions is a total order', (t) => {
  fc.assert(
    fc.property(arbVersion, arbVersion, arbVersion, (a, b, c) => {
      const ab = compareVersions(a, b);
      const same = a.wallMs === b.wallMs && a.logical === b.logical && a.node === b.node;
      if ((ab === 0) !== same) return false;
      if (Math.sign(ab) !== -Math.sign(compareVersions(b, a))) return false;
      if (compareVersions(a, a) !== 0) return false;
      if (ab <= 0 && compareVersions(b, c) <= 0 && compareVersions(a, c) > 0) return false;
      return true;
    }),
  );
  t.pass();
});

test('compareVersions orders by wallMs, then logical, then node id', (t) => {
  t.true(compareVersions(v(2, 0, 'a'), v(1, 9, 'z')) > 0);
  t.true(compareVersions(v(1, 2, 'a'), v(1, 1, 'z')) > 0);
  t.true(compareVersions(v(1, 1, 'b'), v(1, 1, 'a')) > 0);
  t.is(compareVersions(v(1, 1, 'a'), v(1, 1, 'a')), 0);
});

test('a clock needs a node id', (t) => {
  t.true(
    isKvError(
      t.throws(() => new HybridLogicalClock(new ManualClock(1), '')),
      'KVMESH_ERR_VERSION_INVALID',
    ),
  );
});
