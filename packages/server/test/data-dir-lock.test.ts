import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '@kvmesh/core';
import type { KvError } from '@kvmesh/core';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { DATA_DIR_LOCK_FILE, DataDirLock } from '@kvmesh/core';
import { KVMESH_BIN, startCli } from './helpers/cli.js';
import { http } from './helpers/http.js';

const SINGLE_CONFIG = fileURLToPath(new URL('../../../../configs/single.json', import.meta.url));
const HAS_PROC = existsSync('/proc/self/stat');

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kvmesh-lock-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function acquire(dir: string, id = 'n1', address = '127.0.0.1:7700'): Promise<DataDirLock> {
  return DataDirLock.acquire(dir, { id, address }, silentLogger);
}

/** The pid of a process that ran and exited. */
function deadPid(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', () => resolve(child.pid!));
  });
}

async function writeLock(dir: string, holder: Record<string, unknown>): Promise<void> {
  const line = { id: 'old', address: '127.0.0.1:1', host: 'h', since: 'then', token: 'feedfacefeedface', ...holder };
  await writeFile(join(dir, DATA_DIR_LOCK_FILE), `${JSON.stringify(line)}\n`);
}

test('a process that exits without releasing its locks frees every one of them', async (t) => {
  const dirs = await Promise.all(Array.from({ length: 12 }, () => tempDir(t)));
  // More locks than a process has listeners by default: one exit listener frees them all, with no warning.
  const script = `
    import { DataDirLock, silentLogger } from '@kvmesh/core';
    const dirs = JSON.parse(process.argv[1]);
    for (const dir of dirs) await DataDirLock.acquire(dir, { id: 'n1', address: '127.0.0.1:1' }, silentLogger);
    process.stdout.write('held\\n');
    process.exit(0);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(dirs)], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.is(code, 0, out);
  t.is(out, 'held\n', 'no warning about exit listeners');
  for (const dir of dirs) t.false(existsSync(join(dir, DATA_DIR_LOCK_FILE)), `${dir} is free`);
});

test('a second lock of one directory fails, naming the directory and the holder; release frees it', async (t) => {
  const dir = await tempDir(t);
  const first = await acquire(dir, 'single', '127.0.0.1:7700');
  t.teardown(() => first.release());
  const stored = JSON.parse(await readFile(join(dir, DATA_DIR_LOCK_FILE), 'utf8'));
  t.like(stored, { pid: process.pid, id: 'single', address: '127.0.0.1:7700' });

  const err = await t.throwsAsync<KvError>(acquire(dir, 'other', '127.0.0.1:7701'));
  t.is(err?.code, 'KVMESH_ERR_DATA_DIR_LOCKED');
  t.true(err!.message.includes(dir), err!.message);
  t.regex(err!.message, /node 'single' at 127\.0\.0\.1:7700, pid \d+/);
  t.true(err!.message.includes(`pid ${process.pid}`));

  await first.setAddress('127.0.0.1:7800');
  const moved = await t.throwsAsync<KvError>(acquire(dir));
  t.regex(moved!.message, /at 127\.0\.0\.1:7800/, 'a rewritten address is what others see');

  await first.release();
  t.false(existsSync(join(dir, DATA_DIR_LOCK_FILE)));
  const again = await acquire(dir);
  await again.release();
  t.deepEqual(await readdir(dir), [], 'no temporary files are left behind');
});

test('a lock whose process is gone is taken over', async (t) => {
  const dir = await tempDir(t);
  await writeLock(dir, { pid: await deadPid() });
  const lock = await acquire(dir);
  t.teardown(() => lock.release());
  t.is(lock.holder.pid, process.pid);
  t.is(JSON.parse(await readFile(join(dir, DATA_DIR_LOCK_FILE), 'utf8')).token, lock.holder.token);
});

test('a lock whose pid now runs another process (pid reused, or written before a reboot) is taken over', async (t) => {
  if (!HAS_PROC) {
    t.log('no /proc on this system: a reused pid cannot be told apart, only a dead one');
    t.pass();
    return;
  }
  const dir = await tempDir(t);
  // This very pid is alive, but it did not start at tick 1 after boot.
  await writeLock(dir, { pid: process.pid, processStart: '1' });
  const reused = await acquire(dir);
  await reused.release();
  await writeLock(dir, { pid: process.pid, bootId: '00000000-0000-0000-0000-000000000000' });
  const rebooted = await acquire(dir);
  await rebooted.release();
  t.pass();
});

test('an unreadable lock file is replaced; a live holder with a matching start time is not', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, DATA_DIR_LOCK_FILE), '{"pid":');
  const lock = await acquire(dir);
  await lock.release();
  // The parent of this test process outlives the test and is not a kvmesh node: its lock must hold.
  await writeLock(dir, { pid: process.ppid });
  await t.throwsAsync(acquire(dir), { code: 'KVMESH_ERR_DATA_DIR_LOCKED' });
});

test('of many nodes taking one directory at once, exactly one gets it, also when the old lock is stale', async (t) => {
  // Racing takeovers of a stale lock interleave differently each time: one round in 30 let two win before claims.
  const rounds = [false, ...Array.from({ length: 40 }, () => true)];
  for (const stale of rounds) {
    const dir = await tempDir(t);
    if (stale) await writeLock(dir, { pid: await deadPid() });
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => acquire(dir, `n${i}`)));
    const won = results.filter((r): r is PromiseFulfilledResult<DataDirLock> => r.status === 'fulfilled');
    t.is(won.length, 1, `stale: ${stale}`);
    for (const r of results) {
      if (r.status === 'rejected') t.is((r.reason as KvError).code, 'KVMESH_ERR_DATA_DIR_LOCKED');
    }
    const onDisk = JSON.parse(await readFile(join(dir, DATA_DIR_LOCK_FILE), 'utf8'));
    t.is(onDisk.token, won[0]!.value.holder.token, 'the file names the winner');
    await won[0]!.value.release();
    t.deepEqual(await readdir(dir), [], 'nothing is left behind');
  }
});

test('a node that died while taking over a stale lock does not block the next one', async (t) => {
  const dir = await tempDir(t);
  await writeLock(dir, { pid: await deadPid() });
  const stale = await readFile(join(dir, DATA_DIR_LOCK_FILE), 'utf8');
  const digest = createHash('sha256').update(stale).digest('hex').slice(0, 16);
  const claim = join(dir, `${DATA_DIR_LOCK_FILE}.claim-${digest}`);
  await writeFile(claim, `${JSON.stringify({ pid: await deadPid(), token: 'deadclaimant', id: 'gone' })}\n`);
  const lock = await acquire(dir);
  t.is(JSON.parse(await readFile(join(dir, DATA_DIR_LOCK_FILE), 'utf8')).token, lock.holder.token);
  await lock.release();
  t.deepEqual(await readdir(dir), [], 'the dead claim is gone too');
});

/** Runs `kvmesh start ...args` expecting it to exit on its own; killed after `timeoutMs` (a failure) or at teardown. */
function startExpectingExit(
  t: ExecutionContext,
  args: readonly string[],
  timeoutMs = 30_000,
): Promise<{ code: number | string; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, [KVMESH_BIN, 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? 'unknown', stdout, stderr });
    }),
  );
}

test('kvmesh start twice on one data directory: the second exits 2 naming it and the holder; after SIGKILL a restart serves', async (t) => {
  const dataDir = join(await tempDir(t), 'single');
  const common = ['--config', SINGLE_CONFIG, '--data-dir', dataDir];
  const first = await startCli(t, [...common, '--address', '127.0.0.51:0']);
  const firstAddress = new URL(first.url).host;
  t.is((await http(first.url, '/v1/kv/kept', { method: 'PUT', body: 'durable' })).status, 201);

  const second = await startExpectingExit(t, [...common, '--address', '127.0.0.52:0']);
  t.is(second.code, 2, second.stderr);
  t.regex(second.stderr, /KVMESH_ERR_DATA_DIR_LOCKED/);
  t.true(second.stderr.includes(dataDir), second.stderr);
  t.true(second.stderr.includes(`node 'single' at ${firstAddress}, pid ${first.child.pid}`), second.stderr);
  t.is((await http(first.url, '/v1/kv/kept')).body.toString(), 'durable', 'the holder kept serving');

  first.child.kill('SIGKILL');
  await first.exited;
  t.true(existsSync(join(dataDir, DATA_DIR_LOCK_FILE)), 'SIGKILL left the lock file behind');
  const restarted = await startCli(t, [...common, '--address', '127.0.0.52:0']);
  t.is((await http(restarted.url, '/v1/kv/kept')).body.toString(), 'durable', 'the restart took over the stale lock');

  restarted.child.kill('SIGTERM');
  t.is(await restarted.exited, 0);
  t.false(existsSync(join(dataDir, DATA_DIR_LOCK_FILE)), 'a clean stop frees the directory');
});
