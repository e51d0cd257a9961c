import type { Clock } from '../contracts/clock.js';

/**
 * Spaces out work to at most `perSecond` items per second on the injected
 * Clock: each `take(n)` waits until the items taken before it had their
 * share of time. A rate of 0 never waits.
 */
export class Throttle {
  readonly perSecond: number;
  readonly #clock: Clock;
  #nextFreeMs = 0;

  constructor(clock: Clock, perSecond: number) {
    this.#clock = clock;
    this.perSecond = perSecond;
  }

  /** Resolves when `n` more items may go; rejects with the signal's reason if aborted first. */
  async take(n: number, signal?: AbortSignal): Promise<void> {
    if (this.perSecond <= 0 || n <= 0) return;
    const now = this.#clock.now();
    const start = Math.max(now, this.#nextFreeMs);
    this.#nextFreeMs = start + (n * 1000) / this.perSecond;
    if (start > now) await this.#clock.sleep(start - now, signal);
  }
}
