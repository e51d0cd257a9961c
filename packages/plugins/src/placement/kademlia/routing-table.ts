import type { Contact } from './contact.js';
import { ID_BITS, commonPrefixBits, compareDistance } from './node-id.js';

/**
 * Consecutive failed requests after which a contact leaves its bucket even
 * when no replacement waits for its slot (paper §4.1 keeps stale contacts
 * while nothing better is known; we drop them after a few misses so a crash
 * of many nodes at once is repaired by the next refresh).
 */
export const STALE_AFTER_FAILURES = 3;

interface Slot {
  contact: Contact;
  failures: number;
  /** The first 32 bits of the contact's id (as an int32), so most distance comparisons are one XOR. */
  readonly head: number;
}

function head32(id: Uint8Array): number {
  return (id[0]! << 24) | (id[1]! << 16) | (id[2]! << 8) | id[3]!;
}

/** One k-bucket: contacts sorted least-recently seen first, and the replacement cache of §4.1. */
interface Bucket {
  readonly slots: Slot[];
  /**
   * `slots[i].head` at index i, in one packed array: scans over many
   * buckets (closest, seen) read these and touch a slot only when its head
   * matters, instead of one object per contact, which a large table spreads
   * over memory.
   */
  readonly heads: number[];
  /** `slots[i].contact` at index i, for the same scans. */
  readonly contacts: Contact[];
  /** Contacts seen while the bucket was full, most recently seen last (at most k). */
  readonly replacements: Contact[];
  /** Whether the least-recently seen contact is being pinged because a newcomer waits. */
  pinging: boolean;
  /** When a lookup last went through this bucket's range (injected clock, ms). */
  touchedMs: number;
}

export interface RoutingTableOptions {
  readonly self: Contact;
  /** Bucket size (the paper's k). */
  readonly k: number;
  /** Pings a contact; resolves true when it answered. Used before evicting a bucket's oldest contact. */
  readonly ping: (contact: Contact) => Promise<boolean>;
  readonly now: () => number;
  /** Called when a contact enters the table (for discovery events). */
  readonly onAdded?: (contact: Contact) => void;
  /** Called when a contact leaves the table (it stopped answering, or was removed). */
  readonly onRemoved?: (contact: Contact) => void;
  /** Called when a contact whose requests failed is heard from again (it was cut off, or restarted). */
  readonly onRecovered?: (contact: Contact) => void;
}

/** What one bucket holds, for `describe()`. */
export interface BucketSummary {
  readonly prefix: number;
  readonly contacts: number;
  readonly replacements: number;
  /** Member ids of the contacts, least-recently seen first. */
  readonly members: readonly string[];
}

/**
 * The routing table of Maymounkov & Mazières (§2.2): one k-bucket per length
 * of the common prefix with this node's id (256 of them, created on first
 * use), each least-recently seen first. A contact seen again moves to the
 * tail; a newcomer to a full bucket waits in the replacement cache while the
 * least-recently seen contact is pinged, and takes its slot only if that
 * contact does not answer (ping before evict: long-lived nodes stay).
 *
 * Synchronous and not re-entrant; the pings run in the background.
 */
export class RoutingTable {
  readonly #o: RoutingTableOptions;
  readonly #buckets: (Bucket | undefined)[] = new Array<Bucket | undefined>(ID_BITS).fill(undefined);
  readonly #byId = new Map<string, number>();
  /** Prefix of the deepest bucket that ever held a contact (-1: none); closest() scans no deeper. */
  #deepest = -1;
  /** Scratch space of closest() (synchronous, so one per table). */
  readonly #best: Contact[] = [];
  readonly #bestHead: number[] = [];

  constructor(options: RoutingTableOptions) {
    this.#o = options;
  }

