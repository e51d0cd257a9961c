/** How often a watched parent is checked: a node outlives a SIGKILLed `kvmesh up` by about this long. */
export const PARENT_POLL_MS = 1_000;

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
