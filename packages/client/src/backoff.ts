/** How a call retries a failure that allows it (docs/client.md). */
export interface RetryOptions {
  /** Requests per call at most, the first included. Default 4. */
  readonly attempts?: number;
  /** Backoff before the first retry; it doubles per retry. Default 50 ms. */
  readonly baseDelayMs?: number;
  /** Largest backoff. Default 2000 ms. */
  readonly maxDelayMs?: number;
}

export const RETRY_DEFAULTS = Object.freeze({ attempts: 4, baseDelayMs: 50, maxDelayMs: 2_000 });

/**
 * The wait before retry number `retry` (1 for the first): "full jitter"
 * exponential backoff, uniform in [0, min(max, base * 2^(retry-1))], which
 * spreads the retries of many clients that failed together. A server's
 * `Retry-After` is a floor: the wait is never shorter.
 */
export function backoffMs(
  retry: number,
  options: Required<RetryOptions>,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  const cap = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.max(0, retry - 1));
  const jittered = Math.floor(random() * cap);
  return retryAfterMs === undefined ? jittered : Math.max(jittered, retryAfterMs);
}

/** A `Retry-After` header in ms: delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | undefined, now: number = Date.now()): number | undefined {
  if (header === undefined || header === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
