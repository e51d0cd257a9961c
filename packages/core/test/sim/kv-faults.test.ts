import test from 'ava';
import { FaultPlanner, KV_FAULT_KINDS, SeededRandom, formatFault, parseFaultList } from '../../src/index.js';

test('a fault list parses in the canonical order, with all and none', (t) => {
  t.deepEqual(parseFaultList('loss, crash,loss'), ['crash', 'loss']);
  t.deepEqual(parseFaultList('all'), [...KV_FAULT_KINDS]);
  t.deepEqual(parseFaultList('none'), []);
  t.deepEqual(parseFaultList(''), []);
  t.throws(() => parseFaultList('crash,flood'), {
    instanceOf: RangeError,
    message: /unknown fault kind 'flood'; known: crash,/,
  });
});

test('the planner draws the same schedule from the same seed, within its bounds and targets', (t) => {
  const nodes = ['n1', 'n2', 'n3', 'n4', 'n5'];
  const draw = (seed: number) => {
    const planner = new FaultPlanner(new SeededRandom(seed), ['crash', 'partition', 'asymmetric', 'loss', 'skew'], {
      gapMs: { min: 10, max: 20 },
      durationMs: { min: 100, max: 200 },
      longMs: { min: 1000, max: 2000 },
    });
    return Array.from({ length: 200 }, (_, i) => planner.next(i, nodes, ['n2', 'n3']));
  };
  const faults = draw(3);
  t.deepEqual(draw(3), faults);
  t.notDeepEqual(draw(4), faults);
  t.true(
    faults.every((f) => f !== undefined && f.kind !== 'skew'),
    'skew is never scheduled',
  );
  for (const f of faults) {
    t.true((f!.durationMs >= 100 && f!.durationMs <= 200) || (f!.durationMs >= 1000 && f!.durationMs <= 2000));
    if (f!.kind === 'crash') t.true(['n2', 'n3'].includes(f!.nodes[0]!), 'only crashable nodes crash');
    if (f!.kind === 'partition') t.true(f!.nodes.length >= 1 && f!.nodes.length <= 2, 'the smaller side');
    if (f!.kind === 'loss') t.true(f!.rate! >= 0.05 && f!.rate! <= 0.3);
  }
  t.true(
    faults.some((f) => f!.durationMs >= 1000),
    'some faults are long',
  );
  t.is(
    formatFault({ kind: 'asymmetric', atMs: 1500, durationMs: 250, nodes: ['n2'], direction: 'out' }),
    '1.500s asymmetric n2 sends nothing for 0.250s',
  );
});

test('a planner without schedulable kinds is inactive, and crash without a crashable node draws nothing', (t) => {
  t.false(new FaultPlanner(new SeededRandom(1), ['skew']).active);
  const planner = new FaultPlanner(new SeededRandom(1), ['crash']);
  t.true(planner.active);
  t.is(planner.next(0, ['n1'], []), undefined);
});
