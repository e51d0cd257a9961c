import type { Clock, Logger, Member } from '@kvmesh/core';
import type { WireUpdate } from './messages.js';

/**
 * How far one fact may raise a member's incarnation above what this member
 * knows (or, for a member it does not know yet, above the current time in
 * seconds, where incarnations start). A member raises its own by one per
 * refutation, so honest facts stay far below it, and 2^53 (where numbers
 * stop being exact) is 2^33 such steps away.
 */
export const MAX_INCARNATION_STEP = 2 ** 20;

/** One warning per this long for refused facts; the others are counted in the next one. */
const WARN_EVERY_MS = 10_000;

export type ClaimVerdict =
  { readonly kind: 'accept'; readonly update: WireUpdate } | { readonly kind: 'refuse'; readonly reason: string };

/**
 * What a fact about another member may claim, before it changes anything.
 * Only a member raises its own incarnation: a suspicion, death or departure
 * claimed above the incarnation known here is taken as a claim about the
 * known one, which the member can still refute with one more. An alive fact
 * may raise it by at most MAX_INCARNATION_STEP; an incarnation that is not
 * a non-negative safe integer is refused.
 */
export function judgeClaim(u: WireUpdate, known: Member | undefined, nowMs: number): ClaimVerdict {
  if (!Number.isSafeInteger(u.incarnation) || u.incarnation < 0) {
    return { kind: 'refuse', reason: `incarnation ${u.incarnation} is not a non-negative safe integer` };
  }
  const base = known?.incarnation ?? Math.floor(nowMs / 1000);
  if (u.state === 'ALIVE') {
    return u.incarnation > base + MAX_INCARNATION_STEP
      ? {
          kind: 'refuse',
          reason: `alive at incarnation ${u.incarnation}, more than ${MAX_INCARNATION_STEP} above ${base}`,
        }
      : { kind: 'accept', update: u };
  }
  if (known !== undefined && u.incarnation > known.incarnation) {
    return { kind: 'accept', update: { ...u, incarnation: known.incarnation } };
  }
  return { kind: 'accept', update: u };
}

/**
 * What a fact about this member may make it do: refute with one more than
 * the fact's incarnation, unless that is more than MAX_INCARNATION_STEP above
 * its own (nobody but this member raises it that far: the fact is forged or
 * garbled, and refuting it would take the incarnation where the others
 * refuse it).
 */
export function judgeClaimAboutSelf(u: WireUpdate, self: Member): ClaimVerdict {
  if (!Number.isSafeInteger(u.incarnation) || u.incarnation < 0) {
    return { kind: 'refuse', reason: `incarnation ${u.incarnation} is not a non-negative safe integer` };
  }
  if (u.incarnation > self.incarnation + MAX_INCARNATION_STEP) {
    return {
      kind: 'refuse',
      reason: `about this member at incarnation ${u.incarnation}, more than ${MAX_INCARNATION_STEP} above its own ${self.incarnation}`,
    };
  }
  return { kind: 'accept', update: u };
}

/** Warns about refused facts at most once per WARN_EVERY_MS, with the sender and how many were refused since. */
export class RefusedClaims {
  readonly #clock: Clock;
  readonly #logger: Logger;
  #lastWarnAt = Number.NEGATIVE_INFINITY;
  #suppressed = 0;
  /** Every fact refused since start. */
  count = 0;

  constructor(clock: Clock, logger: Logger) {
    this.#clock = clock;
    this.#logger = logger;
  }

  refused(u: WireUpdate, from: string, reason: string): void {
    this.count++;
    const now = this.#clock.now();
    if (now - this.#lastWarnAt < WARN_EVERY_MS) {
      this.#suppressed++;
      return;
    }
    this.#logger.warn(
      { member: u.id, state: u.state, from, reason, refusedSinceLastWarning: this.#suppressed },
      'swim: refused a membership fact that no honest member sends',
    );
    this.#lastWarnAt = now;
    this.#suppressed = 0;
  }
}
