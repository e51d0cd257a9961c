/** A cancellable timer returned by Clock.setTimeout / setInterval. */
export interface Timer {
  /** Cancels the timer. Idempotent; safe to call after it fired. */
  cancel(): void;
}

/**
 * Time for every plugin. Production uses the system clock; tests and the
 * simulator use a virtual clock that only moves when the harness advances it,
 * so a plugin must never read `Date.now()` or call the global `setTimeout`.
 *
 * All methods are synchronous and safe to call from any callback. Callbacks
 * run on the event loop (system clock) or inside `advance()` (virtual clock);
 * a callback that throws is reported to the logger and does not stop the clock.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch (virtual clocks start at a fixed epoch). Never decreases. */
  now(): number;
  /** Runs `fn` once after `ms` milliseconds (0 = as soon as possible, never synchronously). */
  setTimeout(fn: () => void, ms: number): Timer;
  /** Runs `fn` every `ms` milliseconds (ms must be > 0) until cancelled. */
  setInterval(fn: () => void, ms: number): Timer;
  /** Resolves after `ms`; rejects with the signal's reason if aborted first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}
