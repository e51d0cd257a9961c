import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { serverEditorSchema } from '../src/editor-schema.js';
import { runCli, startCli } from './helpers/cli.js';
import { http } from './helpers/http.js';
import { startTestServer } from './helpers/node.js';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kvmesh-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function writeConfig(dir: string, name: string, config: unknown): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

const GOOD = {
  node: { id: 'cli', address: '127.0.0.5:0' },
  storage: { name: 'memory' },
  placement: { name: 'single' },
  transport: { name: 'http' },
  log: { level: 'warn' },
};

test.serial('validate prints OK and exits 0 for a valid config', async (t) => {
  const file = await writeConfig(await tempDir(t), 'good.json', GOOD);
  const result = await runCli(['validate', file]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /^OK .*good\.json/);
});

test.serial('validate exits 1 and lists every problem with its JSON path', async (t) => {
  const file = await writeConfig(await tempDir(t), 'bad.json', {
    node: { id: 'cli', address: 'no-port-here' },
    storage: { name: 'lmbd' },
    placement: { name: 'single' },
    limits: { maxKeyBytes: 0 },
  });
  const result = await runCli(['validate', file]);
  t.is(result.code, 1);
  t.regex(result.stderr, /3 problems/);
  t.regex(result.stderr, /\/node\/address: /);
  t.regex(result.stderr, /\/storage\/name: unknown storage plugin 'lmbd'; available: .*lmdb/);
  t.regex(result.stderr, /\/limits\/maxKeyBytes: /);
  t.notRegex(result.stderr, /\n\s+at /, 'no stack trace');
});

test.serial('validate exits 1 when a component misses what it needs', async (t) => {
  const { placement: _placement, ...withoutPlacement } = GOOD;
  const file = await writeConfig(await tempDir(t), 'no-placement.json', withoutPlacement);
  const result = await runCli(['validate', file]);
  t.is(result.code, 1);
  t.regex(result.stderr, /KVMESH_ERR_KERNEL_DEPENDENCY: .*placement/);
});

test.serial('validate exits 1 for a missing file', async (t) => {
  const result = await runCli(['validate', join(await tempDir(t), 'nope.json')]);
  t.is(result.code, 1);
  t.regex(result.stderr, /KVMESH_ERR_CONFIG_READ: .*no such file/);
});

test.serial('put, get and del work against a running node and exit 0; absent keys exit 1', async (t) => {
  const server = await startTestServer(t);
  const node = ['--node', server.url];
  const put = await runCli(['put', 'dir/k1', 'hello world', '-t', 'text/plain', ...node]);
  t.is(put.code, 0, put.stderr);
  const written = JSON.parse(put.stdout) as { key: string; version: string };
  t.is(written.key, 'dir/k1');

  const get = await runCli(['get', 'dir/k1', ...node]);
  t.is(get.code, 0);
  t.is(get.stdout, 'hello world');
  t.is((await http(server.url, '/v1/kv/dir/k1')).headers['content-type'], 'text/plain');

  const stale = await runCli(['put', 'dir/k1', 'x', '--if-match', '0000000000ff-0000-other', ...node]);
  t.is(stale.code, 1);
  t.regex(stale.stderr, /HTTP 412 KVMESH_ERR_KV_PRECONDITION_FAILED/);
  const matched = await runCli(['put', 'dir/k1', 'y', '--if-match', written.version, ...node]);
  t.is(matched.code, 0, matched.stderr);

  const del = await runCli(['del', 'dir/k1', ...node]);
  t.is(del.code, 0);
  const again = await runCli(['del', 'dir/k1', ...node]);
  t.is(again.code, 1);
  t.regex(again.stderr, /HTTP 404 KVMESH_ERR_HTTP_KEY_NOT_FOUND/);
  t.is((await runCli(['get', 'dir/k1', ...node])).code, 1);
});

test.serial('put, get and del encode every key, dot segments and reserved characters included', async (t) => {
  const server = await startTestServer(t);
  const node = ['--node', server.url];
  for (const key of ['..', '.', 'a/../b', '?x#y', '%2F', 'ünï cödé']) {
    const put = await runCli(['put', key, `v ${key}`, ...node]);
    t.is(put.code, 0, `${key}: ${put.stderr}`);
    t.is((JSON.parse(put.stdout) as { key: string }).key, key);
    t.is((await runCli(['get', key, ...node])).stdout, `v ${key}`, key);
    t.is(
      (await http(server.url, `/v1/kv/${encodeURIComponent(key).replace(/\./g, '%2E')}`)).body.toString(),
      `v ${key}`,
    );
  }
  t.is((await runCli(['del', '..', ...node])).code, 0);
  t.is((await runCli(['get', '..', ...node])).code, 1);
  t.is((await runCli(['get', '.', ...node])).stdout, 'v .', 'deleting .. left . alone');
});

