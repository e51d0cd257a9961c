import type { Clock, Member, Move, OwnershipChange, Timer } from '@kvmesh/core';
import type { Contact } from './contact.js';
import type { KademliaNode } from './kademlia-node.js';
import { compareDistance, idOf } from './node-id.js';

/** Arrivals and departures gathered before they are announced as one ownership change. */
const GATHER_MS = 500;

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
    const moves: Move[] = [];
    const members = new Map<string, Member>([[self.id, this.#o.member(self)]]);
    const ranks = (key: string): string[] => dht.closestKnown(idOf(key), replicas).map((c) => c.id);
    for (const contact of arrived) {
      members.set(contact.id, this.#o.member(contact));
      moves.push({
        range: `keys whose ${replicas} closest nodes now include ${contact.id}`,
        contains: (key) => {
          const ids = ranks(key);
          return ids.includes(contact.id) && ids.includes(self.id);
        },
        from: [self.id],
        to: [self.id, contact.id],
      });
    }
    for (const gone of departed) {
      // The keys `gone` was a replica of lie around its id; their new replicas are the nodes closest to it.
      const candidates = dht.table.closest(gone.nodeId, 2 * replicas);
      for (const candidate of candidates) {
        members.set(candidate.id, this.#o.member(candidate));
        moves.push({
          range: `keys of ${gone.id} whose ${replicas} closest nodes now include ${candidate.id}`,
          contains: (key) => {
            const after = ranks(key);
            if (!after.includes(candidate.id) || !after.includes(self.id)) return false;
            // Before, `gone` ranked among them and `candidate` did not.
            const target = idOf(key);
            const before = [...dht.closestKnown(target, replicas + 1), gone]
              .sort((a, b) => compareDistance(a.nodeId, b.nodeId, target))
              .slice(0, replicas)
              .map((c) => c.id);
            return before.includes(gone.id) && !before.includes(candidate.id);
          },
          from: [self.id],
          to: [self.id, candidate.id],
        });
      }
    }
    if (moves.length === 0 && departed.length === 0) return;
    this.#o.emit({
      epoch: this.#o.epoch,
      moves,
      members: [...members.values()],
      departed: departed.map((c) => c.id),
    });
  }
}
