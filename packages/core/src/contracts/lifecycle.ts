/**
 * Optional lifecycle hooks of any component built by the kernel.
 *
 * The kernel calls `start()` once, after every component this one needs has
 * started, and `stop()` once, in reverse start order, before any component it
 * needs stops. Neither is called concurrently with itself. `stop()` must
 * release every timer, socket and file handle; it may be called after a
 * failed or partial `start()`.
 */
export interface Lifecycle {
  start?(): void | Promise<void>;
  stop?(): void | Promise<void>;
}
