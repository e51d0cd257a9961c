import type { EntryPayload } from './messages.js';

interface Held {
  entry: EntryPayload;
  /** When a STORE of it last arrived (this node's clock). */
  receivedMs: number;
  /** When this node last republished it. */
  republishedMs: number;
}

/**
 * The entries this node holds for others (mode shift): who owns each key,
 * as the closest nodes to the key keep it. An entry replaces a held one of
 * a lower version, or refreshes one of the same version and owner; it
 * expires `expiryMs` after its owner last published it (§2.5: values expire
 * unless their publisher republishes them).
 */
export class EntryStore {
  readonly #held = new Map<string, Held>();
  readonly #expiryMs: number;

  constructor(expiryMs: number) {
    this.#expiryMs = expiryMs;
  }

  get size(): number {
    return this.#held.size;
  }

  /** The live entry of `key`, if held. */
  get(key: string, nowMs: number): EntryPayload | undefined {
    const held = this.#held.get(key);
    if (held === undefined) return undefined;
    if (this.#expired(held, nowMs)) {
      this.#held.delete(key);
      return undefined;
    }
    return held.entry;
  }

  /**
   * Offers `entry` (a STORE): taken when no live entry is held, or the held
   * one is older (lower version), or it is the same version of the same
   * owner (published again). With `create`, taken only when none is held;
   * with `replaces`, only when the held one is that entry (same owner and
   * version): a conditional take-up, which an entry the taker did not see
   * (newer, or another claim's) refuses, and so does a holder that holds
   * none (answering `replaces`).
   * @returns what is held for the key afterwards.
   */
  offer(entry: EntryPayload, create: boolean, nowMs: number, replaces?: EntryPayload | null): EntryPayload {
    const held = this.#held.get(entry.key);
    const live = held !== undefined && !this.#expired(held, nowMs) ? held : undefined;
    if (nowMs - entry.publishedMs >= this.#expiryMs) return live?.entry ?? entry;
    // A holder that holds nothing (it restarted, or never got the entry) cannot tell whether the
    // entry to replace was the newest: it answers as if it held it, which the taker counts against.
    if (live === undefined && replaces !== undefined && replaces !== null) return replaces;
    if (live === undefined) {
      this.#held.set(entry.key, { entry, receivedMs: nowMs, republishedMs: nowMs });
      return entry;
    }
    if (create) return live.entry;
    const current = live.entry;
    if (
      replaces !== undefined &&
      replaces !== null &&
      (current.version !== replaces.version || current.ownerId !== replaces.ownerId)
    ) {
      return current;
    }
    if (entry.version > current.version) {
      live.entry = entry;
      live.receivedMs = nowMs;
    } else if (entry.version === current.version && entry.ownerId === current.ownerId) {
      if (entry.publishedMs > current.publishedMs) live.entry = entry;
      live.receivedMs = nowMs;
    }
    return live.entry;
  }

  /** Drops the held entry of `entry.key` if it is `entry` (same owner and version): a claim of it that lost. */
  withdraw(entry: EntryPayload): void {
    const held = this.#held.get(entry.key);
    if (held !== undefined && held.entry.ownerId === entry.ownerId && held.entry.version === entry.version) {
      this.#held.delete(entry.key);
    }
  }

  /** Every live entry. */
  all(nowMs: number): EntryPayload[] {
    const out: EntryPayload[] = [];
    for (const held of this.#held.values()) if (!this.#expired(held, nowMs)) out.push(held.entry);
    return out;
  }

  /** Drops the expired entries; returns how many. */
  expire(nowMs: number): number {
    let dropped = 0;
    for (const [key, held] of this.#held) {
      if (this.#expired(held, nowMs)) {
        this.#held.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  /**
   * Entries neither stored here nor republished by this node for
   * `intervalMs` (§2.5: a node that received a STORE within the interval
   * assumes the other holders did too); marks them republished.
   */
  takeDue(nowMs: number, intervalMs: number): EntryPayload[] {
    const out: EntryPayload[] = [];
    for (const held of this.#held.values()) {
      if (this.#expired(held, nowMs)) continue;
      if (nowMs - held.receivedMs < intervalMs || nowMs - held.republishedMs < intervalMs) continue;
      held.republishedMs = nowMs;
      out.push(held.entry);
    }
    return out;
  }

  #expired(held: Held, nowMs: number): boolean {
    return nowMs - held.entry.publishedMs >= this.#expiryMs;
  }
}
