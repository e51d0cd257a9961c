import { compareKeys } from '@kvmesh/core';

/**
 * Keys in UTF-8 byte order, in a plain array: scans and hint pages walk it
 * without sorting, and a binary search finds where a cursor starts.
 */
export class SortedKeys {
  readonly #keys: string[] = [];

  get size(): number {
    return this.#keys.length;
  }

  at(index: number): string | undefined {
    return this.#keys[index];
  }

  /** Adds `key` unless it is there already. */
  add(key: string): void {
    const at = this.indexOf(key);
    if (!at.found) this.#keys.splice(at.index, 0, key);
  }

  /** Removes `key` if it is there. */
  delete(key: string): void {
    const at = this.indexOf(key);
    if (at.found) this.#keys.splice(at.index, 1);
  }

  clear(): void {
    this.#keys.length = 0;
  }

  /** Index of the first key > `after` (exclusive cursor), or of the first key >= `start`. */
  firstAfter(after: string): number {
    const at = this.indexOf(after);
    return at.found ? at.index + 1 : at.index;
  }

  /** Binary search in byte order: where `key` is, or where it would be inserted. */
  indexOf(key: string): { index: number; found: boolean } {
    const keys = this.#keys;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareKeys(keys[mid]!, key);
      if (c === 0) return { index: mid, found: true };
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return { index: lo, found: false };
  }
}
