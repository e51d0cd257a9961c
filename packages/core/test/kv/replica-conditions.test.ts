import test from 'ava';
import { formatVersion } from '../../src/index.js';
import type { KvError, LogFields, Logger, Rpc, StoredRecord } from '../../src/index.js';
import { UTF8, kvCluster, member, settle, text, until } from './helpers.js';

// What holds when nodes disagree about a key's primary, or a replica outside a
// read quorum holds what the others lack.

test('two nodes that each take themselves for the primary cannot both win one compare-and-set', async (t) => {
  const { clock, byId, nodes } = await kvCluster(t);
  const v0 = await settle(clock, byId('a').kv.put('k', UTF8.encode('v0'), 'text/plain'));
  // b believes a is not the first replica (a view that has not spread yet): two deciders for one key.
  byId('b').placement.set = { replicas: ['b', 'a', 'c'].map((id) => member(id)), writeQuorum: 2, readQuorum: 2 };
  const ifMatch = formatVersion(v0.version);
  for (let round = 0; round < 5; round++) {
    const current = (await settle(clock, byId('c').kv.get('k'))).record!;
    const expected = formatVersion(current.version);
    const results = await settle(
      clock,
      Promise.allSettled(
        ['a', 'b'].map((id) => byId(id).kv.put('k', UTF8.encode(`${id}${round}`), 'text/plain', { ifMatch: expected })),
      ),
    );
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [['a', 'b'][i]!] : []));
    t.log(
      `round ${round}: ${results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as KvError).code)).join(', ')}`,
    );
    t.true(won.length <= 1, `round ${round}: at most one of the two conditional writes is acknowledged`);
    for (const r of results) {
      if (r.status === 'rejected') {
        t.true(
          ['KVMESH_ERR_KV_PRECONDITION_FAILED', 'KVMESH_ERR_KV_QUORUM'].includes((r.reason as KvError).code),
          (r.reason as Error).message,
        );
      }
    }
    if (won.length === 1) {
      // The acknowledged value is what every node reads once the replicas agree.
      const value = `${won[0]}${round}`;
      await until(clock, () => nodes.every((n) => text(n.storage.records.get('k')?.value) === value), 30_000).catch(
        () => undefined,
      );
      const read = (await settle(clock, byId('c').kv.get('k'))).record;
      t.is(text(read?.value), value, `round ${round}: the winner's value is read`);
    }
  }
  t.not(ifMatch, '');
});

test('a replica stores a conditional write only when what it holds is what the primary saw', async (t) => {
  const { clock, byId } = await kvCluster(t);
  const rpc = byId('a').node.get<Rpc>('rpc');
  const v0 = await settle(clock, byId('a').kv.put('k', UTF8.encode('v0'), 'text/plain'));
  const record = (value: string, logical: number): StoredRecord => ({
    key: 'k',
    value: UTF8.encode(value),
    contentType: 'text/plain',
    version: { wallMs: clock.now() + 1, logical, node: 'a' },
    tombstone: false,
  });
  const expect = { absent: false, atMost: v0.version };
  const x = record('x', 0);
  const first = await settle(clock, rpc.request('sim://b', 'kvmesh.kv.Put', { record: x, expect }));
  t.like(first.payload, { written: true, conflict: false });
  // A second write made from the same version, stamped lower or higher: b holds a newer record now.
  for (const logical of [0, 5]) {
    const second = await settle(
      clock,
      rpc.request('sim://b', 'kvmesh.kv.Put', { record: record(`y${logical}`, logical + 1), expect }),
    );
    t.like(second.payload, { written: false, conflict: true });
  }
  t.is(text(byId('b').storage.records.get('k')?.value), 'x');
  // The same record again is stored already: no conflict.
  const again = await settle(clock, rpc.request('sim://b', 'kvmesh.kv.Put', { record: x, expect }));
  t.like(again.payload, { conflict: false });
  // A create expects no live record: refused over a live one.
  const create = await settle(
    clock,
    rpc.request('sim://b', 'kvmesh.kv.Put', {
      record: { ...record('z', 9), key: 'k' },
      expect: { absent: true, atMost: null },
    }),
  );
  t.like(create.payload, { written: false, conflict: true });
  // An expectation of a version that names none is malformed.
  await t.throwsAsync(
    settle(
      clock,
      rpc.request('sim://b', 'kvmesh.kv.Put', { record: record('w', 10), expect: { absent: false, atMost: null } }),
    ),
    { code: 'KVMESH_ERR_MESSAGE_INVALID' },
  );
});

