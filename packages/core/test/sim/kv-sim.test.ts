import test from 'ava';
import { PluginRegistry, definePlugin, formatFault, simulateKv } from '../../src/index.js';
import type {
  Admission,
  AnyPluginManifest,
  KvSimOptions,
  Member,
  Membership,
  Placement,
  ReplicaSet,
  StoredRecord,
} from '../../src/index.js';
import { MapStorage } from '../kv/helpers.js';
import { testCodec } from '../helpers/test-codec.js';
import { allToAllMembership } from './all-to-all-membership.js';

// The KV simulator on strategies that live in this test: every member holds every key.

/** Every key on every member, in id order, W = R = 2 (fewer when fewer members are known). */
function everyNodePlacement(): AnyPluginManifest {
  return definePlugin({
    family: 'placement',
    name: 'every-node',
    description: 'Every key on every member (tests only).',
    optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
    needs: ['membership'],
    create: () => (c: { membership: Membership }) => {
      const placement: Placement = {
        name: 'every-node',
        epoch: 1,
        async locate(): Promise<ReplicaSet> {
          const replicas: Member[] = [...c.membership.members()].sort((a, b) => a.id.localeCompare(b.id));
          const quorum = Math.min(2, replicas.length);
          return {
            replicas,
            fallbacks: [],
            epoch: 1,
            hops: 0,
            writeQuorum: quorum,
            conditionalWriteQuorum: quorum,
            readQuorum: quorum,
          };
        },
        admit: (): Admission => ({ kind: 'own' }),
        plan: () => [],
        describe: () => ({ strategy: 'every-node' }),
      };
      return placement;
    },
  });
}

/** MapStorage whose every `forgetEvery`-th put answers stored without storing: a disk that loses writes. */
class ForgetfulStorage extends MapStorage {
  #puts = 0;
  constructor(readonly forgetEvery: number) {
    super();
  }

  override async put(record: StoredRecord): Promise<boolean> {
    if (++this.#puts % this.forgetEvery === 0) return true;
    return super.put(record);
  }
}

function storagePlugin(name: string, make: () => MapStorage): AnyPluginManifest {
  return definePlugin({
    family: 'storage',
    name,
    description: `${name} storage (tests only).`,
    optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
    needs: [],
    create: () => () => make(),
  });
}

const registry = new PluginRegistry([
  testCodec(),
  allToAllMembership(),
  everyNodePlacement(),
  storagePlugin('map', () => new MapStorage()),
  storagePlugin('forgetful', () => new ForgetfulStorage(3)),
]);

const options = (extra: Partial<KvSimOptions> = {}): KvSimOptions => ({
  registry,
  config: {
    membership: { name: 'all-to-all', options: { periodMs: 100, failAfterMs: 500 } },
    placement: { name: 'every-node' },
    rpc: { timeoutMs: 500 },
  },
  storage: 'map',
  nodes: 3,
  seed: 5,
  ops: 80,
  clients: 3,
  keys: 3,
  counters: 1,
  ...extra,
});

test('a run without faults records every operation, acknowledges them and finds nothing wrong', async (t) => {
  const result = await simulateKv(options({ faults: [] }));
  t.log(`ops ${result.ops}, acked ${result.acked}, refused ${result.refused}, wall ${result.wallMs} ms`);
  t.true(result.ops >= 80, 'an increment records its read and its write');
  t.is(result.unknown, 0);
  t.is(result.acked + result.refused, result.ops);
  t.deepEqual(result.faults, []);
  t.true(result.converged);
  t.deepEqual(result.violations, []);
  t.is(result.history.finals.length, 4 * 3, 'every key (3 plain, 1 counter) from every node');
  t.is(result.history.replicas.length, 4);
  t.true(result.history.replicas.every((state) => state.replicas.length === 3));
  const counted = result.history.ops.filter((op) => op.increment === true && op.outcome === 'ok').length;
  const final = result.history.finals.find((read) => read.key === 'counter-0')!;
  t.is(Number(final.value ?? 0), counted, 'the counter ends at its acknowledged increments');
});

test('the same seed gives the same history and digest, another seed another', async (t) => {
  const faults = ['crash', 'partition', 'loss', 'skew'] as const;
  const [a, b, c] = [
    await simulateKv(options({ faults })),
    await simulateKv(options({ faults })),
    await simulateKv(options({ faults, seed: 6 })),
  ];
  t.log(a.faults.map(formatFault).join('\n'));
  t.is(a.digest, b.digest);
  t.deepEqual(a.history, b.history);
  t.deepEqual(a.faults, b.faults);
  t.not(a.digest, c.digest);
  t.regex(a.digest, /^[0-9a-f]{64}$/);
  t.is(a.faults[0]?.kind, 'skew', 'the skew of every clock is the first entry of the schedule');
});

test('faults are drawn only from the given kinds, one at a time, and heal before the final reads', async (t) => {
  const result = await simulateKv(options({ faults: ['crash', 'isolate'], ops: 150 }));
  t.true(result.faults.length > 0);
  t.true(result.faults.every((f) => f.kind === 'crash' || f.kind === 'isolate'));
  for (let i = 1; i < result.faults.length; i++) {
    const before = result.faults[i - 1]!;
    t.true(result.faults[i]!.atMs >= before.atMs + before.durationMs, 'one fault at a time');
  }
  t.true(
    result.history.finals.every((read) => read.value !== undefined),
    'every node answers after the heal',
  );
});

test('a storage that acknowledges writes it drops is caught, with the seed replaying the same violations', async (t) => {
  const run = () => simulateKv(options({ storage: 'forgetful', faults: [], ops: 120 }));
  const first = await run();
  t.true(first.violations.length > 0, 'a lost write is reported');
  t.true(
    first.violations.some((v) => v.check === 'b' || v.check === 'c'),
    first.violations.map((v) => v.rule).join(', '),
  );
  t.deepEqual((await run()).violations, first.violations);
});

test('an unknown storage plugin is refused before anything runs', async (t) => {
  await t.throwsAsync(simulateKv(options({ storage: 'nope' })), { code: 'KVMESH_ERR_PLUGIN_UNKNOWN' });
});
