import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import test from 'ava';
import { launchParent, launcherPid, recordLaunchParent } from '../src/cli/parent-watch.js';
import { KVMESH_BIN } from './helpers/cli.js';
import { tempDir, writeConfig } from './helpers/cluster.js';
import { waitFor } from './helpers/http.js';

test('a node watches the process that launched it only when kvmesh up, an npm script or npx did', (t) => {
  t.is(launcherPid({ KVMESH_PARENT_PID: '4242' }, 7), '4242');
  t.is(launcherPid({ npm_lifecycle_event: 'start' }, 7), 7, 'npm start');
  t.is(launcherPid({ npm_command: 'exec' }, 7), 7, 'npx');
  t.is(launcherPid({}, 7), undefined, 'a shell or a service manager: nohup and setsid keep working');
  t.is(launcherPid({ KVMESH_PARENT_PID: '', npm_lifecycle_event: '' }, 7), undefined);
});

test('the parent recorded at launch is the one watched, even once this process has another', (t) => {
  t.is(launchParent(), process.ppid, 'nothing recorded: the current parent');
  recordLaunchParent(0);
  t.is(launchParent(), process.ppid, 'not a pid: ignored');
  recordLaunchParent(4242);
  recordLaunchParent(4343);
  t.is(launchParent(), 4242, 'the first record counts');
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('killing the npm script that started a node stops the node, as a user who kills `npm start` expects', async (t) => {
  const dir = await tempDir(t, 'launcher');
  const config = await writeConfig(dir, 'node.json', {
    node: { id: 'launched', address: '127.0.0.1:0', dataDir: join(dir, 'data') },
    storage: { name: 'memory' },
    placement: { name: 'single' },
    transport: { name: 'http' },
    log: { level: 'info' },
  });
  // What `npm start` runs: a shell (`sh -c`) that does not pass SIGTERM on to the node it started.
  const shell = spawn('sh', ['-c', `"${process.execPath}" "${KVMESH_BIN}" start --config "${config}" ; :`], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, npm_lifecycle_event: 'start', KVMESH_PARENT_PID: '' },
  });
  const node: { pid?: number } = {};
  t.teardown(() => {
    if (node.pid !== undefined && alive(node.pid)) process.kill(node.pid, 'SIGKILL');
    if (shell.exitCode === null && shell.signalCode === null) shell.kill('SIGKILL');
  });
  const nodePid = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the node did not serve within 30 s')), 30_000);
    createInterface({ input: shell.stdout }).on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as { msg?: string; pid?: number };
        if (parsed.msg === 'node serving' && typeof parsed.pid === 'number') {
          clearTimeout(timer);
          node.pid = parsed.pid;
          resolve(parsed.pid);
        }
      } catch {
        // Not a log line.
      }
    });
  });
  t.not(nodePid, shell.pid, 'the shell did not exec the node: it is the parent, as under npm');
  const killedAt = Date.now();
  shell.kill('SIGTERM');
  await waitFor('the node to stop once its launcher is gone', () => !alive(nodePid), 20_000, 50);
  t.log(`node stopped ${Date.now() - killedAt} ms after its launching shell got SIGTERM (checked every 1 s)`);
  t.pass();
});
