import type { Clock, Timer } from '../contracts/clock.js';
import { silentLogger, type Logger } from '../contracts/logger.js';
import { SkewedClock } from './skewed-clock.js';

/** Where a VirtualClock starts unless told otherwise: 2023-11-14T22:13:20Z, a fixed instant so runs replay exactly. */
export const VIRTUAL_EPOCH_MS = 1_700_000_000_000;

/** How far `runUntilIdle` goes by default before it gives up on timers that keep rescheduling: one virtual hour. */
const DEFAULT_IDLE_LIMIT_MS = 3_600_000;

/** Rebuild the queue once cancelled entries outnumber live ones by this much (deadlines are mostly cancelled). */
const COMPACT_SLACK = 1024;

export interface VirtualClockOptions {
  /** Initial `now()` in ms since the Unix epoch. Default: VIRTUAL_EPOCH_MS. */
  startMs?: number;
  /** Receives the error of a throwing timer callback. Default: logs it at error level. */
  onError?: (err: unknown) => void;
  /** Logger of the default `onError`. Default: silent. */
  logger?: Logger;
}

const noop = (): void => undefined;

/** One timer: its queue entry is also the handle `setTimeout` returns, so a timer costs one object. */
class Entry implements Timer {
  live = true;

  constructor(
    public due: number,
    public seq: number,
    public fn: () => void,
    /** Period of an interval; 0 for a one-shot timer. */
    readonly periodMs: number,
    /** The clock's own bookkeeping of a cancel (one function per clock, not per timer). */
    private readonly onCancel: () => void,
  ) {}

  cancel(): void {
    if (!this.live) return;
    this.live = false;
    // The entry stays queued until its instant comes or the queue is compacted: what its callback
    // holds (a request's closure, say) need not stay with it.
    this.fn = noop;
    this.onCancel();
  }
}

/**
 * The timers due at one instant, in creation order: an entry is appended
 * when it is set (or an interval set again), and sequence numbers only grow,
 * so appending keeps the order. `next` is the first one not fired yet.
 */
interface Slot {
  readonly entries: Entry[];
  next: number;
}

const flushMicrotasks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A Clock that only moves when the harness moves it, for tests and the simulator.
 *
 * Timers sit in a queue ordered by (due time, creation order): one list per
 * due instant and a heap of the instants (a simulated network keeps hundreds
 * of thousands of deliveries and deadlines pending, over a few thousand
 * distinct instants), so
 * timers due at the same instant always fire in the order they were set and a
 * run replays exactly. `advance` fires due timers synchronously; protocol code
 * awaits promises between steps, so drive it with `advanceAsync`, which lets
 * pending promise callbacks run after every timer. A callback that throws is
 * passed to `onError` and the clock keeps going.
 *
 * Not re-entrant: advancing from inside a timer callback, or running two
 * advances at once, throws.
 */
export class VirtualClock implements Clock {
  /** `now()` at construction; skewed views drift from this instant. */
  readonly startMs: number;
  private current: number;
  private seq = 0;
  private live = 0;
  /** Timers by due instant. */
  private readonly slots = new Map<number, Slot>();
  /** The instants of `slots`, as a binary min-heap. */
  private readonly dues: number[] = [];
  /** Entries in `slots` not fired yet, cancelled ones included. */
  private queued = 0;
  private advancing = false;
  private readonly onError: (err: unknown) => void;
  private thrown = 0;

  constructor(options: VirtualClockOptions = {}) {
    this.current = options.startMs ?? VIRTUAL_EPOCH_MS;
    this.startMs = this.current;
    const logger = options.logger ?? silentLogger;
    this.onError = options.onError ?? ((err) => logger.error({ err }, 'timer callback threw'));
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.schedule(fn, Number.isFinite(ms) && ms > 0 ? ms : 0, 0);
  }

