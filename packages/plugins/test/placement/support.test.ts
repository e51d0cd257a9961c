import test from 'ava';
import type { Member, MemberState } from '@kvmesh/core';
import { HashRing } from '../../src/placement/support/hash-ring.js';
import { loadHash, mix32 } from '../../src/placement/support/hash.js';
import { ringMoves } from '../../src/placement/support/moves.js';
import { resolveQuorum } from '../../src/placement/support/quorum.js';
import { dataMembers } from '../../src/placement/support/data-members.js';

test('successor finds the first point at or after a hash and wraps past the last', (t) => {
  const ring = HashRing.fromPoints([Uint32Array.of(100, 300), Uint32Array.of(200)]);
  t.deepEqual([...ring.positions], [100, 200, 300]);
  t.deepEqual([...ring.owners], [0, 1, 0]);
  t.is(ring.successor(0), 0);
  t.is(ring.successor(100), 0);
  t.is(ring.successor(101), 1);
  t.is(ring.successor(300), 2);
  t.is(ring.successor(301), 0);
  t.is(ring.successor(0xffff_ffff), 0);
});

test('equal positions are ordered by owner, and distinct owners skip repeats', (t) => {
  const ring = HashRing.fromPoints([Uint32Array.of(5, 6), Uint32Array.of(5), Uint32Array.of(9)]);
  t.deepEqual([...ring.owners], [0, 1, 0, 2]);
  t.deepEqual([...ring.distinctOwners(2)], [0, 1, 1, 0, 0, 2, 2, 0]);
  t.deepEqual([...ring.distinctOwners(5)].slice(0, 3), [0, 1, 2], 'never more than the units');
});

test('ring shares add up to the whole space', (t) => {
  const ring = HashRing.fromPoints([Uint32Array.of(0x4000_0000), Uint32Array.of(0xc000_0000)]);
  const shares = [...ring.shares()];
  t.deepEqual(shares, [0.5, 0.5]);
});

test('ring moves cover exactly the hashes whose owners differ, merged per (from, to)', (t) => {
  const identity = (key: string): number => Number(key);
  const side = (ring: HashRing, names: string[]) => ({ ring, idsAt: (p: number) => [names[ring.owners[p]!]!] });
  const before = side(HashRing.fromPoints([Uint32Array.of(100), Uint32Array.of(200)]), ['a', 'b']);
  const after = side(HashRing.fromPoints([Uint32Array.of(100), Uint32Array.of(200), Uint32Array.of(150)]), [
    'a',
    'b',
    'c',
  ]);
  const moves = ringMoves(before, after, identity);
  t.is(moves.length, 1);
  const [move] = moves;
  t.deepEqual([move!.from, move!.to], [['b'], ['c']]);
  for (const h of [0, 100, 101, 150, 151, 200, 201, 0xffff_ffff]) {
    t.is(move!.contains(String(h)), h >= 101 && h <= 150, String(h));
  }
  t.regex(move!.range, /^hashes 0x00000065\.\.0x00000096/);
  const empty = { ring: HashRing.fromPoints([]), idsAt: () => [] };
  const all = ringMoves(empty, before, identity);
  t.deepEqual(
    all.map((m) => [m.from, m.to]),
    [
      [[], ['a']],
      [[], ['b']],
    ],
  );
  t.true(all[0]!.contains('0') && all[0]!.contains('4294967295') && all[1]!.contains('150'));
  t.deepEqual(ringMoves(empty, empty, identity), []);
});

test('quorums resolve against the replica count', (t) => {
  t.is(resolveQuorum('all', 3), 3);
  t.is(resolveQuorum('majority', 3), 2);
  t.is(resolveQuorum('majority', 4), 3);
  t.is(resolveQuorum(2, 1), 1);
  t.is(resolveQuorum(2, 0), 0);
});

test('data members: storage role or none, any state but left, sorted by id', (t) => {
  const m = (id: string, state: MemberState, role?: string): Member => ({
    id,
    address: `sim://${id}`,
    state,
    incarnation: 0,
    meta: role === undefined ? {} : { role },
  });
  const list = [m('c', 'dead'), m('a', 'alive', 'storage'), m('b', 'left'), m('d', 'alive', 'frontend')];
  t.deepEqual(
    dataMembers(list, ['storage']).map((x) => x.id),
    ['a', 'c'],
  );
  t.deepEqual(
    dataMembers(list, ['frontend']).map((x) => x.id),
    ['d'],
  );
});

test('hashes are stable across releases (golden values)', async (t) => {
  const xx = await loadHash('xxhash32');
  const sha1 = await loadHash('sha1');
  const md5 = await loadHash('md5');
  // xxHash32("abc", 0) = 0x32d153ff; sha1("abc") starts a9993e36; md5("abc") starts 90015098.
  t.is(xx('abc'), 0x32d1_53ff);
  t.is(sha1('abc'), 0xa999_3e36);
  t.is(md5('abc'), 0x9001_5098);
  t.is(mix32(0), 0);
  t.not(mix32(1), 1);
});
