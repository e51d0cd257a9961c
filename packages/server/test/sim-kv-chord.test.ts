import { fileURLToPath } from 'node:url';
import test from 'ava';
import { simKv } from '../src/cli/sim-kv-command.js';
import type { SimKvRecord } from '../src/cli/sim-kv-command.js';

// Seeds of `kvmesh sim kv --config configs/chord-local.json` (and dyschord.json) that broke the rules
// before the chord placement recovered from faults; each run takes about a second.

const CONFIG = fileURLToPath(new URL('../../../../configs/chord-local.json', import.meta.url));
const DYSCHORD = fileURLToPath(new URL('../../../../configs/dyschord.json', import.meta.url));

const SEEDS: ReadonlyArray<readonly [number, string, string?]> = [
  // Finding 4 of docs/reliability.md: n4 heard nothing for 1.6 s, dropped every successor and never
  // joined again; every final read on it failed (KVMESH_ERR_PLACEMENT_EMPTY).
  [3, 'a node that heard nothing for 1.6 s and lost every successor joins the ring again'],
  // Every node lost its successors under loss and isolation; no node could read after the heal.
  [19, 'nodes that all lost their successors form one ring again'],
  // After packet loss the ring fell apart into two rings that each acknowledged the same
  // compare-and-sets (eight increments lost).
  [2, 'two rings formed under packet loss do not both acknowledge a compare-and-set, and join again'],
  // Finding 5: the same compare-and-set acknowledged by two primaries 1.4 s apart after a partition healed.
  [1, 'after a partition heals, one compare-and-set is acknowledged once'],
  // A coordinator reached a node of the other side of a healing partition as a replica; two
  // increments were acknowledged from the same version.
  [4, 'a node on the smaller side of a partition admits no key'],
  // A replica that missed an acknowledged write stayed behind for ever: with no membership, anti-entropy had no
  // peer to compare with. It now compares with the members the placement names in its ownership changes.
  [5, 'a replica that missed a write catches up through anti-entropy, without a membership'],
  [24, 'a replica that missed a write catches up through anti-entropy, without a membership'],
  // Finding 5 of docs/reliability.md: two nodes whose successor lists disagreed for a moment (one dropped
  // a live node after a lost packet) each took itself for a counter's primary and acknowledged the same
  // increment through replica sets that shared replicas but not a write quorum. A compare-and-set now
  // needs every replica of a routed placement's set.
  [53, 'two nodes whose successor lists disagree do not both acknowledge one compare-and-set'],
  [159, 'two nodes whose successor lists disagree do not both acknowledge one compare-and-set'],
  [53, 'two nodes whose successor lists disagree do not both acknowledge one compare-and-set', DYSCHORD],
];

for (const [seed, behaviour, config = CONFIG] of SEEDS) {
  const name = config === CONFIG ? 'chord-local' : 'dyschord';
  test(`${name} seed ${seed}: ${behaviour}`, async (t) => {
    const lines: string[] = [];
    let records: SimKvRecord[];
    try {
      records = await simKv({ config: [config], seeds: [seed], json: true }, (line) => lines.push(line));
    } catch (err) {
      t.fail(
        `${(err as Error).message}\n${lines.map((l) => JSON.stringify(JSON.parse(l).violations, null, 1)).join('\n')}`,
      );
      return;
    }
    t.is(records.length, 1);
    const r = records[0]!;
    t.log(`seed ${r.seed}: ${r.ops} ops, ${r.acked} acked, ${r.faults.length} faults, wall ${r.wallMs} ms`);
    t.deepEqual(r.violations, []);
    t.true(r.converged, `seed ${r.seed} converged`);
    t.true(r.acked > 0);
  });
}
