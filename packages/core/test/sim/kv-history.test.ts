import test from 'ava';
import { checkHistory, formatViolation } from '../../src/index.js';
import type { FinalRead, KvHistory, KvOp, KvOpKind, ReplicaState } from '../../src/index.js';

// Hand-made histories, each breaking (or keeping) one rule of the checker.

let nextId = 0;

/** An op on `key` over [invokeMs, completeMs], acknowledged unless said otherwise. */
function op(kind: KvOpKind, key: string, invokeMs: number, completeMs: number, extra: Partial<KvOp> = {}): KvOp {
  return { id: nextId++, client: 0, node: 'n1', kind, key, invokeMs, completeMs, outcome: 'ok', ...extra };
}

const put = (key: string, value: string, at: number, until: number, extra: Partial<KvOp> = {}): KvOp =>
  op('put', key, at, until, { value, ...extra });

function reads(key: string, value: string | null, nodes = ['n1', 'n2', 'n3']): FinalRead[] {
  return nodes.map((node) => ({ node, key, value }));
}

function history(ops: KvOp[], finals: FinalRead[], extra: Partial<KvHistory> = {}): KvHistory {
  return { ops, counters: [], replicas: [], finals, ...extra };
}

const rules = (h: KvHistory): string[] => checkHistory(h).map((v) => `${v.check}:${v.rule}:${v.key}`);

test('a key that reads as its last acknowledged write passes', (t) => {
  const h = history([put('k', 'v1', 0, 10), put('k', 'v2', 20, 30)], reads('k', 'v2'));
  t.deepEqual(checkHistory(h), []);
});

test('a key that reads as absent after an acknowledged put is a lost write, with the put as the excerpt', (t) => {
  const first = put('k', 'v1', 0, 10);
  const last = put('k', 'v2', 20, 30);
  const [violation, ...rest] = checkHistory(history([first, last], reads('k', null, ['n2'])));
  t.deepEqual(rest, []);
  t.is(violation?.rule, 'lost-write');
  t.is(violation?.check, 'a');
  t.deepEqual(violation?.excerpt, [last], 'the superseded put is not part of the excerpt');
  t.deepEqual(
    violation?.reads.map((r) => r.node),
    ['n2'],
  );
  t.regex(
    formatViolation(violation!).join('\n'),
    /lost-write on 'k'[\s\S]*put k="v2" ok[\s\S]*final read k@n2 -> absent/,
  );
});

test('a key that reads as an older acknowledged value is a stale read naming the write that replaced it', (t) => {
  const old = put('k', 'v1', 0, 10);
  const newer = put('k', 'v2', 20, 30);
  const violations = checkHistory(history([old, newer], reads('k', 'v1')));
  t.deepEqual(rules(history([old, newer], reads('k', 'v1'))), ['a:stale-read:k']);
  t.deepEqual(violations[0]!.excerpt, [old, newer]);
  t.is(violations[0]!.reads.length, 3, 'one violation for every node that read the same wrong value');
});

test('a value no client wrote is a phantom read', (t) => {
  t.deepEqual(rules(history([put('k', 'v1', 0, 10)], reads('k', 'v9'))), ['a:phantom-read:k']);
});

test('a write concurrent with the last acknowledged one may win, an acknowledged one that ended before may not', (t) => {
  const a = put('k', 'a', 0, 50);
  const b = put('k', 'b', 10, 20);
  // a and b overlap: either may be the final value.
  t.deepEqual(rules(history([a, b], reads('k', 'a'))), []);
  t.deepEqual(rules(history([a, b], reads('k', 'b'))), []);
  const c = put('k', 'c', 60, 70);
  t.deepEqual(rules(history([a, b, c], reads('k', 'b'))), ['a:stale-read:k']);
});

test('an unanswered write may be the final value, even over an acknowledged write that began after it gave up', (t) => {
  const acked = put('k', 'v1', 0, 10);
  const unknown = put('k', 'v2', 20, 30, { outcome: 'unknown', error: 'KVMESH_ERR_KV_QUORUM' });
  t.deepEqual(rules(history([acked, unknown], reads('k', 'v2'))), []);
  t.deepEqual(rules(history([acked, unknown], reads('k', 'v1'))), [], 'or it never landed');
  const later = put('k', 'v3', 40, 50);
  // Indeterminate: it may take effect at any time after it was invoked.
  t.deepEqual(rules(history([acked, unknown, later], reads('k', 'v2'))), []);
  // The acknowledged write it followed is still superseded by the later one.
  t.deepEqual(rules(history([acked, unknown, later], reads('k', 'v1'))), ['a:stale-read:k']);
  // A refused write never took effect.
  const refused = put('k', 'v4', 20, 30, { outcome: 'refused', error: 'KVMESH_ERR_KV_PRECONDITION_FAILED' });
  t.deepEqual(rules(history([acked, refused, later], reads('k', 'v4'))), ['a:phantom-read:k']);
});

test('a refused write counts as never applied', (t) => {
  const acked = put('k', 'v1', 0, 10);
  const refused = op('create', 'k', 20, 30, {
    value: 'v2',
    outcome: 'refused',
    error: 'KVMESH_ERR_KV_PRECONDITION_FAILED',
  });
  t.deepEqual(rules(history([acked, refused], reads('k', 'v2'))), ['a:phantom-read:k']);
});

