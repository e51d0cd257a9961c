import type { Member } from '@kvmesh/core';
import { byId, freezeMember, memberChanged, type MemberEvents } from './member-events.js';

/**
 * The members a node knows, keyed by id, with a cached sorted snapshot.
 * Every change goes through `set` or `delete`, which emit the event the
 * Membership contract promises (once per changed member).
 */
export class MemberTable {
  readonly #members = new Map<string, Member>();
  #sorted: readonly Member[] | undefined;

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

  /** Stores `member`; emits and returns true when it is new or differs from what was stored. */
  set(member: Member): boolean {
    const before = this.#members.get(member.id);
    if (before !== undefined && !memberChanged(before, member)) return false;
    const frozen = freezeMember(member);
    this.#members.set(frozen.id, frozen);
    this.#sorted = undefined;
    this.events.emit(frozen, before?.state);
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
    this.events.emit(freezeMember({ ...before, state: 'left' }), before.state);
    return true;
  }
}
