/**
 * One async mutex per key: `run(key, fn)` calls run one after the other for
 * the same key, in call order, and concurrently for different keys. A key
 * with no waiter holds no memory.
 */
export class KeyLocks {
  /** Keys held, each with the calls waiting for it, in call order. */
  readonly #held = new Map<string, (() => void)[]>();

  /** Keys locked right now (held or waited for). */
  get size(): number {
    return this.#held.size;
  }

  // The common case, a key nobody holds, allocates one empty array and no promise of its own.
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let waiters = this.#held.get(key);
    if (waiters === undefined) {
      waiters = [];
      this.#held.set(key, waiters);
    } else {
      const queue = waiters;
      await new Promise<void>((resolve) => queue.push(resolve));
    }
    try {
      return await fn();
    } finally {
      // The lock passes straight to the next caller (the key stays held), or the key is freed.
      const next = waiters.shift();
      if (next !== undefined) next();
      else this.#held.delete(key);
    }
  }
}
