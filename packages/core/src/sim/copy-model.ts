import type { OwnershipChange } from '../contracts/placement.js';
import type { SimNode } from './placement-nodes.js';

interface PendingCopy {
  readonly key: string;
  readonly from: string;
  readonly to: string;
  /** The sender leaves the range: it drops its copy once every new owner has it. */
  readonly purge: boolean;
}

/**
 * Where copies of the followed keys are, moved as core's data mover would
 * move them on the ownership changes the nodes announce: an announcing node
 * named in a move's `from` that holds a key of it copies it to the new owners
 * (to \ from, or all of `to` when it leaves the range) once they admit it for
 * writing, and drops its copy when it is not in `to` and a new owner has it.
 * Copies a target refuses are tried again every period while the sender runs.
 */
export class CopyModel {
  readonly #holders = new Map<string, Set<string>>();
  readonly #byNode = new Map<string, Set<string>>();
  #pending: PendingCopy[] = [];

  constructor(private readonly node: (id: string) => SimNode | undefined) {}

  get size(): number {
    return this.#holders.size;
  }

  has(key: string): boolean {
    return this.#holders.has(key);
  }

  holders(key: string): string[] {
    return [...(this.#holders.get(key) ?? [])];
  }

  place(key: string, ids: readonly string[]): void {
    for (const id of ids) this.#add(key, id);
  }

  onChange(announcer: SimNode, change: OwnershipChange): void {
    if (!announcer.running || this.#holders.size === 0) return;
    const self = announcer.member.id;
    const held = this.#byNode.get(self);
    if (held === undefined || held.size === 0) return;
    const fresh: PendingCopy[] = [];
    for (const move of change.moves) {
      if (!move.from.includes(self)) continue;
      const purge = !move.to.includes(self);
      const targets = purge ? move.to.filter((id) => id !== self) : move.to.filter((id) => !move.from.includes(id));
      for (const key of [...held]) {
        if (!move.contains(key)) continue;
        for (const to of targets) fresh.push({ key, from: self, to, purge });
      }
    }
    // The new copies go at once when their targets admit them; refused ones wait for the next period's retry.
    this.#deliver(fresh);
  }

  /** Tries the copies that were refused again (once per period). */
  retry(): void {
    const pending = this.#pending;
    this.#pending = [];
    this.#deliver(pending);
  }

  /** Delivers the copies whose sender still runs and holds the key and whose target admits it; keeps the others. */
  #deliver(copies: readonly PendingCopy[]): void {
    const left: PendingCopy[] = [];
    const purged: { key: string; from: string }[] = [];
    for (const copy of copies) {
      const from = this.node(copy.from);
      const to = this.node(copy.to);
      if (from === undefined || !from.running || !this.#holders.get(copy.key)?.has(copy.from)) continue;
      if (to === undefined || !to.running) continue;
      if (to.placement.admit(copy.key, 'write', to.placement.epoch).kind !== 'own') {
        left.push(copy);
        continue;
      }
      this.#add(copy.key, copy.to);
      if (copy.purge) purged.push(copy);
    }
    this.#pending.push(...left);
    // An old owner drops its copy once every new owner it sends to has it.
    for (const { key, from } of purged) {
      if (!this.#pending.some((c) => c.key === key && c.from === from)) this.#remove(key, from);
    }
  }

  #add(key: string, id: string): void {
    let holders = this.#holders.get(key);
    if (holders === undefined) this.#holders.set(key, (holders = new Set()));
    holders.add(id);
    let held = this.#byNode.get(id);
    if (held === undefined) this.#byNode.set(id, (held = new Set()));
    held.add(key);
  }

  #remove(key: string, id: string): void {
    this.#holders.get(key)?.delete(id);
    this.#byNode.get(id)?.delete(key);
  }
}
