import type { Move } from '@kvmesh/core';
import type { KeyHash } from './hash.js';
import type { HashRing } from './hash-ring.js';

/** A ring and the replica ids (sorted) of the keys landing on each of its points. */
export interface RingSide {
  readonly ring: HashRing;
  /** Replica ids of point i's keys, sorted by id (compared as sets). */
  idsAt(point: number): readonly string[];
}

const SEPARATOR = '\u0000';
const NOWHERE: readonly string[] = Object.freeze([]);
/** Top of the 32-bit hash space. */
const HASH_MAX = 0xffff_ffff;

/** Several key sets with one (from, to) pair, gathered into one move. */
class MoveGroup {
  readonly from: readonly string[];
  readonly to: readonly string[];
  readonly los: number[] = [];
  readonly his: number[] = [];

  constructor(from: readonly string[], to: readonly string[]) {
    this.from = from;
    this.to = to;
  }

  /** Appends [lo, hi], joining it to the previous interval when they touch. */
  add(lo: number, hi: number): void {
    const last = this.his.length - 1;
    if (last >= 0 && this.his[last]! + 1 === lo) this.his[last] = hi;
    else {
      this.los.push(lo);
      this.his.push(hi);
    }
  }
}

/**
 * The moves between two rings: the hash space is cut at every point of
 * either ring; each piece whose replica set differs joins the move of its
 * (from, to) pair, adjacent pieces merged. One move per distinct pair, so
 * the count stays small however many points the rings have.
 */
export function ringMoves(before: RingSide, after: RingSide, keyHash: KeyHash): Move[] {
  const hash = lastKeyMemo(keyHash);
  const a = before.ring;
  const b = after.ring;
  const groups = new Map<string, MoveGroup>();
  // An empty ring (no data members) holds every key nowhere.
  const visit = (lo: number, hi: number, pa: number, pb: number): void => {
    const from = a.size === 0 ? NOWHERE : before.idsAt(pa);
    const to = b.size === 0 ? NOWHERE : after.idsAt(pb);
    if (sameList(from, to)) return;
    const label = from.join(SEPARATOR) + SEPARATOR + SEPARATOR + to.join(SEPARATOR);
    let group = groups.get(label);
    if (group === undefined) groups.set(label, (group = new MoveGroup(from, to)));
    group.add(lo, hi);
  };
  // Walk the merged, ascending cut points; [lo, cut] lands on the successor of cut in each ring.
  let i = 0;
  let j = 0;
  let lo = 0;
  while (i < a.size || j < b.size) {
    const pa = i < a.size ? a.positions[i]! : Infinity;
    const pb = j < b.size ? b.positions[j]! : Infinity;
    const cut = Math.min(pa, pb);
    if (cut >= lo) visit(lo, cut, i < a.size ? i : 0, j < b.size ? j : 0);
    while (i < a.size && a.positions[i] === cut) i++;
    while (j < b.size && b.positions[j] === cut) j++;
    lo = cut + 1;
  }
  // Past the last point, keys wrap to the first point of each ring.
  if (lo <= HASH_MAX && (a.size > 0 || b.size > 0)) visit(lo, HASH_MAX, 0, 0);
  return [...groups.values()].map((g) => intervalMove(g, hash));
}

function intervalMove(group: MoveGroup, hash: KeyHash): Move {
  const los = Uint32Array.from(group.los);
  const his = Uint32Array.from(group.his);
  let covered = 0;
  for (let k = 0; k < los.length; k++) covered += his[k]! - los[k]! + 1;
  const share = ((covered / 2 ** 32) * 100).toFixed(2);
  const range =
    los.length === 1
      ? `hashes ${hex(los[0]!)}..${hex(his[0]!)} (${share}% of the ring)`
      : `${los.length} hash arcs, ${share}% of the ring`;
  const contains = (key: string): boolean => {
    const h = hash(key);
    // The last interval starting at or below h.
    let low = 0;
    let high = los.length - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (los[mid]! <= h) {
        found = mid;
        low = mid + 1;
      } else high = mid - 1;
    }
    return found >= 0 && h <= his[found]!;
  };
  return Object.freeze({ range, contains, from: group.from, to: group.to });
}

/** Moves for numbered key sets (partitions) whose replica ids changed, one move per (from, to) pair. */
export function partitionMoves(
  count: number,
  before: (partition: number) => readonly string[],
  after: (partition: number) => readonly string[],
  keyPartition: (key: string) => number,
  name: (partition: number) => string,
): Move[] {
  const partitionOf = lastKeyMemo(keyPartition);
  const groups = new Map<string, { from: readonly string[]; to: readonly string[]; parts: number[] }>();
  for (let p = 0; p < count; p++) {
    const from = before(p);
    const to = after(p);
    if (sameList(from, to)) continue;
    const label = from.join(SEPARATOR) + SEPARATOR + SEPARATOR + to.join(SEPARATOR);
    let group = groups.get(label);
    if (group === undefined) groups.set(label, (group = { from, to, parts: [] }));
    group.parts.push(p);
  }
  return [...groups.values()].map(({ from, to, parts }) => {
    const member = new Uint8Array(count);
    for (const p of parts) member[p] = 1;
    const listed = parts.slice(0, 8).map(name).join(', ');
    const range = `partition${parts.length === 1 ? '' : 's'} ${listed}${parts.length > 8 ? ', ...' : ''} (${parts.length} of ${count})`;
    return Object.freeze({ range, contains: (key: string) => member[partitionOf(key)] === 1, from, to });
  });
}

/**
 * `fn` remembering its last key: a data mover asks every move of a plan
 * about the same key in turn, and the key's hash (a SHA-1 for partitions)
 * is then computed once rather than once per move.
 */
function lastKeyMemo(fn: (key: string) => number): (key: string) => number {
  let lastKey: string | undefined;
  let lastValue = 0;
  return (key) => {
    if (key !== lastKey) {
      lastValue = fn(key);
      lastKey = key;
    }
    return lastValue;
  };
}

export function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
