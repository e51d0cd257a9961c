import type { ExecutionContext } from 'ava';
import { simKv } from '../../src/cli/sim-kv-command.js';
import type { SimKvRecord } from '../../src/cli/sim-kv-command.js';

/**
 * Runs `kvmesh sim kv` on `config` for every seed and checks that each run
 * lost no acknowledged write, converged and acknowledged something. A
 * violation fails the test with the run's message and every record's
 * violations (seed, rule and excerpt).
 */
export async function seedsHold(
  t: ExecutionContext,
  config: string,
  seeds: readonly number[],
  ops?: number,
): Promise<void> {
  const lines: string[] = [];
  let records: SimKvRecord[];
  try {
    records = await simKv({ config: [config], seeds, json: true, ...(ops === undefined ? {} : { ops }) }, (line) =>
      lines.push(line),
    );
  } catch (err) {
    t.fail(
      `${(err as Error).message}\n${lines.map((l) => JSON.stringify(JSON.parse(l).violations, null, 1)).join('\n')}`,
    );
    return;
  }
  t.is(records.length, seeds.length);
  for (const r of records) {
    t.log(`seed ${r.seed}: ${r.ops} ops, ${r.acked} acked, ${r.faults.length} faults, wall ${r.wallMs} ms`);
    t.deepEqual(r.violations, [], `seed ${r.seed}`);
    t.true(r.converged, `seed ${r.seed} converged`);
    t.true(r.acked > 0);
  }
}
