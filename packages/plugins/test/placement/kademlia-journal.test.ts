import { mkdtempSync, readFileSync, rmSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { contactOf } from '../../src/placement/kademlia/index.js';
import { FileJournal } from '../../src/placement/kademlia/ownership-journal.js';

function journalFile(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvmesh-journal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'kademlia-ownership-n1.jsonl');
}

test('the ownership journal restores owned keys, released keys and take-overs begun, and compacts on load', async (t) => {
  const file = journalFile(t);
  const first = new FileJournal(file, 100);
  t.deepEqual((await first.load()).owned.size, 0);
  await first.owned('a', 1);
  await first.owned('b', 3);
  await first.released('b', contactOf('n2', 'udp://127.0.0.3:7700'), 'tok-b');
  await first.pending({
    key: 'c',
    ownerId: 'n3',
    ownerAddress: 'udp://127.0.0.4:7700',
    token: 'tok-c',
    version: 5,
    recordVersion: { wallMs: 1_700_000_000_000, logical: 2, node: 'n3' },
  });
  await first.pending({
    key: 'd',
    ownerId: 'n3',
    ownerAddress: 'x',
    token: 'tok-d',
    version: 2,
    recordVersion: undefined,
  });
  await first.abandoned('d');
  await first.close();
  // A line cut short by a crash is ignored.
  appendFileSync(file, '{"o":"half');
  const second = new FileJournal(file, 100);
  const restored = await second.load();
  t.deepEqual([...restored.owned], [['a', 1]]);
  t.deepEqual(restored.released, [{ key: 'b', toId: 'n2', toAddress: 'udp://127.0.0.3:7700', token: 'tok-b' }]);
  t.is(restored.pending.length, 1);
  t.like(restored.pending[0], { key: 'c', token: 'tok-c', version: 5, recordVersion: { logical: 2, node: 'n3' } });
  await second.owned('c', 5);
  await second.close();
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  t.is(lines.length, 4, 'compacted to what it said, then one change appended');
  const third = await new FileJournal(file, 100).load();
  t.deepEqual([...third.owned].sort(), [
    ['a', 1],
    ['c', 5],
  ]);
  t.is(third.pending.length, 0);
});
