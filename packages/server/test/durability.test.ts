import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startCli } from './helpers/cli.js';
import { http, waitFor } from './helpers/http.js';

const WRITERS = 16;
/** Acknowledged writes to collect before the process is killed (more are in flight then). */
const ACKNOWLEDGED_BEFORE_KILL = 400;

/** A value that differs per key in length and bytes, so a swapped or truncated value is caught. */
function valueFor(i: number): Buffer {
  const bytes = Buffer.alloc(1 + ((i * 37) % 300));
  for (let j = 0; j < bytes.length; j++) bytes[j] = (i * 31 + j * 7) & 0xff;
  return bytes;
}

test('every acknowledged write survives kill -9 of the node process and a restart on the same data dir', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kvmesh-durability-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'node.json');
  await writeFile(
    config,
    JSON.stringify({
      node: { id: 'durable', address: '127.0.0.4:0', dataDir: join(dir, 'data') },
      storage: { name: 'lmdb' },
      placement: { name: 'single' },
      transport: { name: 'http' },
      log: { level: 'info' },
    }),
  );

  const first = await startCli(t, ['--config', config]);
  const acknowledged = new Map<string, Buffer>();
  let next = 0;
  let killed = false;
  const writer = async (): Promise<void> => {
    while (!killed) {
      const i = next++;
      const key = `key-${i}`;
      const value = valueFor(i);
      try {
        const res = await http(first.url, `/v1/kv/${key}`, { method: 'PUT', body: value });
        if (res.status === 201) acknowledged.set(key, value);
      } catch {
        // The connection died with the process: this write was not acknowledged.
      }
    }
  };
  const writers = Array.from({ length: WRITERS }, writer);
  await waitFor('enough acknowledged writes', () => acknowledged.size >= ACKNOWLEDGED_BEFORE_KILL, 60_000);
  killed = true;
  first.child.kill('SIGKILL');
  t.is(await first.exited, 'SIGKILL');
  await Promise.all(writers);
  t.true(acknowledged.size >= ACKNOWLEDGED_BEFORE_KILL);

  const second = await startCli(t, ['--config', config]);
  await waitFor('the restarted node to be ready', async () => (await http(second.url, '/v1/ready')).status === 200);
  const missing: string[] = [];
  const wrong: string[] = [];
  for (const [key, value] of acknowledged) {
    const res = await http(second.url, `/v1/kv/${key}`);
    if (res.status !== 200) missing.push(key);
    else if (!res.body.equals(value)) wrong.push(key);
  }
  t.deepEqual(missing, [], `${missing.length} of ${acknowledged.size} acknowledged writes were lost`);
  t.deepEqual(wrong, [], 'values came back with other bytes');

  second.child.kill('SIGTERM');
  t.is(await second.exited, 0, 'SIGTERM drains, closes storage and exits 0');
});
