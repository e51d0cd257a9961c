/** How often a watched parent is checked: a node outlives a SIGKILLed `kvmesh up` by about this long. */
export const PARENT_POLL_MS = 1_000;

/** The parent pid `bin/kvmesh.js` read before the CLI's modules loaded. */
let parentAtLaunch: number | undefined;

/**
 * Records this process's parent as the launcher read it, before the CLI's
 * modules load: loading takes most of a second, and a parent that dies in
 * that time has already been replaced by init (or a subreaper) when the CLI
 * starts watching, so reading `process.ppid` then would watch the wrong process.
 * Only the first call counts.
 */
export function recordLaunchParent(pid: number): void {
  if (parentAtLaunch === undefined && Number.isInteger(pid) && pid > 0) parentAtLaunch = pid;
}

/** The parent this process was started by: as recorded at launch, else the current one. */
export function launchParent(): number {
  return parentAtLaunch ?? process.ppid;
}

/**
 * Calls `onGone` once when this process's parent is no longer `parentPid`.
 * A process whose parent dies is adopted by init (or a subreaper), so its
 * `ppid` changes: unlike probing the pid, this cannot be fooled by a new
 * process that reuses the number. The timer does not keep the process alive.
 *
 * `parentPid` may be text from the environment: anything but a positive
 * integer (unset, empty) watches nothing. Returns a function that stops watching.
 */
export function watchParent(
  parentPid: number | string | undefined,
  onGone: () => void,
  intervalMs = PARENT_POLL_MS,
): () => void {
  const pid = typeof parentPid === 'number' ? parentPid : Number(parentPid ?? '');
  if (!Number.isInteger(pid) || pid <= 1) return () => {};
  let fired = false;
  const check = (): void => {
    if (fired || process.ppid === pid) return;
    fired = true;
    clearInterval(timer);
    onGone();
  };
  const timer = setInterval(check, intervalMs);
  timer.unref();
  // The parent may already be gone by the time this process got here.
  check();
  return () => clearInterval(timer);
}

/**
 * The process a `kvmesh start` belongs to, whose end must stop it too:
 * `KVMESH_PARENT_PID` when `kvmesh up` started it, else the parent process
 * when an npm script (`npm start`) or `npx` started it. npm passes a signal
 * on to the shell running the script, and the shell exits without passing
 * it to the node, which would keep serving and holding its port. A node
 * started from a shell or a service manager watches nothing: it outlives
 * the terminal that started it when told to (`nohup`, `setsid`).
 */
export function launcherPid(
  env: Readonly<Record<string, string | undefined>>,
  ppid: number,
): number | string | undefined {
  const given = env['KVMESH_PARENT_PID'];
  if (given !== undefined && given !== '') return given;
  const byNpm = (env['npm_lifecycle_event'] ?? '') !== '' || (env['npm_command'] ?? '') !== '';
  return byNpm ? ppid : undefined;
}
