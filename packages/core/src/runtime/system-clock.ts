import type { Clock, Timer } from '../contracts/clock.js';
import { silentLogger, type Logger } from '../contracts/logger.js';

export interface SystemClockOptions {
  /** Where a throwing timer callback is reported. Default: silent. */
  logger?: Logger;
}

/**
 * The production Clock: wall time and the event loop's timers.
 *
 * Intervals are `unref()`ed: they carry background work (probes, heartbeats,
 * anti-entropy) that must never be the only thing keeping a process alive, so
 * an interval a component forgot to cancel cannot hang a test run or a CLI
 * command. One-shot timers stay referenced: a `sleep()` or a deadline someone
 * awaits must fire even when no socket is open.
 */
export class SystemClock implements Clock {
  private readonly logger: Logger;

  constructor(options: SystemClockOptions = {}) {
    this.logger = options.logger ?? silentLogger;
  }

  now(): number {
    return Date.now();
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const handle = setTimeout(() => this.run(fn), Math.max(0, ms));
    return { cancel: () => clearTimeout(handle) };
  }

  setInterval(fn: () => void, ms: number): Timer {
    if (!(ms > 0)) throw new RangeError(`setInterval needs ms > 0 (found ${ms})`);
    const handle = setInterval(() => this.run(fn), ms);
    handle.unref();
    return { cancel: () => clearInterval(handle) };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        clearTimeout(handle);
        reject(signal?.reason);
      };
      const handle = setTimeout(
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private run(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ err }, 'timer callback threw');
    }
  }
}
