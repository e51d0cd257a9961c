import type { Clock, Timer } from '../contracts/clock.js';

/** Parts per million in one. */
const PPM = 1_000_000;

/** The clock a skewed view reads and schedules on: a VirtualClock. */
export interface SkewBase extends Clock {
  /** The base clock's `now()` when it was created: drift accumulates from this instant. */
  readonly startMs: number;
}

/**
 * One node's view of a shared virtual clock whose reading is off: it reads
 * `start + (virtual - start) * (1 + driftPpm / 1e6) + offsetMs`, floored to
 * whole ms, so at the start it is `offsetMs` ahead (negative: behind) and a
 * drift gains or loses `driftPpm` µs every virtual second from there, the way
 * a real machine's clock is off from true time.
 *
 * Timers still run on the one shared scheduler, measured in the node's own
 * time as a real timer is: a timeout of `ms` fires after `ms / (1 + drift)`
 * virtual ms, rounded to a whole ms. So every node's timers interleave on one
 * deterministic timeline; only what each node reads and how fast its timers
 * tick differ.
 */
export class SkewedClock implements Clock {
  readonly base: SkewBase;
  readonly offsetMs: number;
  readonly driftPpm: number;
  readonly #rate: number;

  /** @throws RangeError for a non-finite offset, or a drift that would stop or reverse the clock (<= -1e6 ppm). */
  constructor(base: SkewBase, offsetMs: number, driftPpm = 0) {
    if (!Number.isFinite(offsetMs)) throw new RangeError(`offsetMs must be finite (found ${offsetMs})`);
    if (!Number.isFinite(driftPpm) || driftPpm <= -PPM) {
      throw new RangeError(`driftPpm must be finite and > -1e6 (found ${driftPpm})`);
    }
    this.base = base;
    this.offsetMs = offsetMs;
    this.driftPpm = driftPpm;
    this.#rate = 1 + driftPpm / PPM;
  }

  now(): number {
    const elapsed = this.base.now() - this.base.startMs;
    return Math.floor(this.base.startMs + elapsed * this.#rate + this.offsetMs);
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.base.setTimeout(fn, this.#toBase(ms));
  }

  setInterval(fn: () => void, ms: number): Timer {
    if (!(ms > 0) || !Number.isFinite(ms)) throw new RangeError(`setInterval needs a finite ms > 0 (found ${ms})`);
    return this.base.setInterval(fn, Math.max(1, this.#toBase(ms)));
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return this.base.sleep(this.#toBase(ms), signal);
  }

  /** Local ms as base ms; whole ms, so the shared timeline stays on whole ms. */
  #toBase(ms: number): number {
    if (this.#rate === 1 || !Number.isFinite(ms) || ms <= 0) return ms;
    return Math.round(ms / this.#rate);
  }
}
