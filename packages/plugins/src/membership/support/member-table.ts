import type { Member, MemberState } from '@kvmesh/core';
import { byId, freezeMember, memberChanged, type MemberEvents } from './member-events.js';

/**
 * The members a node knows, keyed by id, with a cached sorted snapshot.
 * Every change goes through `set` or `delete`, which emit the event the
 * Membership contract promises (once per changed member).
 */
export class MemberTable {
  readonly #members = new Map<string, Member>();
  #sorted: readonly Member[] | undefined;
  /** Events held back while `batch` runs: listeners see the whole change, never a table half applied. */
  #held: Array<[Member, MemberState | undefined]> | undefined;

  constructor(private readonly events: MemberEvents) {}

  get size(): number {
    return this.#members.size;
  }

  get(id: string): Member | undefined {
    return this.#members.get(id);
  }

  /** Every member, sorted by id; the same frozen array until something changes. */
  sorted(): readonly Member[] {
    this.#sorted ??= Object.freeze([...this.#members.values()].sort(byId));
    return this.#sorted;
  }

  /**
   * Runs `apply` (which sets and removes members) and emits its events only
   * once it returned, in order: a listener that reads the members while
   * handling one (a rebalancer planning the new view) sees every change of
   * the batch, not a view with part of a whole list applied that no member
   * ever had. Not reentrant.
   */
  batch(apply: () => void): void {
    const held: Array<[Member, MemberState | undefined]> = [];
    this.#held = held;
    try {
      apply();
    } finally {
      this.#held = undefined;
    }
    for (const [member, previous] of held) this.events.emit(member, previous);
  }

  /** Stores `member`; emits and returns true when it is new or differs from what was stored. */
  set(member: Member): boolean {
    const before = this.#members.get(member.id);
    if (before !== undefined && !memberChanged(before, member)) return false;
    const frozen = freezeMember(member);
    this.#members.set(frozen.id, frozen);
    this.#sorted = undefined;
    this.#emit(frozen, before?.state);
    return true;
  }

  /** Forgets a member without an event (the contract has no state for "unknown"). */
  delete(id: string): boolean {
    const removed = this.#members.delete(id);
    if (removed) this.#sorted = undefined;
    return removed;
  }

  /** Drops a member that is no longer listed at all, telling listeners it is gone (`left`). */
  remove(id: string): boolean {
    const before = this.#members.get(id);
    if (before === undefined) return false;
    this.delete(id);
    this.#emit(freezeMember({ ...before, state: 'left' }), before.state);
    return true;
  }

  #emit(member: Member, previous: MemberState | undefined): void {
    if (this.#held !== undefined) this.#held.push([member, previous]);
    else this.events.emit(member, previous);
  }
}
