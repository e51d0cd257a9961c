import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { roleVariable } from '../src/cli/up-env.js';
import { roleCounts, splitUpArguments } from '../src/cli/up-command.js';
import { consecutiveHosts, planCluster } from '../src/cli/up-plan.js';
import type { UpPlanInput } from '../src/cli/up-plan.js';
import { upSettings } from '../src/settings.js';
import { KVMESH_BIN, runCli } from './helpers/cli.js';
import { freePort } from './helpers/cluster.js';
import { http, waitFor } from './helpers/http.js';

const SWIM_CONFIG = fileURLToPath(new URL('../../../../configs/swim-local.json', import.meta.url));
const HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
/** Three processes starting at once on two busy cores may take a while. */
const READY_TIMEOUT_MS = 60_000;
/**
 * How long `up` may take to stop its nodes after SIGTERM (a node drains, leaves and closes storage in
 * well under a second when idle) and how long nodes may outlive a SIGKILLed `up` (they check their
 * parent every second): generous bounds for a loaded machine; the figures are logged.
 */
const STOP_BOUND_MS = 30_000;
const ORPHAN_BOUND_MS = 30_000;

interface NodeLine {
  id: string;
  role: string;
  url: string;
  address: string;
  pid: number;
  dataDir: string;
  log: string;
  env: Record<string, string>;
  argv: string[];
}

interface ClusterJson {
  members: { id: string; address: string; state: string }[];
}

/** A running `kvmesh up`: its output so far and a way to wait for a line. */
interface UpProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | string>;
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout holds a line matching `pattern`. */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

/** The process exists and is not a zombie waiting for its new parent to reap it. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    // No /proc (or the process is gone): ask the kernel directly.
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Child pids of `pid` right now (the nodes, ready or not). */
function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * Spawns `kvmesh up ...args`. Teardown: SIGTERM to `up` and a wait for it, then SIGKILL for every
 * node it had, so nothing outlives the test even when an assertion failed half-way.
 */
function startUp(t: ExecutionContext, args: readonly string[], cwd?: string): UpProcess {
  const child = spawn(process.execPath, [KVMESH_BIN, 'up', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd !== undefined ? { cwd } : {}),
  });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    for (const w of waiters) w();
  });
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const known = new Set<number>();
  const remember = setInterval(() => {
    if (child.pid !== undefined) for (const pid of childPids(child.pid)) known.add(pid);
  }, 500);
  t.teardown(async () => {
    clearInterval(remember);
    if (child.pid !== undefined) for (const pid of childPids(child.pid)) known.add(pid);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, STOP_BOUND_MS))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    for (const pid of known) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  return {
    child,
    exited,
    stdout: () => out,
    stderr: () => err,
    line: (pattern, timeoutMs = READY_TIMEOUT_MS) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const found = out.split('\n').find((l) => pattern.test(l));
          if (found === undefined) return;
          finish();
          resolve(found);
        };
        const timer = setTimeout(() => {
          finish();
          reject(
            new Error(`no stdout line matching ${pattern} within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`),
          );
        }, timeoutMs);
        const onExit = (): void => {
          finish();
          reject(new Error(`kvmesh up exited before printing ${pattern}\nstdout:\n${out}\nstderr:\n${err}`));
        };
        const finish = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
          child.off('exit', onExit);
        };
        waiters.add(check);
        child.once('exit', onExit);
        check();
      }),
  };
}

