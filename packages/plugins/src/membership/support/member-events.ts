import type { Logger, Member, MemberState, MembershipListener } from '@kvmesh/core';

/** The listener set of a membership strategy: listeners run synchronously, and one that throws cannot hurt the others. */
export class MemberEvents {
  readonly #listeners = new Set<MembershipListener>();

  constructor(private readonly logger: Logger) {}

  on(listener: MembershipListener): () => void {
    // Wrapped so that subscribing the same function twice still yields two independent subscriptions.
    const entry: MembershipListener = (event) => listener(event);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  emit(member: Member, previous: MemberState | undefined): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener({ member, previous });
      } catch (err) {
        this.logger.error({ member: member.id, err: (err as Error).message }, 'membership listener threw');
      }
    }
  }
}

/** True when two snapshots of a member differ in anything a listener could care about. */
export function memberChanged(a: Member, b: Member): boolean {
  if (a.state !== b.state || a.incarnation !== b.incarnation || a.address !== b.address) return true;
  const ka = Object.keys(a.meta);
  const kb = Object.keys(b.meta);
  return ka.length !== kb.length || ka.some((k) => a.meta[k] !== b.meta[k]);
}

/** A frozen Member, its meta frozen too. */
export function freezeMember(member: Member): Member {
  return Object.freeze({ ...member, meta: Object.freeze({ ...member.meta }) });
}

export const byId = (a: Member, b: Member): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
