import { compareStamps, compareVersions, formatVersion, parseVersion } from '@kvmesh/core';
import type { Version } from '@kvmesh/core';

/** Keys a context remembers at most; the oldest versions are forgotten first. */
export const MAX_CONTEXT_KEYS = 1_000;

/**
 * What a client has seen: per key, the newest version (a write's, a
 * tombstone's or a read's) in kvmesh's version format. Travels as the JSON
 * object `{"<key>": "<version>"}` under `causal-context`; whatever a client
 * sends that is not of that form is ignored (an empty or absent context
 * is the start of a session), never refused.
 */
export class CausalContext {
  readonly #seen = new Map<string, Version>();

  /** The context a request carries: its body's `causal-context`, entries that are not versions dropped. */
  static from(value: unknown): CausalContext {
    const context = new CausalContext();
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return context;
    for (const [key, text] of Object.entries(value as Record<string, unknown>)) {
      if (typeof text !== 'string') continue;
      try {
        context.observe(key, parseVersion(text));
      } catch {
        // Not a version of ours: nothing the client saw here can be checked.
      }
    }
    return context;
  }

  /** The version of `key` the client has seen, if it said. */
  seen(key: string): Version | undefined {
    return this.#seen.get(key);
  }

  /**
   * True when `version` (undefined: no record) is older than what the client
   * saw of `key`. A version of the same timestamp from another node is not:
   * the two writes were concurrent, and the replicas agree on one of them.
   */
  isStale(key: string, version: Version | undefined): boolean {
    const seen = this.#seen.get(key);
    if (seen === undefined || version === undefined) return false;
    return compareStamps(version, seen) < 0;
  }

  /** Remembers `version` of `key` when it is newer than what was known. */
  observe(key: string, version: Version): void {
    const known = this.#seen.get(key);
    if (known !== undefined && compareVersions(known, version) >= 0) return;
    this.#seen.delete(key);
    this.#seen.set(key, version);
    if (this.#seen.size > MAX_CONTEXT_KEYS) {
      let oldest: string | undefined;
      for (const [k, v] of this.#seen)
        if (oldest === undefined || v.wallMs < this.#seen.get(oldest)!.wallMs) oldest = k;
      this.#seen.delete(oldest!);
    }
  }

  toJSON(): Record<string, string> {
    // fromEntries defines every key as an own property, `__proto__` included.
    return Object.fromEntries([...this.#seen].map(([key, version]) => [key, formatVersion(version)]));
  }
}