/** The JSON lines `up --json` printed so far. */
function jsonLines(up: UpProcess): Record<string, unknown>[] {
  return up
    .stdout()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kvmesh-up-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Every node in `urls` lists exactly `ids`, all alive. */
async function allListAll(urls: readonly string[], ids: readonly string[]): Promise<boolean> {
  const views = await Promise.all(urls.map(async (u) => (await http(u, '/v1/cluster')).json<ClusterJson>().members));
  return views.every(
    (members) =>
      members.length === ids.length && ids.every((id) => members.some((m) => m.id === id && m.state === 'alive')),
  );
}

/** A static-membership cluster over http whose view comes from KVMESH_MEMBERS, lmdb storage, declared roles. */
async function staticConfig(dir: string): Promise<string> {
  const file = join(dir, 'static-up.json');
  await writeFile(
    file,
    JSON.stringify({
      node: { id: 'ignored', address: '127.0.0.2:7700' },
      transport: { name: 'http' },
      codec: { name: 'json' },
      membership: { name: 'static', options: { view: '${KVMESH_MEMBERS}' } },
      placement: { name: 'single' },
      storage: { name: 'lmdb' },
      log: { level: 'info' },
      up: { roles: [{ role: 'frontend', nodes: 1 }, { role: 'storage' }], clientRole: 'storage' },
    }),
  );
  return file;
}

async function untilGone(pids: readonly number[], timeoutMs: number): Promise<number> {
  const started = Date.now();
  await waitFor(`pids ${pids.join(', ')} to be gone`, () => pids.every((p) => !alive(p)), timeoutMs, 50);
  return Date.now() - started;
}

// Planning (no process).

const PLAN: UpPlanInput = {
  configFile: '/cfg/c.json',
  settings: upSettings({}),
  hostBase: '127.0.0.2',
  port: 7700,
  dataDir: '/data/up',
  defaultRole: 'storage',
};

test('layout ports plans every node on one host, on consecutive ports, as the dht-node seed runs them', (t) => {
  const settings = upSettings({ up: { layout: 'ports', seeds: 2 } });
  const plan = planCluster({ ...PLAN, settings, hostBase: '127.0.0.1', port: 8000, nodes: 3 });
  t.deepEqual(
    plan.nodes.map((n) => [n.id, n.address, n.seed]),
    [
      ['n1', '127.0.0.1:8000', true],
      ['n2', '127.0.0.1:8001', true],
      ['n3', '127.0.0.1:8002', false],
    ],
  );
  t.is(plan.nodes[2]!.env['KVMESH_NODES'], '127.0.0.1:8000,127.0.0.1:8001,127.0.0.1:8002');
  t.throws(() => planCluster({ ...PLAN, settings, port: 65_534, nodes: 3 }), { message: /run past port 65535/ });
  t.is(upSettings({}).layout, 'hosts', 'consecutive hosts unless the config says otherwise');
});

test('plans n1..nN on consecutive addresses, one port, every node joining through the first', (t) => {
  const plan = planCluster({ ...PLAN, nodes: 3 });
  t.deepEqual(
    plan.nodes.map((n) => [n.id, n.role, n.address, n.dataDir, n.logFile, n.seed]),
    [
      ['n1', 'storage', '127.0.0.2:7700', '/data/up/n1', '/data/up/n1/node.log', true],
      ['n2', 'storage', '127.0.0.3:7700', '/data/up/n2', '/data/up/n2/node.log', false],
      ['n3', 'storage', '127.0.0.4:7700', '/data/up/n3', '/data/up/n3/node.log', false],
    ],
  );
  t.deepEqual(plan.nodes[2]!.args, [
    'start',
    '--config',
    '/cfg/c.json',
    '--id',
    'n3',
    '--role',
    'storage',
    '--address',
    '127.0.0.4:7700',
    '--join',
    '127.0.0.2:7700',
    '--data-dir',
    '/data/up/n3',
  ]);
  t.deepEqual(plan.nodes[1]!.env, {
    KVMESH_NODE_COUNT: '3',
    KVMESH_NODES: '127.0.0.2:7700,127.0.0.3:7700,127.0.0.4:7700',
    KVMESH_MEMBERS: 'n1@127.0.0.2:7700,n2@127.0.0.3:7700,n3@127.0.0.4:7700',
    KVMESH_SEEDS: '127.0.0.2:7700',
    KVMESH_ROLE_STORAGE: '127.0.0.2:7700,127.0.0.3:7700,127.0.0.4:7700',
    KVMESH_NODE_INDEX: '2',
    KVMESH_NODE_ID: 'n2',
    KVMESH_NODE_ROLE: 'storage',
    KVMESH_NODE_ADDRESS: '127.0.0.3:7700',
  });
});

test('gives roles in the declared order, the uncounted role taking the rest, with one variable per role', (t) => {
  const settings = upSettings({
    up: { roles: [{ role: 'controller', nodes: 1 }, { role: 'front-end', nodes: 1 }, { role: 'storage' }], seeds: 2 },
  });
  const plan = planCluster({ ...PLAN, settings, nodes: 5 });
  t.deepEqual(
    plan.nodes.map((n) => n.role),
    ['controller', 'front-end', 'storage', 'storage', 'storage'],
  );
  t.deepEqual(plan.seeds, ['127.0.0.2:7700', '127.0.0.3:7700']);
  t.deepEqual(
    plan.nodes.map((n) => n.seed),
    [true, true, false, false, false],
  );
  const env = plan.nodes[4]!.env;
  t.is(env['KVMESH_ROLE_CONTROLLER'], '127.0.0.2:7700');
  t.is(env[roleVariable('front-end')], '127.0.0.3:7700');
  t.is(roleVariable('front-end'), 'KVMESH_ROLE_FRONT_END');
  t.is(env['KVMESH_ROLE_STORAGE'], '127.0.0.4:7700,127.0.0.5:7700,127.0.0.6:7700');
  // Without --nodes: up.nodes, else the counted sum, else 3 (at least one for the open role).
  t.is(planCluster({ ...PLAN, settings }).nodes.length, 3);
  const counted = upSettings({
    up: {
      roles: [
        { role: 'a', nodes: 2 },
        { role: 'b', nodes: 2 },
      ],
    },
  });
  t.is(planCluster({ ...PLAN, settings: counted }).nodes.length, 4);
  t.is(planCluster({ ...PLAN, settings: upSettings({ up: { nodes: 7 } }) }).nodes.length, 7);
});

test('rejects role counts that cannot fill the cluster, naming the JSON path', (t) => {
  const two = upSettings({ up: { roles: [{ role: 'a' }, { role: 'b' }] } });
  t.throws(() => planCluster({ ...PLAN, settings: two }), {
    message: /^\/cfg\/c\.json: \/up\/roles\/1: only one role may leave out/,
  });
  const counted = upSettings({ up: { roles: [{ role: 'a', nodes: 2 }] } });
  t.throws(() => planCluster({ ...PLAN, settings: counted, nodes: 3 }), { message: /add up to 2 nodes, not 3/ });
  const full = upSettings({ up: { roles: [{ role: 'a', nodes: 2 }, { role: 'b' }] } });
  t.throws(() => planCluster({ ...PLAN, settings: full, nodes: 2 }), { message: /leave none for role 'b'/ });
});

/** A controller, storage nodes taking the rest, two frontends; the last two declare their own flags. */
const LAYERED = upSettings({
  up: {
    nodes: 7,
    roles: [
      { role: 'controller', nodes: 1 },
      { role: 'storage', flag: 'storage' },
      { role: 'frontend', nodes: 2, flag: 'frontends' },
    ],
  },
});

function rolesOf(counts: Map<string, number>, nodes?: number): Record<string, number> {
  const plan = planCluster({ ...PLAN, settings: LAYERED, roleCounts: counts, ...(nodes ? { nodes } : {}) });
  const tally: Record<string, number> = {};
  for (const node of plan.nodes) tally[node.role] = (tally[node.role] ?? 0) + 1;
  return tally;
}

test('role counts replace the counts they name; the open role keeps what it had unless --nodes says', (t) => {
  t.deepEqual(rolesOf(new Map()), { controller: 1, storage: 4, frontend: 2 });
  t.deepEqual(rolesOf(new Map(), 9), { controller: 1, storage: 6, frontend: 2 });
  t.deepEqual(rolesOf(new Map([['frontend', 3]])), { controller: 1, storage: 4, frontend: 3 });
  t.deepEqual(rolesOf(new Map([['storage', 6]])), { controller: 1, storage: 6, frontend: 2 });
  t.deepEqual(rolesOf(new Map([['frontend', 1]]), 9), { controller: 1, storage: 7, frontend: 1 });
  t.deepEqual(
    rolesOf(
      new Map([
        ['storage', 2],
        ['frontend', 3],
      ]),
    ),
    { controller: 1, storage: 2, frontend: 3 },
  );
  t.throws(
    () =>
      rolesOf(
        new Map([
          ['storage', 2],
          ['frontend', 3],
        ]),
        9,
      ),
    {
      message: /add up to 6 nodes \(with the role counts given\), not 9/,
    },
  );
  t.throws(() => rolesOf(new Map([['frontend', 5]]), 6), { message: /6 nodes leave none for role 'storage'/ });
  t.throws(() => rolesOf(new Map([['gateway', 1]])), {
    message:
      /--role-count gateway=\.\.\.: \/up\/roles declares no role 'gateway' \(it declares 'controller', 'storage', 'frontend'\)/,
  });
});

test('the flags a config declares and --role-count become role counts; anything else is refused', (t) => {
  t.deepEqual(
    [...roleCounts(LAYERED, { roleFlags: new Map([['frontends', '3']]), roleCount: ['storage=5'] })],
    [
      ['frontend', 3],
      ['storage', 5],
    ],
  );
  t.throws(() => roleCounts(LAYERED, { roleFlags: new Map([['gateways', '1']]) }), {
    message: "unknown option '--gateways' (this config declares --storage, --frontends)",
  });
  t.throws(() => roleCounts(LAYERED, { roleFlags: new Map([['frontends', 'two']]) }), {
    message: "--frontends: expected a positive integer (found 'two')",
  });
  t.throws(() => roleCounts(LAYERED, { roleFlags: new Map([['frontends', '2']]), roleCount: ['frontend=3'] }), {
    message: "--role-count frontend=3: role 'frontend' is counted twice",
  });
  t.throws(() => roleCounts(LAYERED, { roleCount: ['frontend'] }), {
    message: '--role-count frontend: expected ROLE=N',
  });
  const clash = upSettings({ up: { roles: [{ role: 'storage', flag: 'nodes' }] } });
  t.throws(() => roleCounts(clash, {}), { message: "/up/roles/0/flag: '--nodes' is an option of kvmesh up already" });
});

test('up takes one config path and the long options commander does not know, in either spelling', (t) => {
  const split = splitUpArguments(['--frontends', '3', 'configs/x.json', '--storage=5']);
  t.is(split.config, 'configs/x.json');
  t.deepEqual(
    [...split.flags],
    [
      ['frontends', '3'],
      ['storage', '5'],
    ],
  );
  t.throws(() => splitUpArguments(['x.json', '--frontends']), { message: "option '--frontends' needs a value" });
  t.throws(() => splitUpArguments(['x.json', '-f', '2']), { message: "unknown option '-f'" });
  t.throws(() => splitUpArguments(['x.json', 'y.json']), { message: 'one config file, not 2: x.json y.json' });
  t.throws(() => splitUpArguments(['x.json', '--a', '1', '--a=2']), { message: "option '--a' is given twice" });
});

test('kvmesh up refuses a flag its config does not declare, and role counts that leave a role empty, before starting anything', async (t) => {
  const config = fileURLToPath(new URL('../../../../configs/velour-fog.json', import.meta.url));
  const unknown = await runCli(['up', config, '--gateways', '2']);
  t.is(unknown.code, 1);
  t.is(unknown.stderr, "kvmesh: unknown option '--gateways' (this config declares --storage, --frontends)\n");
  const empty = await runCli(['up', config, '--frontends', '5', '--nodes', '6']);
  t.is(empty.code, 1);
  t.regex(
    empty.stderr,
    /6 nodes leave none for role 'storage' \(the counted roles take 6, with the role counts given\)/,
  );
  t.is(empty.stdout, '');
});

test('counts addresses across octets and refuses what is not IPv4', (t) => {
  t.deepEqual(consecutiveHosts('127.0.0.254', 3), ['127.0.0.254', '127.0.0.255', '127.0.1.0']);
  t.throws(() => consecutiveHosts('localhost', 2), { message: /--host-base must be an IPv4 address/ });
  t.throws(() => consecutiveHosts('255.255.255.255', 2), { message: /run past/ });
});

// Real processes on 127.0.0.2-4.

test.serial(
  'up --json starts a SWIM cluster whose nodes list each other, and a killed node restarts by hand from its argv',
  async (t) => {
    const dir = await tempDir(t);
    const port = await freePort(HOSTS, true);
    t.log(`3 nodes on ${HOSTS[0]}..${HOSTS.at(-1)}, port ${port}`);
    const up = startUp(t, [
      SWIM_CONFIG,
      '--nodes',
      '3',
      '--port',
      String(port),
      '--data-dir',
      join(dir, 'up'),
      '--json',
      '--log-level',
      'debug',
    ]);
    await up.line(/"ready":true/);
    const lines = jsonLines(up);
    t.deepEqual(lines.at(-1), { ready: true }, 'the ready line comes last; stdout holds JSON lines only');
    const nodes = lines.slice(0, -1) as unknown as NodeLine[];
    t.deepEqual(nodes.map((n) => n.id).sort(), ['n1', 'n2', 'n3']);
    const addresses = HOSTS.map((h) => `${h}:${port}`);
    for (const node of nodes) {
      const i = Number(node.id.slice(1)) - 1;
      t.deepEqual(Object.keys(node).sort(), ['address', 'argv', 'dataDir', 'env', 'id', 'log', 'pid', 'role', 'url']);
      t.is(node.role, 'storage', 'without up.roles every node gets node.role');
      t.is(node.address, addresses[i]!);
      t.is(node.url, `http://${addresses[i]}`);
      t.is(node.dataDir, join(dir, 'up', node.id));
      t.is(node.log, join(dir, 'up', node.id, 'node.log'));
      t.true(alive(node.pid));
      t.is(node.env['KVMESH_NODES'], addresses.join(','));
      t.is(node.env['KVMESH_NODE_ID'], node.id);
      t.is(node.argv[0], 'env');
      t.true(node.argv.includes(`KVMESH_NODE_INDEX=${i + 1}`));
      t.false(
        node.argv.some((a) => a.startsWith('KVMESH_PARENT_PID=')),
        'a node started by hand has no parent to watch',
      );
      t.deepEqual(node.argv.slice(node.argv.indexOf('start')).slice(0, 3), ['start', '--config', SWIM_CONFIG]);
      t.true(node.argv.includes('--join') && node.argv[node.argv.indexOf('--join') + 1] === addresses[0]);
    }
    const urls = nodes.map((n) => n.url);
    const ids = ['n1', 'n2', 'n3'];
    await waitFor('every node to list n1, n2, n3 alive', () => allListAll(urls, ids), READY_TIMEOUT_MS);
    t.regex(up.stderr(), /starting n1 \(storage\) on 127\.0\.0\.2:\d+ \.\.\. ready in [\d.]+ s/);

    const n3 = nodes.find((n) => n.id === 'n3')!;
    process.kill(n3.pid, 'SIGKILL');
    await untilGone([n3.pid], ORPHAN_BOUND_MS);
    await waitFor('up to report n3 exited', () => /n3 exited with signal SIGKILL/.test(up.stderr()), 10_000);

    const [command, ...rest] = n3.argv;
    const restarted = spawn(command!, rest, { stdio: 'ignore' });
    t.teardown(() => {
      if (restarted.exitCode === null && restarted.signalCode === null) restarted.kill('SIGKILL');
    });
    await waitFor(
      'n3, restarted from its argv, to be ready',
      async () => (await http(n3.url, '/v1/ready')).status === 200,
      READY_TIMEOUT_MS,
    );
    await waitFor('every node to list n3 alive again', () => allListAll(urls, ids), READY_TIMEOUT_MS);
    t.pass();
  },
);

test.serial(
  'a static view from KVMESH_MEMBERS: roles as declared, SIGTERM stops every node, data is kept for the next run, and nodes stop if up is SIGKILLed',
  async (t) => {
    const dir = await tempDir(t);
    const config = await staticConfig(dir);
    const port = await freePort(HOSTS, true);
    const args = [config, '--port', String(port), '--data-dir', join(dir, 'up')];
    const up = startUp(t, args, dir);
    await up.line(/Ctrl-C stops every node/);
    const out = up.stdout();
    const rows = [...out.matchAll(/^ {2}(n\d+)\s+(\S+)\s+(http:\/\/\S+)\s+(\d+)\s+(\S+)$/gm)].map((m) => ({
      id: m[1]!,
      role: m[2]!,
      url: m[3]!,
      pid: Number(m[4]),
      log: m[5]!,
    }));
    t.deepEqual(
      rows.map((r) => [r.id, r.role, r.url]),
      HOSTS.map((h, i) => [`n${i + 1}`, i === 0 ? 'frontend' : 'storage', `http://${h}:${port}`]),
      out,
    );
    t.is(rows[0]!.log, join('up', 'n1', 'node.log'), 'paths inside the working directory are shown relative');
    const n2 = rows[1]!.url;
    t.true(out.includes(`curl -i -X PUT --data-binary 'hello' -H 'Content-Type: text/plain' ${n2}/v1/kv/greeting`));
    t.true(out.includes(`curl -s ${n2}/v1/cluster`), 'curl lines use the first node of up.clientRole');
    await waitFor('every node to list n1, n2, n3 alive', () =>
      allListAll(
        rows.map((r) => r.url),
        ['n1', 'n2', 'n3'],
      ),
    );
    const put = await http(n2, '/v1/kv/kept', { method: 'PUT', body: 'across runs' });
    t.true([200, 201].includes(put.status), `PUT answered ${put.status} ${put.body.toString()}`);

    const pids = rows.map((r) => r.pid);
    const stopStarted = Date.now();
    up.child.kill('SIGTERM');
    t.is(await up.exited, 0, up.stderr());
    const stopMs = Date.now() - stopStarted;
    t.log(`SIGTERM to up: exited after ${stopMs} ms (bound ${STOP_BOUND_MS} ms)`);
    t.true(stopMs < STOP_BOUND_MS);
    t.true(
      pids.every((p) => !alive(p)),
      'every node is gone once up has exited',
    );
    t.regex(up.stderr(), /every node stopped cleanly/);

    const again = startUp(t, args, dir);
    await again.line(/Ctrl-C stops every node/);
    const second = [...again.stdout().matchAll(/^ {2}(n\d+)\s+\S+\s+\S+\s+(\d+)/gm)].map((m) => Number(m[2]));
    t.is(second.length, 3);
    const kept = await http(n2, '/v1/kv/kept');
    t.is(kept.status, 200);
    t.is(kept.body.toString(), 'across runs');

    again.child.kill('SIGKILL');
    await again.exited;
    const orphanMs = await untilGone(second, ORPHAN_BOUND_MS);
    t.log(`up SIGKILLed: its nodes were gone after ${orphanMs} ms (bound ${ORPHAN_BOUND_MS} ms)`);
  },
);

test.serial('a node that cannot listen makes up exit non-zero naming it, and stops the others', async (t) => {
  const dir = await tempDir(t);
  const config = await staticConfig(dir);
  const port = await freePort(HOSTS, true);
  // Peers that reach the blocker are cut off at once, so nothing keeps it from closing.
  const blocker: Server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => blocker.listen(port, HOSTS[1]!, () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const up = startUp(t, [config, '--port', String(port), '--data-dir', join(dir, 'up'), '--json']);
  const code = await up.exited;
  t.is(code, 2, up.stderr());
  t.regex(up.stderr(), /kvmesh: n2 \(storage\) on 127\.0\.0\.3:\d+ exited with status 2 before it was ready/);
  t.regex(up.stderr(), /\| .*EADDRINUSE/, "the node's last log lines are shown");
  const lines = jsonLines(up);
  const failed = lines.at(-1)!;
  t.is(failed['ready'], false);
  t.is(failed['node'], 'n2');
  const started = lines.filter((l) => typeof l['pid'] === 'number').map((l) => l['pid'] as number);
  t.true(started.length >= 1, 'n1, the seed, was ready first');
  t.true(
    started.every((p) => !alive(p)),
    'the nodes that did start are stopped',
  );
});

test.serial('up stops when its parent dies while up is still loading', async (t) => {
  const dir = await tempDir(t);
  const config = await staticConfig(dir);
  const port = await freePort(HOSTS, true);
  const dataDir = join(dir, 'up-early');
  // The shell exits 300 ms after starting `up`: once the launcher read its parent, well before `up`
  // (most of a second of module loading and planning) starts watching it.
  const shell = upInShell('sleep 0.3', config, port, dataDir);
  let out = '';
  shell.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  let err = '';
  shell.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const upPid = (): number | undefined => {
    const first = out.split('\n')[0] ?? '';
    return /^\d+$/.test(first) ? Number(first) : undefined;
  };
  t.teardown(() => {
    for (const pid of [upPid(), ...processesUsing(dataDir)])
      if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
  });
  const started = Date.now();
  await waitFor('up to print its pid', () => upPid() !== undefined, 10_000, 20);
  const goneMs = await untilGone([upPid()!], ORPHAN_BOUND_MS);
  t.deepEqual(processesUsing(dataDir), [], `no node of this up outlives it\n${out}\n${err}`);
  t.log(
    `the parent exited 300 ms after starting up; up was gone after ${Date.now() - started} ms (${goneMs} ms after it printed its pid)`,
  );
});

/**
 * A shell that starts `kvmesh up --json` in the background, prints its pid
 * and then runs `then` (`wait`, or `sleep 0.3` to exit soon): the shell is
 * the parent `up` watches.
 */
function upInShell(then: string, config: string, port: number, dataDir: string): ChildProcess {
  return spawn(
    '/bin/sh',
    [
      '-c',
      `"$@" & echo "$!"; ${then}`,
      'sh',
      process.execPath,
      KVMESH_BIN,
      'up',
      config,
      '--port',
      String(port),
      '--data-dir',
      dataDir,
      '--json',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

/** Pids of the processes whose command line names `path` (the nodes of one `up`, by their data directory). */
function processesUsing(path: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'latin1').includes(path) && alive(Number(entry)))
        pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

test.serial('up stops its nodes and exits when its own parent dies', async (t) => {
  const dir = await tempDir(t);
  const config = await staticConfig(dir);
  const port = await freePort(HOSTS, true);
  // A shell that starts `up` in the background, prints its pid, and waits: SIGKILL to the shell orphans `up`.
  const shell = upInShell('wait', config, port, join(dir, 'up'));
  let out = '';
  shell.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  let err = '';
  shell.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const pids = (): number[] =>
    out
      .split('\n')
      .filter((l) => l !== '')
      .flatMap((l) => (/^\d+$/.test(l) ? [Number(l)] : [(JSON.parse(l) as { pid?: number }).pid ?? -1]))
      .filter((p) => p > 0);
  t.teardown(() => {
    for (const pid of pids()) if (alive(pid)) process.kill(pid, 'SIGKILL');
    if (shell.exitCode === null && shell.signalCode === null) shell.kill('SIGKILL');
  });
  await waitFor('every node to be ready', () => out.includes('"ready":true'), READY_TIMEOUT_MS);
  const [upPid, ...nodePids] = pids();
  t.is(nodePids.length, 3, `${out}\n${err}`);
  shell.kill('SIGKILL');
  const goneMs = await untilGone([upPid!, ...nodePids], ORPHAN_BOUND_MS);
  t.log(`parent SIGKILLed: up and its nodes were gone after ${goneMs} ms (bound ${ORPHAN_BOUND_MS} ms)`);
});
