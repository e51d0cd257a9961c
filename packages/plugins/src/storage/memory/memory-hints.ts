import type { Hint, HintPage, HintStore, StoredRecord, Version } from '@kvmesh/core';
import { compareRecords, coveredBy } from '@kvmesh/core';
import { copyRecord, validateHint, validateKey, validateTarget, validateUpTo } from '../validate-record.js';
import { SortedKeys } from './sorted-keys.js';

/** The hints of one target: records by key, and the keys in order for paging. */
interface TargetHints {
  readonly records: Map<string, StoredRecord>;
  readonly keys: SortedKeys;
}

/**
 * Hints in process memory, apart from the records (and outside the LRU bound:
 * a hint is a write another member has not got yet, so dropping one to save
 * memory would lose it). Every method runs to completion synchronously, which
 * makes add and remove atomic per (target, key).
 */
export class MemoryHints implements HintStore {
  readonly #byTarget = new Map<string, TargetHints>();
  readonly #targets = new SortedKeys();
  readonly #checkOpen: () => void;
  #count = 0;

  /** `checkOpen` throws when the storage that owns these hints is stopped. */
  constructor(checkOpen: () => void) {
    this.#checkOpen = checkOpen;
  }

  async add(hint: Hint): Promise<void> {
    this.#checkOpen();
    validateHint(hint);
    const { target, record } = hint;
    let hints = this.#byTarget.get(target);
    if (hints === undefined) {
      hints = { records: new Map(), keys: new SortedKeys() };
      this.#byTarget.set(target, hints);
      this.#targets.add(target);
    }
    const existing = hints.records.get(record.key);
    if (existing !== undefined && compareRecords(record, existing) <= 0) return;
    if (existing === undefined) {
      hints.keys.add(record.key);
      this.#count++;
    }
    hints.records.set(record.key, copyRecord(record));
  }

  async targets(): Promise<string[]> {
    this.#checkOpen();
    const out: string[] = [];
    for (let i = 0; i < this.#targets.size; i++) out.push(this.#targets.at(i)!);
    return out;
  }

  async list(target: string, options: { readonly after?: string; readonly limit: number }): Promise<HintPage> {
    this.#checkOpen();
    validateTarget(target);
    const hints = this.#byTarget.get(target);
    if (hints === undefined) return { hints: [], next: undefined };
    const limit = Math.max(1, Math.floor(options.limit));
    const from = options.after === undefined ? 0 : hints.keys.firstAfter(validateKey(options.after));
    const page: Hint[] = [];
    for (let i = from; i < hints.keys.size; i++) {
      if (page.length === limit) return { hints: page, next: hints.keys.at(i - 1) };
      page.push({ target, record: hints.records.get(hints.keys.at(i)!)! });
    }
    return { hints: page, next: undefined };
  }

  async remove(target: string, key: string, upTo: Version): Promise<boolean> {
    this.#checkOpen();
    validateTarget(target);
    validateKey(key);
    validateUpTo(upTo);
    const hints = this.#byTarget.get(target);
    const existing = hints?.records.get(key);
    if (hints === undefined || existing === undefined) return false;
    if (!coveredBy(existing.version, upTo)) return false;
    hints.records.delete(key);
    hints.keys.delete(key);
    this.#count--;
    if (hints.records.size === 0) {
      this.#byTarget.delete(target);
      this.#targets.delete(target);
    }
    return true;
  }

  async count(): Promise<number> {
    this.#checkOpen();
    return this.#count;
  }

  /** Frees every hint (the storage stopped). */
  clear(): void {
    this.#byTarget.clear();
    this.#targets.clear();
    this.#count = 0;
  }
}
