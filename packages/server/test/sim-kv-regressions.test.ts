import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { PluginRegistry, SimCluster, TOKENS, interpolateEnv, kvConfigSchema, kvServiceDefinition } from '@kvmesh/core';
import type { KvService } from '@kvmesh/core';
import { builtinPlugins } from '@kvmesh/plugins';
import { simKv } from '../src/cli/sim-kv-command.js';
import type { SimKvRecord } from '../src/cli/sim-kv-command.js';

// Lost writes the KV simulation (`kvmesh sim kv`) found, replayed step by step on the simulator.

const RING = fileURLToPath(new URL('../../../../configs/ring-local.json', import.meta.url));
const UTF8 = new TextEncoder();
const TEXT = new TextDecoder();

/**
 * Found by `kvmesh sim kv --config configs/ring-local.json --seed 21` (with
 * the first cut's client pacing): a node restarted after a crash lists only
 * itself until its join is answered, so placement gives every key one
 * replica and a write quorum of one (quorums shrink with the members), and
 * the node acknowledges a put alone, in 0 ms. Its clock lags, so the put's
 * version is older than the key's: once the node joins, the older put is
 * what every replica keeps, and the acknowledged write is gone.
 *
 * `test.failing` until it is fixed (a node should not coordinate writes with
 * a quorum its configured replication does not give, or not before it
 * joined); then flip it to `test`.
 */
test.failing('a put acknowledged by a node restarted before it joined survives the join', async (t) => {
  const raw = interpolateEnv(JSON.parse(await readFile(RING, 'utf8')), {}, []) as Record<string, unknown>;
  const cluster = await SimCluster.create({
    registry: new PluginRegistry(builtinPlugins),
    nodes: 5,
    seed: 1,
    // n3's clock lags by 20 s (the hybrid clock tolerates 60 s): its versions are older than the others'.
    clockSkew: (spec) => ({ offsetMs: spec.id === 'n3' ? -20_000 : 0 }),
    // A node's start creates its data directory: real I/O, given real time so the run replays.
    realIoMs: 50,
    extras: [kvServiceDefinition()],
    extensions: { kv: kvConfigSchema },
    config: () => ({
      codec: raw['codec'],
      membership: raw['membership'],
      placement: raw['placement'],
      storage: { name: 'memory' },
    }),
  });
  t.teardown(() => cluster.dispose());
  const kv = (id: string): KvService => cluster.node(id).get<KvService>(TOKENS.kv);
  await cluster.start();
  await cluster.join();
  const everyoneAlive = (): boolean =>
    cluster.runningIds().every((o) => cluster.runningIds().every((s) => cluster.view(o, s)?.state === 'alive'));
  await cluster.waitFor(everyoneAlive, 60_000);
  await cluster.settle(kv('n1').put('k', UTF8.encode('before'), 'text/plain'));

  await cluster.crash('n3');
  await cluster.restart('n3');
  t.deepEqual(
    cluster
      .membership('n3')
      .members()
      .map((m) => m.id),
    ['n3'],
    'the restarted node knows only itself until it joins',
  );
  const acknowledged = await cluster.settle(kv('n3').put('k', UTF8.encode('after-restart'), 'text/plain'));
  t.log(`acknowledged by ${acknowledged.servedBy.id} alone`);

  await cluster.join(['n3'], [cluster.spec('n1').address]);
  await cluster.waitFor(everyoneAlive, 60_000);
  await cluster.advance(60_000);
  for (const id of cluster.ids) {
    const { record } = await cluster.settle(kv(id).get('k'));
    t.is(record && TEXT.decode(record.value), 'after-restart', `${id} reads the acknowledged put`);
  }
});

/**
 * Seeds of `kvmesh sim kv` that show a lost acknowledged write (see
 * docs/reliability.md, findings 2 and 3), each replayed whole: known failures
 * until the KV service is fixed, then flip them to `test`.
 */
const LOST_WRITE_SEEDS: ReadonlyArray<readonly [string, number, string]> = [
  // A put stranded on a crashed coordinator whose clock runs ahead undoes a later acknowledged delete.
  ['ring-local', 154, 'a failed write stamped by a clock that runs ahead'],
  // A delete run by a new primary that does not hold the key yet answers "nothing to delete".
  ['velour-fog', 21, 'a delete on a primary that does not hold the key yet'],
];

for (const [name, seed, what] of LOST_WRITE_SEEDS) {
  test.failing(`${name} seed ${seed}: ${what} does not undo an acknowledged write`, async (t) => {
    const file = fileURLToPath(new URL(`../../../../configs/${name}.json`, import.meta.url));
    const lines: string[] = [];
    // A violation makes simKv throw (exit 2) after it wrote the run's record.
    await simKv({ config: [file], seeds: [seed], json: true }, (line) => lines.push(line)).catch(() => undefined);
    const record = JSON.parse(lines[0]!) as SimKvRecord;
    t.log(record.violations.map((v) => `(${v.check}) ${v.rule} on ${v.key}`).join('\n'));
    t.deepEqual(record.violations, []);
  });
}