test('a key nobody acknowledged a write to may read as absent', (t) => {
  const unknown = put('k', 'v1', 0, 10, { outcome: 'unknown', error: 'CLIENT_TIMEOUT' });
  t.deepEqual(rules(history([unknown], reads('k', null))), []);
  t.deepEqual(rules(history([], reads('k', null))), []);
});

test('a value read back after an acknowledged delete is a deleted read', (t) => {
  const written = put('k', 'v1', 0, 10);
  const deleted = op('delete', 'k', 20, 30);
  t.deepEqual(rules(history([written, deleted], reads('k', null))), []);
  const violations = checkHistory(history([written, deleted], reads('k', 'v1', ['n3'])));
  t.deepEqual(
    violations.map((v) => `${v.check}:${v.rule}`),
    ['d:deleted-read'],
  );
  t.deepEqual(violations[0]!.excerpt, [written, deleted]);
});

test('a delete concurrent with a put may leave either', (t) => {
  const written = put('k', 'v1', 0, 30);
  const deleted = op('delete', 'k', 10, 20);
  t.deepEqual(rules(history([written, deleted], reads('k', 'v1'))), []);
  t.deepEqual(rules(history([written, deleted], reads('k', null))), []);
});

test('a final read that failed after the heal is reported', (t) => {
  const h = history([put('k', 'v1', 0, 10)], [{ node: 'n2', key: 'k', error: 'KVMESH_ERR_KV_QUORUM' }]);
  t.deepEqual(rules(h), ['a:final-read-failed:k']);
});

test('replicas holding different versions after settling diverge; a tombstone and no record agree', (t) => {
  const written = put('k', 'v1', 0, 10, { version: 'v-1' });
  const replicas = (records: ReplicaState['replicas']): ReplicaState[] => [{ key: 'k', replicas: records }];
  const same = replicas([
    { node: 'n1', version: 'v-1', tombstone: false, value: 'v1' },
    { node: 'n2', version: 'v-1', tombstone: false, value: 'v1' },
  ]);
  t.deepEqual(rules(history([written], reads('k', 'v1'), { replicas: same })), []);
  const absent = replicas([
    { node: 'n1', version: 'v-2', tombstone: true, value: null },
    { node: 'n2', version: null, tombstone: false, value: null },
  ]);
  t.deepEqual(rules(history([], [], { replicas: absent })), []);
  const split = replicas([
    { node: 'n1', version: 'v-1', tombstone: false, value: 'v1' },
    { node: 'n2', version: null, tombstone: false, value: null },
  ]);
  const violations = checkHistory(history([written], reads('k', 'v1'), { replicas: split }));
  t.deepEqual(
    violations.map((v) => `${v.check}:${v.rule}`),
    ['b:divergent-replicas'],
  );
  t.deepEqual(violations[0]!.excerpt, [written], 'the write whose version one replica holds');
  t.regex(violations[0]!.message, /n1 v-1 "v1", n2 nothing/);
});

test('a counter passes when it ends at its acknowledged increments, plus at most the unanswered ones', (t) => {
  const inc = (value: string, at: number, extra: Partial<KvOp> = {}): KvOp =>
    op(value === '1' ? 'create' : 'cas', 'c', at, at + 5, { value, increment: true, ...extra });
  const ops = [inc('1', 0), inc('2', 10), inc('3', 20, { outcome: 'unknown', error: 'CLIENT_TIMEOUT' })];
  const counted = { counters: ['c'] };
  t.deepEqual(rules(history(ops, reads('c', '2'), counted)), []);
  t.deepEqual(rules(history(ops, reads('c', '3'), counted)), []);
  t.deepEqual(rules(history(ops, reads('c', '1'), counted)), ['a:stale-read:c', 'c:counter-total:c']);
});

test('two acknowledged increments that wrote the same count are a lost increment', (t) => {
  const first = op('cas', 'c', 0, 5, { value: '1', increment: true, ifMatch: 'v0' });
  const second = op('cas', 'c', 2, 8, { value: '1', increment: true, ifMatch: 'v0' });
  const violations = checkHistory(history([first, second], reads('c', '1'), { counters: ['c'] }));
  t.deepEqual(
    violations.map((v) => `${v.check}:${v.rule}`),
    ['c:counter-duplicate', 'c:counter-total'],
  );
  t.deepEqual(violations[0]!.excerpt, [first, second]);
  t.regex(violations[1]!.message, /2 increments were acknowledged and 0 unanswered, so it must be 2/);
});

test('violations come in key order, and the same history gives the same answer', (t) => {
  const h = history(
    [put('b', 'x', 0, 10), put('a', 'y', 0, 10)],
    [...reads('b', null, ['n1']), ...reads('a', null, ['n1'])],
  );
  t.deepEqual(rules(h), ['a:lost-write:a', 'a:lost-write:b']);
  t.deepEqual(checkHistory(h), checkHistory(structuredClone(h)));
});

test('a key whose replicas placement could not name after settling is reported under convergence', (t) => {
  const h = history([], [], { replicas: [{ key: 'k', replicas: [], error: 'KVMESH_ERR_PLACEMENT_EMPTY' }] });
  const [violation] = checkHistory(h);
  t.is(violation?.rule, 'replicas-unknown');
  t.is(violation?.check, 'b');
  t.regex(violation!.message, /KVMESH_ERR_PLACEMENT_EMPTY/);
});
