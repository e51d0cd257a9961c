import { hash } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import type { Placement, RoutingTable } from '../contracts/placement.js';

/** A key hash a routing table may name, as the caller of the suite provides it. */
export type RoutesKeyHash = (name: string) => ((key: string) => number) | Promise<(key: string) => number>;

/** The digests core computes itself; other names (xxhash32) come from the suite's `keyHash` option. */
function digestHash(name: string): ((key: string) => number) | undefined {
  if (name !== 'sha1' && name !== 'md5') return undefined;
  return (key) => hash(name, key, 'buffer').readUInt32BE(0);
}

/** MurmurHash3's 32-bit finaliser, as a table with `order: 'fmix32'` names it. */
function fmix32(value: number): number {
  let x = value >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85eb_ca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2_ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The replica ids a client computes for `key` from `table` alone (docs/client.md). */
export function routedReplicas(table: RoutingTable, position: number): readonly string[] {
  const ends = table.ends;
  if (ends.length === 0) return [];
  let lo = 0;
  let hi = ends.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ends[mid]! < position) lo = mid + 1;
    else hi = mid;
  }
  const list = table.replicaSets[table.sets[lo === ends.length ? 0 : lo]!]!;
  if (table.order === 'listed' || list.length < 2) return list;
  const rotation = fmix32(position) % list.length;
  return [...list.slice(rotation), ...list.slice(0, rotation)];
}

/** What is wrong with the shape of `table`, or undefined. */
function shapeProblem(table: RoutingTable, epoch: number, holders: ReadonlySet<string>): string | undefined {
  if (table.epoch !== epoch) return `the table's epoch ${table.epoch} is not the placement's ${epoch}`;
  if (table.ends.length !== table.sets.length) return 'ends and sets differ in length';
  for (let i = 0; i < table.ends.length; i++) {
    const end = table.ends[i]!;
    if (!Number.isInteger(end) || end < 0 || end >= 2 ** 32) return `end ${end} is not a 32-bit position`;
    if (i > 0 && end < table.ends[i - 1]!) return 'ends are not ascending';
    const set = table.sets[i]!;
    if (!Number.isInteger(set) || set < 0 || set >= table.replicaSets.length) return `range ${i} names no list`;
  }
  for (const list of table.replicaSets) {
    if (new Set(list).size !== list.length) return `a list names a member twice: ${list.join(',')}`;
    const stranger = list.find((id) => !holders.has(id));
    if (stranger !== undefined) return `${stranger} is in the table but is not a data member in the view`;
  }
  return undefined;
}

/**
 * The `routes` check: when the placement states a routing table
 * (`Placement.routes`), it has the placement's epoch and a sound shape, and
 * gives every sampled key exactly the replicas `locate` gives, in order;
 * and so again after `change` (a member joining). A placement without one
 * passes. Keys are compared when the table's hash is sha1, md5 or one
 * `keyHash` knows; otherwise the figure is logged.
 */
export async function checkRoutes(
  t: ExecutionContext,
  c: {
    readonly placement: Placement;
    readonly keys: readonly string[];
    readonly holders: () => ReadonlySet<string>;
    readonly change: () => void;
    readonly keyHash: RoutesKeyHash | undefined;
    readonly prefix: string;
  },
): Promise<void> {
  const { placement } = c;
  for (const step of ['at first', 'after a member joined']) {
    if (step !== 'at first') c.change();
    const table = placement.routes?.();
    if (table === undefined) {
      t.pass(`${c.prefix} states no routing table`);
      return;
    }
    t.is(placement.routes!(), placement.routes!(), 'the table is kept while the view stays');
    const problem = shapeProblem(table, placement.epoch, c.holders());
    if (problem !== undefined) return void t.fail(`${c.prefix} ${step}: ${problem}`);
    const keyHash = digestHash(table.hash) ?? (await c.keyHash?.(table.hash));
    if (keyHash === undefined) {
      t.log(`${c.prefix}: no function for hash '${table.hash}' given (keyHash); keys not compared`);
      continue;
    }
    for (const key of c.keys) {
      const expected = (await placement.locate(key, { intent: 'write' })).replicas.map((m) => m.id);
      const routed = routedReplicas(table, keyHash(key));
      if (routed.length !== expected.length || routed.some((id, i) => id !== expected[i])) {
        return void t.fail(
          `${c.prefix} ${step}: key ${JSON.stringify(key)}: the table says [${routed.join(',')}], locate [${expected.join(',')}]`,
        );
      }
    }
    t.log(
      `${c.prefix} ${step}: ${table.ends.length} ranges, ${table.replicaSets.length} lists, ${c.keys.length} keys agree`,
    );
  }
}
