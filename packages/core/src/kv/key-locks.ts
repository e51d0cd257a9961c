/**
 * One async mutex per key: `run(key, fn)` calls run one after the other for
 * the same key, in call order, and concurrently for different keys. A key
 * with no waiter holds no memory.
 */
export class KeyLocks {
  readonly #tails = new Map<string, Promise<void>>();

  /** Keys locked right now (held or waited for). */
  get size(): number {
    return this.#tails.size;
  }

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    // Tails never reject, so a failed holder cannot wedge the key.
    const tail = previous === undefined ? mine : previous.then(() => mine);
    this.#tails.set(key, tail);
    try {
      if (previous !== undefined) await previous;
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}
