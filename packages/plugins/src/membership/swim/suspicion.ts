import type { Clock, Timer } from '@kvmesh/core';

export interface SuspicionOptions {
  /** Id of the member whose suspicion started this one (it does not count as a confirmation). */
  readonly from: string;
  /**
   * This member's own id: its own failed probe is a confirmation no count
   * it heard of can hold yet (it told nobody), so it adds one to that count.
   * Omitted: every confirmation is counted by who sent it only.
   */
  readonly self?: string;
  /** Independent confirmations after which the timeout is `minMs`; 0 means always `minMs`. */
  readonly k: number;
  readonly minMs: number;
  readonly maxMs: number;
  /** Local time the suspicion began (it may have begun elsewhere, before it reached us). */
  readonly since: number;
  /** Called once when the timeout passes, unless cancelled first. */
  readonly onTimeout: () => void;
}

/**
 * One suspicion timer, after memberlist's `suspicion.go` (Lifeguard, Dadgar
 * et al. 2018, section IV-B): it starts at `maxMs` and every independent
 * confirmation (another member that suspects the same incarnation) shrinks
 * it logarithmically towards `minMs`, reached at `k` confirmations.
 *
 * The timeout counts from `since`, the earliest start of this suspicion any
 * gossip told us about, so members that heard of it at different times
 * still declare the member dead at about the same moment instead of one
 * dissemination delay apart. The suspected member has the same time to
 * refute either way: counted from the first suspicion.
 */
export class Suspicion {
  readonly #clock: Clock;
  readonly #options: SuspicionOptions;
  readonly #confirmations = new Set<string>();
  /** The most confirmations another member reported. */
  #reported = 0;
  #since: number;
  #timer: Timer | undefined;
  #done = false;

  constructor(clock: Clock, options: SuspicionOptions) {
    this.#clock = clock;
    this.#options = options;
    this.#since = options.since;
    this.#confirmations.add(options.from);
    this.#schedule();
  }

  /** Local time the suspicion began. */
  get since(): number {
    return this.#since;
  }

  /** Independent confirmations so far: those we saw, or more that another member reported. */
  get confirmations(): number {
    return Math.max(this.#confirmations.size - 1, this.#reported);
  }

  /** The timeout for the confirmations so far, counted from `since`. */
  timeoutMs(): number {
    const { k, minMs, maxMs } = this.#options;
    if (k < 1) return minMs;
    const n = Math.min(this.confirmations, k);
    const fraction = Math.log(n + 1) / Math.log(k + 1);
    return Math.max(minMs, Math.floor(maxMs - fraction * (maxMs - minMs)));
  }

  /**
   * Counts `from` as an independent confirmation, and `reported`, the count
   * the sender knows of, as a floor. Members that heard of different
   * confirmers then still agree on how far the timeout shrank (memberlist
   * counts only confirmers it heard of itself, so some members wait for the
   * maximum timeout while others already declared the member dead).
   * @returns true when the timeout shrank (the caller re-gossips the news);
   *   confirmations beyond `k` change nothing and are not spread.
   */
  confirm(from: string, reported = 0): boolean {
    if (this.#done) return false;
    const { k, self } = this.#options;
    const known = Math.max(this.confirmations, reported);
    const before = Math.min(this.confirmations, k);
    // A count heard by gossip names no confirmers: our own first one is surely not in it.
    const own = from === self && !this.#confirmations.has(from);
    this.#confirmations.add(from);
    this.#reported = Math.max(this.#reported, reported, own ? known + 1 : 0);
    if (Math.min(this.confirmations, k) === before) return false;
    this.#schedule();
    return true;
  }

  /** Moves the start earlier when gossip shows the suspicion began before we heard of it. */
  startedAt(since: number): void {
    if (this.#done || since >= this.#since) return;
    this.#since = since;
    this.#schedule();
  }

  cancel(): void {
    this.#done = true;
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#timer?.cancel();
    const remaining = this.#since + this.timeoutMs() - this.#clock.now();
    this.#timer = this.#clock.setTimeout(
      () => {
        if (this.#done) return;
        this.#done = true;
        this.#timer = undefined;
        this.#options.onTimeout();
      },
      Math.max(0, remaining),
    );
  }
}
