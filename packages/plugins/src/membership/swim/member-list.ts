import type { Member, Random } from '@kvmesh/core';
import { idHash, ringKey, ringPlaces } from './schedule.js';
import type { ScheduledRound } from './schedule.js';
import type { Suspicion } from './suspicion.js';

/** What this node knows about one member. */
export interface MemberRecord {
  readonly member: Member;
  /** Local time of the last state change (dead and left members are forgotten after a while). */
  readonly changedAt: number;
  /** Running while the member is suspect. */
  suspicion: Suspicion | undefined;
}

const byId = (a: Member, b: Member): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export const isLive = (member: Member): boolean => member.state === 'alive' || member.state === 'suspect';

/**
 * The member table: records by id, a sorted snapshot for `members()`, and
 * the randomized round-robin probe order of the SWIM paper (section 4.3):
 * every live member is probed once per round, rounds are shuffled, and a
 * new member is inserted at a random place of the current round, so the
 * worst-case time to probe a given member is bounded by 2N - 1 periods.
 */
export class MemberList {
  readonly #selfId: string;
  readonly #random: Random;
  readonly #records = new Map<string, MemberRecord>();
  #sorted: readonly Member[] | undefined;
  #order: string[] = [];
  #next = 0;
  #live = 0;
  /** Bumped by every change, so a cached scheduled target is recomputed after one. */
  #version = 0;
  #scheduled: { readonly round: number; readonly version: number; readonly id: string | undefined } | undefined;
  readonly #hashes = new Map<string, number>();
  /** Ids in the order they were first stored; a sync cursor is a position in it. */
  #log: string[] = [];
  readonly #logIndex = new Map<string, number>();

  constructor(selfId: string, random: Random) {
    this.#selfId = selfId;
    this.#random = random;
  }

  get size(): number {
    return this.#records.size;
  }

  /** Alive and suspect members, self included: the N of the timeouts and retransmit limits. */
  get liveCount(): number {
    return this.#live;
  }

  get(id: string): MemberRecord | undefined {
    return this.#records.get(id);
  }

  values(): IterableIterator<MemberRecord> {
    return this.#records.values();
  }

  /** Stores the record of `record.member.id`, replacing the old one. */
  set(record: MemberRecord): void {
    const id = record.member.id;
    const old = this.#records.get(id);
    if (old !== undefined && isLive(old.member)) this.#live--;
    if (isLive(record.member)) this.#live++;
    this.#records.set(id, record);
    this.#sorted = undefined;
    this.#version++;
    if (old === undefined) {
      this.#hashes.set(id, idHash(id));
      this.#logIndex.set(id, this.#log.length);
      this.#log.push(id);
      if (id !== this.#selfId) this.#insertIntoRound(id);
    }
  }

  delete(id: string): void {
    const old = this.#records.get(id);
    if (old === undefined) return;
    if (isLive(old.member)) this.#live--;
    this.#records.delete(id);
    this.#logIndex.delete(id);
    this.#hashes.delete(id);
    this.#sorted = undefined;
    this.#version++;
    if (this.#log.length > 2 * this.#records.size + 64) this.#compactLog();
  }

  /** Length of the member log: the cursor after its last entry. */
  get logLength(): number {
    return this.#log.length;
  }

  /** The record at `position` of the member log, or undefined when that entry was forgotten since. */
  atLog(position: number): MemberRecord | undefined {
    const id = this.#log[position];
    if (id === undefined || this.#logIndex.get(id) !== position) return undefined;
    return this.#records.get(id);
  }

  /** Every member sorted by id (cached until the next change). */
  members(): readonly Member[] {
    this.#sorted ??= Object.freeze([...this.#records.values()].map((r) => r.member).sort(byId));
    return this.#sorted;
  }

  /** The next member to probe (alive or suspect, not self), or undefined when there is none. */
  nextProbeTarget(): MemberRecord | undefined {
    for (let tries = 0; tries <= this.#order.length + 1; tries++) {
      if (this.#next >= this.#order.length) {
        this.#order = this.#random.shuffle(
          [...this.#records.values()]
            .filter((r) => r.member.id !== this.#selfId && isLive(r.member))
            .map((r) => r.member.id),
        );
        this.#next = 0;
        if (this.#order.length === 0) return undefined;
      }
      const record = this.#records.get(this.#order[this.#next++]!);
      if (record !== undefined && isLive(record.member)) return record;
    }
    return undefined;
  }

  /**
   * This member's successor (alive or suspect, not self) on the ring of the
   * live members' places in round `at` (ringPlaces), ordered by (key, id):
   * the target of a scheduled round (see schedule.ts). Members whose lists
   * agree each get another successor, so the round probes every alive
   * member once and every suspect at most SUSPECT_PLACES times.
   */
  scheduledProbeTarget(at: ScheduledRound): MemberRecord | undefined {
    const cached = this.#scheduled;
    if (cached === undefined || cached.round !== at.round || cached.version !== this.#version) {
      this.#scheduled = { round: at.round, version: this.#version, id: this.#successor(at) };
    }
    const id = this.#scheduled!.id;
    return id === undefined ? undefined : this.#records.get(id);
  }

  /** Up to `count` distinct random alive members other than self and `exclude`. */
  randomAlive(count: number, exclude: string): MemberRecord[] {
    const picked: MemberRecord[] = [];
    if (count <= 0 || this.#order.length === 0) return picked;
    const seen = new Set<string>();
    for (let tries = 0; tries < 4 * count + 8 && picked.length < count; tries++) {
      const id = this.#order[this.#random.int(this.#order.length)]!;
      if (id === exclude || seen.has(id)) continue;
      seen.add(id);
      const record = this.#records.get(id);
      if (record?.member.state === 'alive') picked.push(record);
    }
    return picked;
  }

  /**
   * A random member declared dead (not left) that is still remembered, or
   * undefined: push-pull tries one now and then, so that two sides of a
   * healed split, each holding the other dead, find each other again.
   */
  randomDead(): MemberRecord | undefined {
    const dead = [...this.#records.values()].filter((r) => r.member.state === 'dead' && r.member.id !== this.#selfId);
    return dead.length === 0 ? undefined : dead[this.#random.int(dead.length)];
  }

  #successor(at: ScheduledRound): string | undefined {
    const own = ringKey(this.#hashes.get(this.#selfId) ?? idHash(this.#selfId), at.epoch);
    const places: number[] = [];
    let best: string | undefined;
    let bestDistance = Infinity;
    for (const record of this.#records.values()) {
      const id = record.member.id;
      if (id === this.#selfId || !isLive(record.member)) continue;
      for (const place of ringPlaces(this.#hashes.get(id)!, record.member.state === 'suspect', at, places)) {
        const gap = (place - own) >>> 0;
        // Same key as ours: ahead of us when its id sorts after ours, else a whole turn away.
        const distance = gap === 0 && id < this.#selfId ? 2 ** 32 : gap;
        if (distance < bestDistance || (distance === bestDistance && best !== undefined && id < best)) {
          best = id;
          bestDistance = distance;
        }
      }
    }
    return best;
  }

  /** Drops forgotten entries; cursors handed out before point past entries they did not see, which a later sync repairs. */
  #compactLog(): void {
    this.#log = this.#log.filter((id, i) => this.#logIndex.get(id) === i);
    this.#log.forEach((id, i) => this.#logIndex.set(id, i));
  }

  #insertIntoRound(id: string): void {
    this.#order.push(id);
    const last = this.#order.length - 1;
    const at = this.#next + this.#random.int(last - this.#next + 1);
    [this.#order[at], this.#order[last]] = [this.#order[last]!, this.#order[at]!];
  }
}
