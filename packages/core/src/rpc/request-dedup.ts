import { LRUCache } from 'lru-cache';
import type { Clock } from '../contracts/clock.js';

/**
 * What one remembered request is counted as besides the response it keeps:
 * its key string, the entry and the cache's bookkeeping. An estimate, so that
 * `maxBytes` bounds the table's memory within a small factor.
 */
export const DEDUP_ENTRY_BYTES = 128;

export interface RequestDedupOptions {
  /** Time source of the window: the node's Clock (virtual in the simulator). */
  readonly clock: Pick<Clock, 'now'>;
  /** How long an answered request is remembered, in ms. */
  readonly windowMs: number;
  /**
   * Memory the table of answered requests may take, in bytes: each counts
   * DEDUP_ENTRY_BYTES plus the response it keeps. Past it, the least
   * recently answered are forgotten first.
   */
  readonly maxBytes: number;
  /** Largest response kept to answer copies with; a copy of a request answered with more gets no answer. */
  readonly maxResponseBytes: number;
}

/** What `RequestDedup.deliver` made of one arriving copy of a request. */
export type DedupDelivery =
  /** The first copy: the handler ran, and `answer` is what it returned. */
  | { readonly duplicate: false; readonly answer: Promise<Uint8Array> }
  /**
   * A later copy: the handler did not run again. `answer` resolves with the
   * first copy's response once there is one, or with undefined when it was
   * not kept (send nothing), and rejects when the first copy's handler
   * rejected (answer with a failure again, without logging it again).
   */
  | { readonly duplicate: true; readonly answer: Promise<Uint8Array | undefined> };

/** Counters since construction; read them, never write them. */
export interface RequestDedupStats {
  /** Copies that did not reach the handler. */
  duplicates: number;
  /** Of those, copies answered again with the kept response (or failure). */
  replayed: number;
}

interface Outcome {
  /** The response, when it was kept. */
  readonly response: Uint8Array | undefined;
  readonly failed: boolean;
}

const FAILED: Outcome = Object.freeze({ response: undefined, failed: true });
const NOT_KEPT: Outcome = Object.freeze({ response: undefined, failed: false });

/**
 * At-most-once delivery of requests to a handler, per (peer, request id),
 * for transports whose wire may duplicate a request (see "Delivery" on the
 * Transport contract). Requests being handled are tracked until they are
 * answered (they are live work, bounded by what the node is doing); answered
 * ones stay in an lru-cache bounded by `maxBytes` and `windowMs` on the
 * injected clock, with their response when it is at most
 * `maxResponseBytes`. A copy arriving after its request was forgotten is
 * served as new: the guarantee holds within the window.
 *
 * Not tied to any transport: the peer is whatever the transport names the
 * sender by, the id whatever its wire pairs responses with.
 */
export class RequestDedup {
  readonly stats: RequestDedupStats = { duplicates: 0, replayed: 0 };
  readonly #running = new Map<string, Promise<Outcome>>();
  readonly #answered: LRUCache<string, Outcome>;
  readonly #maxResponseBytes: number;

  constructor(options: RequestDedupOptions) {
    for (const key of ['windowMs', 'maxBytes'] as const) {
      if (!Number.isSafeInteger(options[key]) || options[key] < 1) {
        throw new RangeError(`${key} must be a positive integer (found ${options[key]})`);
      }
    }
    if (!Number.isSafeInteger(options.maxResponseBytes) || options.maxResponseBytes < 0) {
      throw new RangeError(`maxResponseBytes must be an integer >= 0 (found ${options.maxResponseBytes})`);
    }
    const clock = options.clock;
    this.#maxResponseBytes = options.maxResponseBytes;
    // No `max`: lru-cache then grows its slots as needed instead of allocating
    // them up front, which matters with thousands of simulated endpoints.
    // ttlResolution 0: no cached time behind a real timer, only the clock.
    this.#answered = new LRUCache<string, Outcome>({
      maxSize: options.maxBytes,
      sizeCalculation: (outcome) => DEDUP_ENTRY_BYTES + (outcome.response?.length ?? 0),
      ttl: options.windowMs,
      ttlResolution: 0,
      perf: { now: () => clock.now() },
    });
  }

  /** Requests remembered now (answered and being handled). */
  get size(): number {
    return this.#answered.size + this.#running.size;
  }

  /**
   * Hands the first copy of request `id` from `peer` to `handle` and returns
   * its answer; for a later copy returns the first one's answer without
   * calling `handle`. `handle` may throw or reject: that is the first copy's
   * answer.
   */
  deliver(peer: string, id: number, handle: () => Promise<Uint8Array>): DedupDelivery {
    const key = `${id} ${peer}`;
    const earlier = this.#answered.get(key) ?? this.#running.get(key);
    if (earlier !== undefined) {
      this.stats.duplicates++;
      return { duplicate: true, answer: Promise.resolve(earlier).then((outcome) => this.#replay(outcome)) };
    }
    let answer: Promise<Uint8Array>;
    try {
      answer = Promise.resolve(handle());
    } catch (err) {
      answer = Promise.reject(err);
    }
    const outcome = answer.then(
      (response): Outcome =>
        response instanceof Uint8Array && response.length <= this.#maxResponseBytes
          ? { response, failed: false }
          : NOT_KEPT,
      () => FAILED,
    );
    this.#running.set(key, outcome);
    void outcome.then((settled) => {
      this.#running.delete(key);
      this.#answered.set(key, settled);
    });
    return { duplicate: false, answer };
  }

  #replay(outcome: Outcome): Uint8Array | undefined {
    if (outcome.failed) {
      this.stats.replayed++;
      throw new Error('the first copy of this request failed');
    }
    if (outcome.response !== undefined) this.stats.replayed++;
    return outcome.response;
  }
}