test('a conditional write taken back puts back the record it replaced, and only if it is still there', async (t) => {
  const { clock, byId } = await kvCluster(t);
  const rpc = byId('a').node.get<Rpc>('rpc');
  const v0 = await settle(clock, byId('a').kv.put('k', UTF8.encode('v0'), 'text/plain'));
  const lost: StoredRecord = {
    key: 'k',
    value: UTF8.encode('lost'),
    contentType: 'text/plain',
    version: { wallMs: clock.now() + 1, logical: 0, node: 'a' },
    tombstone: false,
  };
  const expect = { absent: false, atMost: v0.version };
  await settle(clock, rpc.request('sim://b', 'kvmesh.kv.Put', { record: lost, expect }));
  t.is(text(byId('b').storage.records.get('k')?.value), 'lost');
  const back = await settle(clock, rpc.request('sim://b', 'kvmesh.kv.Retract', { key: 'k', version: lost.version }));
  t.deepEqual(back.payload, { removed: true });
  t.deepEqual(byId('b').storage.records.get('k')?.version, v0.version, 'the replaced record is back, not nothing');
  const again = await settle(clock, rpc.request('sim://b', 'kvmesh.kv.Retract', { key: 'k', version: lost.version }));
  t.deepEqual(again.payload, { removed: false }, 'a version the replica no longer holds is left alone');
  t.deepEqual(byId('b').storage.records.get('k')?.version, v0.version);
  // A plain write is never taken back: the replica does not know what it replaced.
  const plain = { ...lost, version: { ...lost.version, wallMs: lost.version.wallMs + 5 } };
  await settle(clock, rpc.request('sim://b', 'kvmesh.kv.Put', { record: plain }));
  const kept = await settle(clock, rpc.request('sim://b', 'kvmesh.kv.Retract', { key: 'k', version: plain.version }));
  t.deepEqual(kept.payload, { removed: false });
});

test('a delete that reads no live record still deletes the value a replica outside its read quorum holds', async (t) => {
  const { clock, byId, nodes } = await kvCluster(t, { readQuorum: 1 });
  // Only c holds the key (a write that failed after reaching it, or a move not yet complete).
  const onlyOnC: StoredRecord = {
    key: 'k',
    value: UTF8.encode('stray'),
    contentType: 'text/plain',
    version: { wallMs: clock.now() - 1000, logical: 0, node: 'c' },
    tombstone: false,
  };
  byId('c').storage.records.set('k', onlyOnC);
  const deleted = await settle(clock, byId('a').kv.delete('k'));
  t.false(deleted.existed, 'a, the primary, read no live record');
  await until(clock, () => nodes.every((n) => n.storage.records.get('k')?.tombstone === true));
  for (const n of nodes) {
    const read = await settle(clock, n.kv.get('k'));
    t.is(read.record, undefined, `${n.id} reads the key as absent`);
  }
});

test('a node held while it joins refuses client operations but still serves as a replica', async (t) => {
  const { clock, byId } = await kvCluster(t);
  byId('b').kv.holdClients('joining its cluster');
  for (const call of [
    (): Promise<unknown> => byId('b').kv.put('k', UTF8.encode('v'), 'text/plain'),
    () => byId('b').kv.get('k'),
    () => byId('b').kv.delete('k'),
  ]) {
    const err = await t.throwsAsync<KvError>(settle(clock, call()));
    t.is(err?.code, 'KVMESH_ERR_KV_NOT_JOINED');
    t.regex(err!.message, /joining its cluster/);
  }
  t.false(byId('b').storage.records.has('k'), 'nothing was written');
  await settle(clock, byId('a').kv.put('k', UTF8.encode('through a'), 'text/plain'));
  t.is(text(byId('b').storage.records.get('k')?.value), 'through a', 'b stored the write as a replica');
  byId('b').kv.holdClients(undefined);
  t.is(text((await settle(clock, byId('b').kv.get('k'))).record?.value), 'through a');
});

