import type { Clock, Member, Move, OwnershipChange, Timer } from '@kvmesh/core';
import type { Contact } from './contact.js';
import type { KademliaNode } from './kademlia-node.js';
import { compareDistance, idOf } from './node-id.js';

/** Arrivals and departures gathered before they are announced as one ownership change. */
const GATHER_MS = 500;
/** Keys whose newcomers one change remembers (past it the memo starts again). */
const MEMO_KEYS = 100_000;
const NONE: ReadonlySet<string> = new Set();

export interface ReplicaMovesOptions {
  readonly dht: KademliaNode;
  readonly clock: Clock;
  /** Copies of each key (mode replicate). */
  readonly replicas: number;
  readonly epoch: number;
  readonly member: (contact: Contact) => Member;
  readonly emit: (change: OwnershipChange) => void;
}

/**
 * Mode replicate's data movement (§2.5: a node that learns of a node closer
 * to some of its keys hands them over; a key whose holder is gone gets a
 * new one), announced as routed ownership changes that core's mover runs:
 * - a node enters this node's routing table: every key this node holds for
 *   which the newcomer is now among the `replicas` closest is copied to it;
 * - a node leaves it: for the keys it held a copy of, the node that now
 *   ranks among the `replicas` closest in its place gets a copy from every
 *   remaining replica. Those newcomers are among the nodes closest to the one
 *   that left, so one move per such candidate.
 * Nothing is purged: a node that fell out of a key's replica set keeps an
 * extra copy, which no read asks for.
 */
export class ReplicaMoves {
  readonly #o: ReplicaMovesOptions;
  #arrived = new Map<string, Contact>();
  #departed = new Map<string, Contact>();
  #timer: Timer | undefined;
  #stopped = false;

  constructor(options: ReplicaMovesOptions) {
    this.#o = options;
  }

  added(contact: Contact): void {
    this.#departed.delete(contact.id);
    this.#arrived.set(contact.id, contact);
    this.#schedule();
  }

  removed(contact: Contact): void {
    this.#arrived.delete(contact.id);
    this.#departed.set(contact.id, contact);
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, GATHER_MS);
  }

  #flush(): void {
    const { dht, replicas } = this.#o;
    const self = dht.self;
    const arrived = [...this.#arrived.values()].filter((c) => dht.table.has(c.id));
    const departed = [...this.#departed.values()].filter((c) => !dht.table.has(c.id));
    this.#arrived.clear();
    this.#departed.clear();
    if (arrived.length === 0 && departed.length === 0) return;
    const arrivedIds = new Set(arrived.map((c) => c.id));
    // Who ranks among a key's closest now and did not before this change (only for keys this node
    // keeps); every move of the change asks, so it is worked out once per key.
    const memo = new Map<string, ReadonlySet<string>>();
    const newcomers = (key: string): ReadonlySet<string> => {
      let found = memo.get(key);
      if (found !== undefined) return found;
      const target = idOf(key);
      const after = dht.closestKnown(target, replicas);
      if (!after.some((c) => c.id === self.id)) {
        found = NONE;
      } else {
        const before = [...dht.closestKnown(target, replicas + arrived.length), ...departed]
          .filter((c) => !arrivedIds.has(c.id))
          .sort((a, b) => compareDistance(a.nodeId, b.nodeId, target))
          .slice(0, replicas);
        const was = new Set(before.map((c) => c.id));
        found = new Set(after.filter((c) => !was.has(c.id)).map((c) => c.id));
      }
      if (memo.size >= MEMO_KEYS) memo.clear();
      memo.set(key, found);
      return found;
    };
    // Newcomers are the arrivals, and, for a departed node, the nodes closest to it (the keys it held
    // lie around its id, and their next closest nodes around it too).
    const candidates = new Map<string, Contact>(arrived.map((c) => [c.id, c]));
    for (const gone of departed) {
      for (const c of dht.table.closest(gone.nodeId, 2 * replicas)) candidates.set(c.id, c);
    }
    candidates.delete(self.id);
    const members: Member[] = [this.#o.member(self)];
    const moves: Move[] = [];
    for (const candidate of candidates.values()) {
      members.push(this.#o.member(candidate));
      moves.push({
        range: `keys whose ${replicas} closest nodes now include ${candidate.id}`,
        contains: (key) => newcomers(key).has(candidate.id),
        from: [self.id],
        to: [self.id, candidate.id],
      });
    }
    this.#o.emit({ epoch: this.#o.epoch, moves, members, departed: departed.map((c) => c.id) });
  }
}
