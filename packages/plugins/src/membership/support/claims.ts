import type { Clock, Logger } from '@kvmesh/core';

/**
 * How far a claimed incarnation may be ahead of this node's clock (or of the
 * incarnation known here, when that is higher), for the strategies whose
 * incarnations are clock times in ms (heartbeat, controller, static): a
 * member starts at its clock time and moves to max(now, previous + 1) on a
 * restart or a refutation, so an honest incarnation is ahead by no more than
 * the skew between two clocks. 2^20 ms (17.5 minutes) leaves room for bad
 * clocks, and 2^53 (where numbers stop being exact) is 2^33 such leads away.
 */
export const MAX_INCARNATION_LEAD_MS = 2 ** 20;

/** One warning per this long for refused claims; the others are counted in the next one. */
const WARN_EVERY_MS = 10_000;

/** Why a claimed incarnation is refused, or undefined when it may be taken. */
export function incarnationRefusal(incarnation: unknown, known: number | undefined, nowMs: number): string | undefined {
  if (typeof incarnation !== 'number' || !Number.isSafeInteger(incarnation) || incarnation < 0) {
    return `incarnation ${String(incarnation)} is not a non-negative safe integer`;
  }
  const base = Math.max(known ?? 0, nowMs);
  if (incarnation > base + MAX_INCARNATION_LEAD_MS) {
    return `incarnation ${incarnation} is more than ${MAX_INCARNATION_LEAD_MS} ms ahead of ${base}`;
  }
  return undefined;
}

/** Counts refused claims and warns about them at most once per WARN_EVERY_MS, with how many were refused since. */
export class RefusedClaims {
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #strategy: string;
  #lastWarnAt = Number.NEGATIVE_INFINITY;
  #suppressed = 0;
  /** Every claim refused since start. */
  count = 0;

  constructor(strategy: string, clock: Clock, logger: Logger) {
    this.#strategy = strategy;
    this.#clock = clock;
    this.#logger = logger;
  }

  refused(fields: { readonly member: string; readonly from: string }, reason: string): void {
    this.count++;
    const now = this.#clock.now();
    if (now - this.#lastWarnAt < WARN_EVERY_MS) {
      this.#suppressed++;
      return;
    }
    this.#logger.warn(
      { ...fields, reason, refusedSinceLastWarning: this.#suppressed },
      `${this.#strategy}: refused a membership claim that no honest member sends`,
    );
    this.#lastWarnAt = now;
    this.#suppressed = 0;
  }
}