  setInterval(fn: () => void, ms: number): Timer {
    if (!(ms > 0) || !Number.isFinite(ms)) throw new RangeError(`setInterval needs a finite ms > 0 (found ${ms})`);
    return this.schedule(fn, ms, ms);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        timer.cancel();
        reject(signal?.reason);
      };
      const timer = this.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * A view of this clock for one simulated node whose clock is off: it reads
   * `offsetMs` ahead (negative: behind) plus a drift of `driftPpm` parts per
   * million of the time since `startMs`, and its timers run on this clock's
   * queue (see SkewedClock). Advance this clock, never the view.
   * @throws RangeError for a non-finite offset or a drift <= -1e6 ppm.
   */
  skewed(offsetMs: number, driftPpm = 0): SkewedClock {
    return new SkewedClock(this, offsetMs, driftPpm);
  }

  /** Timers (and intervals) set and not yet fired or cancelled. */
  pending(): number {
    return this.live;
  }

  /** Due time of the next timer, or undefined when none is pending. */
  nextDue(): number | undefined {
    return this.peek()?.due;
  }

  /** How many timer callbacks have thrown so far. */
  get errorCount(): number {
    return this.thrown;
  }

  /**
   * Moves time forward by `ms`, firing every timer due up to the new time in
   * (due, creation) order, including timers that callbacks set on the way.
   * Promise callbacks do not run in between: use `advanceAsync` for async code.
   * @returns how many callbacks ran.
   */
  advance(ms: number): number {
    this.checkMs(ms);
    const target = this.current + ms;
    return this.exclusive(() => {
      let fired = 0;
      for (let entry = this.peek(); entry !== undefined && entry.due <= target; entry = this.peek()) {
        this.fire(entry);
        fired++;
      }
      this.current = target;
      return fired;
    });
  }

  /** `advance` up to an absolute time (no-op when it is in the past). */
  advanceTo(timeMs: number): number {
    return this.advance(Math.max(0, timeMs - this.current));
  }

  /**
   * Fires timers until none is pending or `limitMs` of virtual time has
   * passed (intervals never go idle, so the limit always ends them).
   * Time stops at the last timer fired, or at the limit.
   * @returns how many callbacks ran.
   */
  runUntilIdle(limitMs: number = DEFAULT_IDLE_LIMIT_MS): number {
    this.checkMs(limitMs);
    const limit = this.current + limitMs;
    return this.exclusive(() => {
      let fired = 0;
      for (let entry = this.peek(); entry !== undefined && entry.due <= limit; entry = this.peek()) {
        this.fire(entry);
        fired++;
      }
      if (this.live > 0) this.current = limit;
      return fired;
    });
  }

  /**
   * `advance` for async code: before and after every timer it waits one
   * macrotask turn, so every promise callback the timer started (and the
   * timers those set) runs at the virtual time it belongs to. With `stepMs`,
   * time also stops every `stepMs` to let promises settle even when no
   * timer is due (for code that awaits work driven by something other than
   * this clock).
   * @returns how many callbacks ran.
   */
  async advanceAsync(ms: number, stepMs?: number): Promise<number> {
    this.checkMs(ms);
    if (stepMs !== undefined && !(stepMs > 0)) throw new RangeError(`stepMs must be > 0 (found ${stepMs})`);
    return this.exclusiveAsync(() => this.driveAsync(this.current + ms, stepMs, false));
  }

  /** `runUntilIdle` for async code, letting promises settle after every timer like `advanceAsync`. */
  async runUntilIdleAsync(limitMs: number = DEFAULT_IDLE_LIMIT_MS): Promise<number> {
    this.checkMs(limitMs);
    return this.exclusiveAsync(() => this.driveAsync(this.current + limitMs, undefined, true));
  }

  private async driveAsync(target: number, stepMs: number | undefined, stopWhenIdle: boolean): Promise<number> {
    let fired = 0;
    await flushMicrotasks();
    for (;;) {
      const bound = stepMs === undefined ? target : Math.min(target, this.current + stepMs);
      const entry = this.peek();
      if (entry !== undefined && entry.due <= bound) {
        this.fire(entry);
        fired++;
      } else if (bound < target) {
        this.current = bound;
      } else {
        if (!stopWhenIdle || this.live > 0) this.current = target;
        await flushMicrotasks();
        return fired;
      }
      await flushMicrotasks();
      if (stopWhenIdle && this.live === 0) return fired;
    }
  }

