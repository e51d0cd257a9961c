import type { Clock } from '../contracts/clock.js';
import type { Logger } from '../contracts/logger.js';

/** At most one warning per this many ms about refused frames; the ones between are counted in the next. */
export const REFUSAL_LOG_INTERVAL_MS = 10_000;

/**
 * Warns about frames refused as unauthenticated, rate-limited: a flood of
 * forged frames costs one log line per interval, which says how many it
 * stands for.
 */
export class RefusalLog {
  readonly #logger: Logger;
  readonly #clock: Pick<Clock, 'now'>;
  #last = Number.NEGATIVE_INFINITY;
  #suppressed = 0;

  constructor(logger: Logger, clock: Pick<Clock, 'now'>) {
    this.#logger = logger;
    this.#clock = clock;
  }

  /** One refused frame from the peer at transport address `from`. */
  refused(from: string, reason: string, what: string): void {
    const now = this.#clock.now();
    if (now - this.#last < REFUSAL_LOG_INTERVAL_MS) {
      this.#suppressed++;
      return;
    }
    this.#last = now;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    this.#logger.warn(
      { from, reason, frame: what, ...(suppressed > 0 ? { alsoRefusedSinceLastWarning: suppressed } : {}) },
      'refused an unauthenticated internal frame',
    );
  }
}