test('a primary held while it joins runs no forwarded write: the next replica runs a plain one, a conditional one waits', async (t) => {
  // b is the primary of every key; held, it knows only itself in a real cluster and would decide alone.
  const { clock, byId, nodes } = await kvCluster(t, { replicaIds: ['b', 'a', 'c'] });
  byId('b').kv.holdClients('joining its cluster');
  const plain = await settle(clock, byId('c').kv.put('k', UTF8.encode('plain'), 'text/plain'));
  t.is(plain.servedBy.id, 'a', 'a, the next replica, ran the write c forwarded');
  t.is(text(byId('b').storage.records.get('k')?.value), 'plain', 'b still stored it as a replica');
  const conditional = await t.throwsAsync<KvError>(
    settle(clock, byId('c').kv.put('n', UTF8.encode('new'), 'text/plain', { ifNoneMatch: '*' })),
  );
  t.is(conditional?.code, 'KVMESH_ERR_KV_NOT_JOINED');
  t.regex(conditional!.message, /primary b is joining its cluster.*nothing was applied/);
  t.true(
    nodes.every((n) => !n.storage.records.has('n')),
    'the conditional write was stored nowhere',
  );
  byId('b').kv.holdClients(undefined);
  const after = await settle(clock, byId('c').kv.put('n', UTF8.encode('new'), 'text/plain', { ifNoneMatch: '*' }));
  t.is(after.servedBy.id, 'b', 'once it has joined, b runs its keys again');
});

test('a write forwarded to its primary takes its request id there, for the log lines of both nodes', async (t) => {
  const lines: { node: string; fields: LogFields; message: string | undefined }[] = [];
  const capture = (node: string, bindings: LogFields = {}): Logger => {
    const write = (fields: LogFields, message?: string): void =>
      void lines.push({ node, fields: { ...bindings, ...fields }, message });
    return {
      debug: write,
      info: write,
      warn: write,
      error: write,
      child: (more) => capture(node, { ...bindings, ...more }),
    };
  };
  const { clock, byId } = await kvCluster(t, { logger: (id) => capture(id) });
  // a is the first replica: a write through b is forwarded to it.
  const put = await settle(
    clock,
    byId('b').kv.put('k', UTF8.encode('v'), 'text/plain', undefined, { requestId: 'req-42' }),
  );
  t.is(put.servedBy.id, 'a');
  const atPrimary = lines.filter(
    (l) => l.node === 'a' && l.message === 'running a write forwarded here as its primary',
  );
  t.deepEqual(
    atPrimary.map((l) => l.fields['requestId']),
    ['req-42'],
  );
  // Without a client id, the coordinator names the request itself.
  await settle(clock, byId('c').kv.delete('k'));
  const named = lines.filter((l) => l.node === 'a' && l.message === 'running a write forwarded here as its primary');
  t.is(named.length, 2);
  t.regex(String(named[1]!.fields['requestId']), /^c-[0-9a-z]+$/);
});

test('two primaries whose replica sets differ by one node cannot both win one compare-and-set when it needs every replica', async (t) => {
  const { clock, byId } = await kvCluster(t, { ids: ['a', 'b', 'c', 'd'] });
  // A routed placement's views for a moment: b's successor list lost a, so b takes itself for the
  // primary and names the next node, d, instead. The sets share b and c: a quorum of 2 each need not meet.
  const sets = { a: ['a', 'b', 'c'], b: ['b', 'c', 'd'] } as const;
  for (const id of ['a', 'b', 'c', 'd']) {
    const replicas = (id === 'b' || id === 'd' ? sets.b : sets.a).map((r) => member(r));
    byId(id).placement.set = { replicas, writeQuorum: 2, conditionalWriteQuorum: 3, readQuorum: 2 };
  }
  await settle(clock, byId('a').kv.put('k', UTF8.encode('v0'), 'text/plain'));
  let acknowledged = 0;
  for (let round = 0; round < 8; round++) {
    const current = (await settle(clock, byId('c').kv.get('k'))).record!;
    const ifMatch = formatVersion(current.version);
    // Alone, a compare-and-set through either primary is acknowledged: every replica is up.
    const alone = round % 2 === 0 ? 'a' : 'b';
    const solo = await settle(
      clock,
      byId(alone).kv.put('k', UTF8.encode(`${alone}${round}`), 'text/plain', { ifMatch }),
    );
    acknowledged++;
    const results = await settle(
      clock,
      Promise.allSettled(
        ['a', 'b'].map((id) =>
          byId(id).kv.put('k', UTF8.encode(`${id}${round}+`), 'text/plain', { ifMatch: formatVersion(solo.version) }),
        ),
      ),
    );
    const won = results.filter((r) => r.status === 'fulfilled').length;
    t.log(
      `round ${round}: ${results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as KvError).code)).join(', ')}`,
    );
    t.true(won <= 1, `round ${round}: at most one of the two conditional writes is acknowledged`);
    acknowledged += won;
  }
  t.true(acknowledged >= 8);
});