test.serial("put with VALUE '-' stores stdin byte for byte", async (t) => {
  const server = await startTestServer(t);
  const bytes = Buffer.from([0, 255, 10, 13, 1, 2, 3]);
  const put = await runCli(['put', 'binary', '-', '--node', server.url], { input: bytes });
  t.is(put.code, 0, put.stderr);
  t.deepEqual((await http(server.url, '/v1/kv/binary')).body, bytes);
});

test.serial('status prints the node, its members and placement', async (t) => {
  const server = await startTestServer(t);
  const result = await runCli(['status', '--node', server.url]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /^node\s+n1 at 127\.0\.0\.1:\d+ \(ready\)/);
  t.regex(result.stdout, /n1\s+http:\/\/127\.0\.0\.1:\d+\s+alive/);
  t.regex(result.stdout, /^placement\s+single, epoch 1$/m);
  t.notRegex(result.stdout, /"points"|"drawing"/, 'the drawing is left to --json');
  const json = await runCli(['status', '--json', '--node', server.url]);
  t.is(JSON.parse(json.stdout).self.id, 'n1');
});

test.serial('client commands exit 2 when the node is unreachable, 1 for a malformed --node', async (t) => {
  const port = await closedPort();
  const unreachable = await runCli(['get', 'k', '--node', `http://127.0.0.1:${port}`]);
  t.is(unreachable.code, 2);
  t.regex(unreachable.stderr, /cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
  t.is((await runCli(['get', 'k', '--node', 'not a url'])).code, 1);
});

test.serial('schema writes the editor schema of every built-in plugin and the server sections', async (t) => {
  const out = join(await tempDir(t), 'schema.json');
  const result = await runCli(['schema', '--out', out]);
  t.is(result.code, 0, result.stderr);
  t.deepEqual(JSON.parse(await readFile(out, 'utf8')), JSON.parse(JSON.stringify(serverEditorSchema())));
});

test.serial('plugins lists every family with names and descriptions', async (t) => {
  const result = await runCli(['plugins']);
  t.is(result.code, 0);
  for (const family of ['codec', 'transport', 'membership', 'placement', 'storage'])
    t.regex(result.stdout, new RegExp(`^${family}:`, 'm'));
  t.regex(result.stdout, /^ {2}lmdb\s+\S.+$/m);
  t.regex(result.stdout, /^ {2}single\s+\S.+$/m);
});

test.serial('--help works for the program and every command; usage errors exit 1', async (t) => {
  const help = await runCli(['--help']);
  t.is(help.code, 0);
  for (const command of ['start', 'validate', 'get', 'put', 'del', 'status', 'schema', 'plugins']) {
    t.regex(help.stdout, new RegExp(`\\b${command}\\b`));
    const sub = await runCli([command, '--help']);
    t.is(sub.code, 0, command);
    t.regex(sub.stdout, /^Usage: kvmesh /, command);
  }
  t.is((await runCli(['frobnicate'])).code, 1);
  t.is((await runCli(['start'])).code, 1, 'start without --config');
  t.is((await runCli(['start', '--config', 'x.json', '--address', 'nope'])).code, 1);
});

test.serial('start applies command-line flags over the file and exits 0 on SIGTERM', async (t) => {
  const dir = await tempDir(t);
  const file = await writeConfig(dir, 'node.json', { ...GOOD, storage: { name: 'lmdb' } });
  const node = await startCli(t, [
    '--config',
    file,
    '--log-level',
    'info',
    '--id',
    'flagged',
    '--address',
    '127.0.0.6:0',
    '--data-dir',
    join(dir, 'd'),
  ]);
  t.regex(node.url, /^http:\/\/127\.0\.0\.6:\d+$/);
  t.is((await http(node.url, '/v1/cluster')).json().self.id, 'flagged');
  t.is((await http(node.url, '/v1/kv/k', { method: 'PUT', body: 'v' })).status, 201);
  node.child.kill('SIGTERM');
  t.is(await node.exited, 0);
  t.truthy(await readFile(join(dir, 'd', 'lmdb', 'data.mdb')), 'the data dir comes from --data-dir');
});

test.serial('start exits 1 for an invalid config and 2 when its address is taken', async (t) => {
  const dir = await tempDir(t);
  const bad = await writeConfig(dir, 'bad.json', { ...GOOD, storage: { name: 'nope' } });
  const invalid = await runCli(['start', '--config', bad]);
  t.is(invalid.code, 1);
  t.regex(invalid.stderr, /unknown storage plugin 'nope'/);

  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.5', resolve));
  t.teardown(() => holder.close());
  const port = (holder.address() as { port: number }).port;
  const taken = await runCli([
    'start',
    '--config',
    await writeConfig(dir, 'good.json', GOOD),
    '--address',
    `127.0.0.5:${port}`,
  ]);
  t.is(taken.code, 2);
  t.regex(taken.stderr, /KVMESH_ERR_HTTP_LISTEN: cannot listen at 127\.0\.0\.5:\d+: EADDRINUSE/);
});

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