  /** Contacts in the table (replacements not counted). */
  get size(): number {
    return this.#byId.size;
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  /** The contact with member id `id`, if the table holds it. */
  get(id: string): Contact | undefined {
    const index = this.#byId.get(id);
    if (index === undefined) return undefined;
    return this.#buckets[index]!.slots.find((s) => s.contact.id === id)?.contact;
  }

  /** Every contact, bucket by bucket from the farthest. */
  contacts(): Contact[] {
    const out: Contact[] = [];
    for (const bucket of this.#buckets) if (bucket !== undefined) for (const s of bucket.slots) out.push(s.contact);
    return out;
  }

  /**
   * A message from (or an answer of) `contact` arrived: it moves to the tail
   * of its bucket, or joins it (§2.2), or waits as a replacement while the
   * bucket's least-recently seen contact is pinged.
   */
  seen(contact: Contact): void {
    if (contact.id === this.#o.self.id) return;
    const prefix = commonPrefixBits(this.#o.self.nodeId, contact.nodeId);
    if (prefix >= ID_BITS) return;
    const bucket = this.#bucket(prefix);
    const head = head32(contact.nodeId);
    const at = indexIn(bucket, head, contact.id);
    if (at >= 0) {
      const failures = bucket.slots[at]!.failures;
      removeAt(bucket, at);
      append(bucket, { contact, failures: 0, head });
      if (failures > 0) this.#o.onRecovered?.(contact);
      return;
    }
    if (bucket.slots.length < this.#o.k) {
      this.#insert(prefix, bucket, contact);
      return;
    }
    const waiting = bucket.replacements.findIndex((c) => c.id === contact.id);
    if (waiting >= 0) bucket.replacements.splice(waiting, 1);
    bucket.replacements.push(contact);
    if (bucket.replacements.length > this.#o.k) bucket.replacements.shift();
    this.#pingOldest(prefix, bucket);
  }

  /**
   * A request to `contact` failed (no answer, unreachable). It gives up its
   * slot to a waiting replacement at once, or after STALE_AFTER_FAILURES
   * misses in a row when none waits.
   */
  failed(contact: Contact): void {
    const index = this.#byId.get(contact.id);
    if (index === undefined) return;
    const bucket = this.#buckets[index]!;
    const slot = bucket.slots.find((s) => s.contact.id === contact.id);
    if (slot === undefined) return;
    slot.failures++;
    if (bucket.replacements.length > 0 || slot.failures >= STALE_AFTER_FAILURES) this.#evict(index, bucket, slot);
  }

  /** Removes a contact known to be gone (it left, or a membership declared it dead). */
  remove(id: string): void {
    const index = this.#byId.get(id);
    if (index === undefined) return;
    const bucket = this.#buckets[index]!;
    const slot = bucket.slots.find((s) => s.contact.id === id);
    if (slot !== undefined) this.#evict(index, bucket, slot);
  }

  /**
   * The `n` contacts closest to `target` by XOR distance, closest first
   * (this node not included; `exclude` left out).
   */
  closest(target: Uint8Array, n: number, exclude?: string): Contact[] {
    // Buckets rank by distance as a whole: with p the common prefix of this
    // node and the target, bucket p's contacts share more than p bits with the
    // target, every deeper bucket's exactly p, and bucket i < p's exactly i.
    // So the closest come from bucket p, then all deeper buckets together, then
    // p-1, p-2, ...: each group in turn gives its closest until n are found,
    // and no group is sorted past what is still wanted.
    if (!(n > 0)) return [];
    const p = commonPrefixBits(this.#o.self.nodeId, target);
    const out: Contact[] = [];
    const targetHead = head32(target);
    const deepest = this.#deepest;
    if (p < ID_BITS && p <= deepest) {
      this.#take(out, n, p, p + 1, target, targetHead, exclude);
      if (out.length < n && p < deepest) this.#take(out, n, p + 1, deepest + 1, target, targetHead, exclude);
    }
    for (let i = Math.min(p, deepest + 1) - 1; i >= 0 && out.length < n; i--) {
      if (this.#buckets[i] !== undefined) this.#take(out, n, i, i + 1, target, targetHead, exclude);
    }
    if (out.length > n) out.length = n;
    return out;
  }

  /**
   * Appends to `out` the closest contacts of buckets [from, to) to `target`,
   * closest first, until `out` holds `n`: an insertion into the closest found
   * so far that reads a contact only when its first id bits say it may enter.
   */
  #take(
    out: Contact[],
    n: number,
    from: number,
    to: number,
    target: Uint8Array,
    targetHead: number,
    exclude: string | undefined,
  ): void {
    const wanted = n - out.length;
    const best = this.#best;
    const bestHead = this.#bestHead;
    let size = 0;
    for (let i = from; i < to; i++) {
      const bucket = this.#buckets[i];
      if (bucket === undefined) continue;
      const heads = bucket.heads;
      const contacts = bucket.contacts;
      for (let j = 0; j < heads.length; j++) {
        const d = (heads[j]! ^ targetHead) >>> 0;
        if (size === wanted && d > bestHead[size - 1]!) continue;
        const c = contacts[j]!;
        if (c.id === exclude) continue;
        let at = size;
        if (at === wanted) {
          if (!closer(d, c, best, bestHead, at - 1, target)) continue;
          at--;
        } else {
          size++;
        }
        while (at > 0 && closer(d, c, best, bestHead, at - 1, target)) {
          best[at] = best[at - 1]!;
          bestHead[at] = bestHead[at - 1]!;
          at--;
        }
        best[at] = c;
        bestHead[at] = d;
      }
    }
    for (let j = 0; j < size; j++) out.push(best[j]!);
  }

  /**
   * Whether this node is likely to know the whole overlay: fewer than k
   * contacts and no bucket ever full. In an overlay of at most k nodes a
   * joining node's own lookup reaches every node (its k closest are all of
   * them), so every table holds every node and a lookup could learn nothing
   * new: a small cluster answers from its table without asking.
   */
  knowsAll(): boolean {
    if (this.#byId.size >= this.#o.k) return false;
    for (const bucket of this.#buckets) if (bucket !== undefined && bucket.replacements.length > 0) return false;
    return true;
  }

  /** A lookup went through the range of the bucket `target` falls in. */
  touch(target: Uint8Array): void {
    const prefix = commonPrefixBits(this.#o.self.nodeId, target);
    if (prefix < ID_BITS) this.#bucket(prefix).touchedMs = this.#o.now();
  }

  /**
   * Prefixes of the buckets no lookup went through for `intervalMs`, up to
   * the deepest bucket holding a contact (nearer buckets are empty ranges
   * around this node's own id, refreshed by its own lookup).
   */
  staleBuckets(intervalMs: number): number[] {
    const now = this.#o.now();
    let deepest = -1;
    for (let i = ID_BITS - 1; i >= 0; i--) {
      if ((this.#buckets[i]?.slots.length ?? 0) > 0) {
        deepest = i;
        break;
      }
    }
    const out: number[] = [];
    for (let i = 0; i <= deepest; i++) {
      const touched = this.#buckets[i]?.touchedMs ?? Number.NEGATIVE_INFINITY;
      if (now - touched >= intervalMs) out.push(i);
    }
    return out;
  }

  /** Prefix of the bucket of the closest contact to this node (-1 when the table is empty). */
  deepestPrefix(): number {
    for (let i = ID_BITS - 1; i >= 0; i--) if ((this.#buckets[i]?.slots.length ?? 0) > 0) return i;
    return -1;
  }

  describe(): BucketSummary[] {
    const out: BucketSummary[] = [];
    this.#buckets.forEach((bucket, prefix) => {
      if (bucket !== undefined && (bucket.slots.length > 0 || bucket.replacements.length > 0)) {
        out.push({
          prefix,
          contacts: bucket.slots.length,
          replacements: bucket.replacements.length,
          members: bucket.contacts.map((c) => c.id),
        });
      }
    });
    return out;
  }

  #bucket(prefix: number): Bucket {
    let bucket = this.#buckets[prefix];
    if (bucket === undefined) {
      bucket = {
        slots: [],
        heads: [],
        contacts: [],
        replacements: [],
        pinging: false,
        touchedMs: Number.NEGATIVE_INFINITY,
      };
      this.#buckets[prefix] = bucket;
    }
    return bucket;
  }

  #insert(prefix: number, bucket: Bucket, contact: Contact): void {
    append(bucket, { contact, failures: 0, head: head32(contact.nodeId) });
    if (prefix > this.#deepest) this.#deepest = prefix;
    this.#byId.set(contact.id, prefix);
    this.#o.onAdded?.(contact);
  }

  #evict(prefix: number, bucket: Bucket, slot: Slot): void {
    const at = bucket.slots.indexOf(slot);
    if (at >= 0) removeAt(bucket, at);
    this.#byId.delete(slot.contact.id);
    this.#o.onRemoved?.(slot.contact);
    const replacement = bucket.replacements.pop();
    if (replacement !== undefined) this.#insert(prefix, bucket, replacement);
  }

  /** Pings the least-recently seen contact of a full bucket: it stays if it answers, else the newest replacement takes its slot. */
  #pingOldest(prefix: number, bucket: Bucket): void {
    if (bucket.pinging) return;
    const oldest = bucket.slots[0];
    if (oldest === undefined) return;
    bucket.pinging = true;
    void this.#o.ping(oldest.contact).then(
      (alive) => this.#pinged(prefix, bucket, oldest, alive),
      () => this.#pinged(prefix, bucket, oldest, false),
    );
  }

  #pinged(prefix: number, bucket: Bucket, oldest: Slot, alive: boolean): void {
    bucket.pinging = false;
    if (!bucket.slots.includes(oldest)) return;
    if (alive) {
      // It answered: it moves to the tail (seen), and the newcomers keep waiting.
      removeAt(bucket, bucket.slots.indexOf(oldest));
      oldest.failures = 0;
      append(bucket, oldest);
    } else {
      this.#evict(prefix, bucket, oldest);
    }
  }
}

/** Whether `c` (whose first 32 id bits are at distance `d`) is closer to `target` than `best[k]`: ties of those bits compare the whole ids. */
function closer(d: number, c: Contact, best: Contact[], bestHead: number[], k: number, target: Uint8Array): boolean {
  return d < bestHead[k]! || (d === bestHead[k]! && compareDistance(c.nodeId, best[k]!.nodeId, target) < 0);
}

/** Index of member `id` in the bucket (its id's first 32 bits are `head`), or -1. */
function indexIn(bucket: Bucket, head: number, id: string): number {
  const heads = bucket.heads;
  for (let j = 0; j < heads.length; j++) if (heads[j] === head && bucket.slots[j]!.contact.id === id) return j;
  return -1;
}

function append(bucket: Bucket, slot: Slot): void {
  bucket.slots.push(slot);
  bucket.heads.push(slot.head);
  bucket.contacts.push(slot.contact);
}

function removeAt(bucket: Bucket, at: number): void {
  bucket.slots.splice(at, 1);
  bucket.heads.splice(at, 1);
  bucket.contacts.splice(at, 1);
}