  private schedule(fn: () => void, delayMs: number, periodMs: number): Timer {
    const entry = new Entry(this.current + delayMs, this.seq++, fn, periodMs, this.onCancel);
    this.push(entry);
    this.live++;
    return entry;
  }

  /** A live timer was cancelled (called by its entry). */
  private readonly onCancel = (): void => {
    this.live--;
    if (this.queued > 2 * this.live + COMPACT_SLACK) this.compact();
  };

  private fire(entry: Entry): void {
    this.take();
    this.current = entry.due;
    if (entry.periodMs > 0) {
      entry.due += entry.periodMs;
      entry.seq = this.seq++;
      this.push(entry);
    } else {
      entry.live = false;
      this.live--;
    }
    try {
      entry.fn();
    } catch (err) {
      this.thrown++;
      this.onError(err);
    }
  }

  private checkMs(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`time must be a finite ms >= 0 (found ${ms})`);
  }

  private exclusive<T>(run: () => T): T {
    if (this.advancing)
      throw new Error('VirtualClock is already advancing (advance called from a timer, or twice at once)');
    this.advancing = true;
    try {
      return run();
    } finally {
      this.advancing = false;
    }
  }

  private async exclusiveAsync<T>(run: () => Promise<T>): Promise<T> {
    if (this.advancing)
      throw new Error('VirtualClock is already advancing (advance called from a timer, or twice at once)');
    this.advancing = true;
    try {
      return await run();
    } finally {
      this.advancing = false;
    }
  }

  /** The earliest live entry, dropping cancelled ones from the front. */
  private peek(): Entry | undefined {
    const dues = this.dues;
    while (dues.length > 0) {
      const due = dues[0]!;
      const slot = this.slots.get(due)!;
      const entries = slot.entries;
      while (slot.next < entries.length) {
        const entry = entries[slot.next]!;
        if (entry.live) return entry;
        slot.next++;
        this.queued--;
      }
      this.slots.delete(due);
      popDue(dues);
    }
    return undefined;
  }

  /** Removes the entry `peek` returned. */
  private take(): void {
    this.slots.get(this.dues[0]!)!.next++;
    this.queued--;
  }

  private compact(): void {
    const kept: Slot[] = [];
    for (const slot of this.slots.values()) {
      const live = slot.entries.slice(slot.next).filter((e) => e.live);
      if (live.length > 0) kept.push({ entries: live, next: 0 });
    }
    this.slots.clear();
    this.dues.length = 0;
    this.queued = 0;
    // Ascending instants are a valid heap.
    kept.sort((a, b) => a.entries[0]!.due - b.entries[0]!.due);
    for (const slot of kept) {
      this.slots.set(slot.entries[0]!.due, slot);
      this.dues.push(slot.entries[0]!.due);
      this.queued += slot.entries.length;
    }
  }

  private push(entry: Entry): void {
    let slot = this.slots.get(entry.due);
    if (slot === undefined) {
      slot = { entries: [], next: 0 };
      this.slots.set(entry.due, slot);
      pushDue(this.dues, entry.due);
    }
    slot.entries.push(entry);
    this.queued++;
  }
}

function pushDue(heap: number[], due: number): void {
  let i = heap.push(due) - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent]! <= due) break;
    heap[i] = heap[parent]!;
    i = parent;
  }
  heap[i] = due;
}

function popDue(heap: number[]): void {
  const last = heap.pop();
  if (last === undefined || heap.length === 0) return;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= heap.length) break;
    const r = l + 1;
    const child = r < heap.length && heap[r]! < heap[l]! ? r : l;
    if (heap[child]! >= last) break;
    heap[i] = heap[child]!;
    i = child;
  }
  heap[i] = last;
}
