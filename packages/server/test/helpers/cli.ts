import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The committed launcher, as `npx kvmesh` runs it. */
export const KVMESH_BIN = fileURLToPath(new URL('../../../bin/kvmesh.js', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `kvmesh ...args` to completion. */
export function runCli(
  args: readonly string[],
  options: { input?: string | Buffer; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [KVMESH_BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, KVMESH_NODE: '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input);
  });
}

/**
 * Where a helper registers what must run when its caller ends: an ava
 * ExecutionContext in a test, or a script's own list (bench/fault-run.ts).
 */
export interface Teardowns {
  teardown(fn: () => Promise<void> | void): void;
}

export interface StartedNode {
  readonly child: ChildProcess;
  /** The API base URL the node logged when it started serving. */
  readonly url: string;
  /** Resolves with the exit code (or the signal name) once the process ended. */
  readonly exited: Promise<number | string>;
}

/**
 * Spawns `kvmesh start ...args` and resolves once the node logged that it
 * serves. The process is killed (SIGKILL) when the test ends, pass or fail.
 */
export function startCli(t: Teardowns, args: readonly string[], timeoutMs = 30_000): Promise<StartedNode> {
  const child = spawn(process.execPath, [KVMESH_BIN, 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`kvmesh start did not serve within ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    );
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    let serving = false;
    child.stdout.on('data', (c: Buffer) => {
      // Keep draining after the node serves, so a full pipe never blocks its logging.
      if (serving) return;
      output += c.toString();
      for (const line of output.split('\n')) {
        try {
          const parsed = JSON.parse(line) as { msg?: string; api?: string };
          if (parsed.msg === 'node serving' && parsed.api !== undefined) {
            serving = true;
            clearTimeout(timer);
            resolve({ child, url: parsed.api, exited });
            return;
          }
        } catch {
          // A partial or non-JSON line.
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`kvmesh start exited (${code}) before serving:\n${output}`));
    });
  });
}
