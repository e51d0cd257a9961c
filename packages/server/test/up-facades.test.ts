import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { KVMESH_BIN } from './helpers/cli.js';
import { freePort } from './helpers/cluster.js';
import { http, waitFor } from './helpers/http.js';

/** This file's loopback host: one node of `kvmesh up`. */
const HOST = '127.0.0.90';
/** One process starting on two busy cores may take a while. */
const READY_TIMEOUT_MS = 60_000;
const STOP_BOUND_MS = 30_000;

interface Up {
  readonly port: number;
  readonly facadeUrl: string;
  readonly stdout: string;
}

/** `kvmesh up` of one node serving dht-node on a port of its own, until it reports ready; stopped when the test ends. */
async function upWithDhtNode(t: ExecutionContext, ...flags: string[]): Promise<Up> {
  const dir = await mkdtemp(join(tmpdir(), 'kvmesh-up-facades-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [port, facadePort] = [await freePort([HOST]), await freePort([HOST])];
  const file = join(dir, 'dht.json');
  await writeFile(
    file,
    JSON.stringify({
      node: { id: '${KVMESH_NODE_ID:-n1}', address: `\${KVMESH_NODE_ADDRESS:-${HOST}:${port}}` },
      up: { nodes: 1 },
      storage: { name: 'memory' },
      placement: { name: 'single' },
      facades: [{ name: 'dht-node', options: { port: facadePort } }],
    }),
  );
  const args = ['up', file, '--port', String(port), '--host-base', HOST, '-d', join(dir, 'data'), ...flags];
  const child = spawn(process.execPath, [KVMESH_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, STOP_BOUND_MS))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const ready = flags.includes('--json') ? '{"ready":true}' : 'Ctrl-C stops every node';
  await waitFor('kvmesh up to report the cluster ready', () => out.includes(ready), READY_TIMEOUT_MS).catch(
    (e: unknown) => {
      t.log(err);
      throw e;
    },
  );
  return { port, facadeUrl: `http://${HOST}:${facadePort}`, stdout: out };
}

const examples = (url: string): string[] => [
  `curl -i -X POST ${url}/d/greeting -d 'hello'`,
  `curl -i ${url}/d/greeting`,
  `curl -i -X DELETE ${url}/d/greeting`,
];

test('kvmesh up prints the curl lines of every facade the client node serves, and they work', async (t) => {
  const { port, facadeUrl, stdout } = await upWithDhtNode(t);
  const lines = stdout.split('\n');
  const header = lines.indexOf(`dht-node facade (n1, ${facadeUrl}):`);
  t.true(header > 0, stdout);
  t.deepEqual(
    lines.slice(header + 1, header + 4),
    examples(facadeUrl).map((l) => `  ${l}`),
  );
  // What the first two lines do, as curl sends them.
  const post = await http(facadeUrl, '/d/greeting', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'hello',
  });
  t.is(post.status, 201);
  t.is((await http(facadeUrl, '/d/greeting')).body.toString(), 'hello');
  t.is((await http(`http://${HOST}:${port}`, '/v1/kv/greeting')).body.toString(), 'hello');
});

test('kvmesh up --json lists the facades of each node', async (t) => {
  const { port, facadeUrl, stdout } = await upWithDhtNode(t, '--json');
  const [node] = stdout
    .split('\n')
    .filter((l) => l.startsWith('{"id"'))
    .map((l) => JSON.parse(l) as { url: string; facades?: unknown });
  t.is(node?.url, `http://${HOST}:${port}`);
  t.deepEqual(node?.facades, [{ name: 'dht-node', url: facadeUrl, examples: examples(facadeUrl) }]);
});
