import type { WireUpdate } from './messages.js';

/** One queued update. */
export interface Broadcast {
  readonly id: string;
  readonly update: WireUpdate;
  /** Upper bound of its encoded size inside a message. */
  readonly bytes: number;
  /** Local time a suspicion began, so each copy carries its current age. */
  readonly since: number | undefined;
  transmits: number;
  live: boolean;
}

/** Entries that did not fit after which a selection stops looking. */
const MAX_MISFITS = 32;

/** How many times an update is piggybacked: retransmitMult * ceil(log10(N + 1)), as memberlist's retransmitLimit. */
export function retransmitLimit(retransmitMult: number, members: number): number {
  return retransmitMult * Math.max(1, Math.ceil(Math.log10(members + 1)));
}

/**
 * Membership updates waiting to be piggybacked (memberlist's
 * TransmitLimitedQueue): at most one per member, a newer fact replacing an
 * older one; the least transmitted go first, newest first among equals, so
 * fresh news spreads before old news is repeated. Each is dropped after
 * `limit` transmissions.
 *
 * Buckets by transmit count keep a selection proportional to what it picks,
 * not to the queue length (a thousand joins fill it at once).
 */
export class BroadcastQueue {
  readonly #byId = new Map<string, Broadcast>();
  readonly #buckets: Broadcast[][] = [];
  readonly #live: number[] = [];

  get size(): number {
    return this.#byId.size;
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  /** Queues `update`, replacing any queued update about the same member. */
  enqueue(update: WireUpdate, bytes: number, since?: number): void {
    this.#invalidate(this.#byId.get(update.id));
    const entry: Broadcast = { id: update.id, update, bytes, since, transmits: 0, live: true };
    this.#byId.set(update.id, entry);
    this.#push(entry);
  }

  /** Drops the queued update about `id`, if any. */
  remove(id: string): void {
    this.#invalidate(this.#byId.get(id));
  }

  clear(): void {
    this.#byId.clear();
    this.#buckets.length = 0;
    this.#live.length = 0;
  }

  /**
   * Picks updates whose sizes add up to at most `budget`, without counting
   * them as sent (call `sent` once the message left).
   */
  select(budget: number, limit: number): Broadcast[] {
    const picked: Broadcast[] = [];
    let misfits = 0;
    for (let b = 0; b < this.#buckets.length && b < limit; b++) {
      const bucket = this.#buckets[b]!;
      for (let i = bucket.length - 1; i >= 0; i--) {
        const entry = bucket[i]!;
        if (!entry.live || entry.transmits !== b) {
          if (i === bucket.length - 1) bucket.pop();
          continue;
        }
        if (entry.bytes <= budget) {
          picked.push(entry);
          budget -= entry.bytes;
        } else if (++misfits > MAX_MISFITS) {
          return picked;
        }
      }
    }
    return picked;
  }

  /** Counts one transmission of each entry; drops those that reached `limit`. */
  sent(entries: readonly Broadcast[], limit: number): void {
    for (const entry of entries) {
      if (!entry.live) continue;
      this.#live[entry.transmits]!--;
      entry.transmits++;
      if (entry.transmits >= limit) {
        entry.live = false;
        this.#byId.delete(entry.id);
      } else {
        this.#push(entry);
      }
      this.#compact(entry.transmits - 1);
    }
  }

  #invalidate(entry: Broadcast | undefined): void {
    if (entry === undefined || !entry.live) return;
    entry.live = false;
    this.#live[entry.transmits]!--;
    this.#byId.delete(entry.id);
    this.#compact(entry.transmits);
  }

  #push(entry: Broadcast): void {
    const b = entry.transmits;
    while (this.#buckets.length <= b) {
      this.#buckets.push([]);
      this.#live.push(0);
    }
    this.#buckets[b]!.push(entry);
    this.#live[b]!++;
  }

  /** Rebuilds a bucket once stale references outnumber live ones. */
  #compact(b: number): void {
    const bucket = this.#buckets[b];
    if (bucket === undefined || bucket.length <= 2 * this.#live[b]! + 64) return;
    this.#buckets[b] = bucket.filter((e) => e.live && e.transmits === b);
  }
}
