import test, { type ExecutionContext } from 'ava';
import {
  CoordinatorKvService,
  SeededRandom,
  VirtualClock,
  compareVersions,
  createMessageRegistry,
  silentLogger,
} from '../../src/index.js';
import type { Admission, KeyTransfer, NodeInfo, Placement, ReplicaSet, StoredRecord } from '../../src/index.js';
import { LoneRpc, MapStorage, UTF8, member, settle, text } from './helpers.js';

/** A one-node placement whose admission a test sets, and that keeps the KeyTransfer it is given. */
class MovingPlacement implements Placement {
  readonly name = 'moving';
  readonly epoch = 1;
  /** What `admit` answers. */
  admission: Admission = { kind: 'own' };
  readonly answered: Admission['kind'][] = [];
  transfer: KeyTransfer | undefined;
  readonly #set: ReplicaSet = {
    replicas: [member('n1')],
    fallbacks: [],
    writeQuorum: 1,
    conditionalWriteQuorum: 1,
    readQuorum: 1,
    epoch: 1,
    hops: 0,
  };

  useKeyTransfer(transfer: KeyTransfer): void {
    this.transfer = transfer;
  }

  async locate(): Promise<ReplicaSet> {
    return this.#set;
  }

  admit(): Admission {
    this.answered.push(this.admission.kind);
    return this.admission;
  }

  plan(): [] {
    return [];
  }

  describe(): Record<string, unknown> {
    return { strategy: 'moving' };
  }
}

function node(t: ExecutionContext) {
  const clock = new VirtualClock();
  const storage = new MapStorage();
  const placement = new MovingPlacement();
  const info: NodeInfo = { id: 'n1', address: '127.0.0.1:4000', role: 'storage', dataDir: '/tmp', configDir: '/tmp' };
  const kv = new CoordinatorKvService({
    node: info,
    random: new SeededRandom(1),
    config: { limits: { maxKeyBytes: 64, maxValueBytes: 64 } },
    clock,
    storage,
    placement,
    rpc: new LoneRpc(),
    messages: createMessageRegistry(),
    logger: silentLogger,
  });
  kv.start();
  t.teardown(() => kv.stop());
  return { kv, clock, storage, placement, transfer: placement.transfer! };
}

test('the KV service hands its placement a KeyTransfer: read, store keeping the version, purge up to a version', async (t) => {
  const { kv, placement, transfer, clock } = node(t);
  t.truthy(placement.transfer, 'useKeyTransfer was called when the service was built');
  const put = await kv.put('k', UTF8.encode('mine'), 'text/plain');
  t.deepEqual((await transfer.read('k'))?.version, put.version);
  // A record copied from another node, stamped by a clock one second ahead.
  const copied: StoredRecord = {
    key: 'k',
    value: UTF8.encode('copied'),
    contentType: 'text/plain',
    version: { wallMs: clock.now() + 1_000, logical: 0, node: 'n2' },
    tombstone: false,
  };
  t.true(await transfer.store(copied));
  t.false(await transfer.store({ ...copied, value: UTF8.encode('older'), version: put.version }), 'put if newer');
  const got = (await kv.get('k')).record;
  t.is(text(got?.value), 'copied');
  t.deepEqual(got?.version, copied.version, 'the version travels unchanged');
  const next = await kv.put('k', UTF8.encode('after'), 'text/plain');
  t.true(compareVersions(next.version, copied.version) > 0, 'a later write is stamped above the copied version');
  t.false(await transfer.purge('k', copied.version), 'a newer record is kept');
  t.true(await transfer.purge('k', next.version));
  t.is(await transfer.read('k'), undefined);
});

test('a write located before placement froze its key waits for the lock, is refused there, and runs once the key is admitted again', async (t) => {
  const { kv, placement, transfer, clock } = node(t);
  await kv.put('k', UTF8.encode('before'), 'text/plain');
  const writing = kv.put('k', UTF8.encode('during'), 'text/plain');
  // The write has located the key but not taken the lock yet: the key freezes, and the snapshot
  // takes the lock first.
  placement.admission = { kind: 'frozen', retryAfterMs: 20 };
  const snapshot = await transfer.read('k');
  t.is(text(snapshot?.value), 'before', 'the snapshot was read before the write landed');
  await clock.advanceAsync(1);
  t.is(text((await transfer.read('k'))?.value), 'before', 'the frozen key took no write');
  placement.admission = { kind: 'own' };
  const result = await settle(clock, writing);
  t.truthy(result.version);
  t.is(text((await kv.get('k')).record?.value), 'during');
  t.true(placement.answered.includes('frozen'), 'the write asked placement under the lock');
  t.true(kv.stats.relocations >= 1);
});

test('a local read of a key handed over meanwhile is located again', async (t) => {
  const { kv, placement, clock } = node(t);
  await kv.put('k', UTF8.encode('v'), 'text/plain');
  placement.admission = { kind: 'not-owner', epoch: 1 };
  const reading = kv.get('k');
  await clock.advanceAsync(1);
  placement.admission = { kind: 'own' };
  const { record } = await settle(clock, reading);
  t.is(text(record?.value), 'v');
  t.true(kv.stats.relocations >= 1);
});
