import { FRAME_HEADER_BYTES, isKvError } from '@kvmesh/core';
import type { Clock, Codec, Logger, Member, Rpc, Transport } from '@kvmesh/core';
import { BroadcastQueue, retransmitLimit } from './broadcast-queue.js';
import type { Broadcast } from './broadcast-queue.js';
import type { MemberList } from './member-list.js';
import type { SizedUpdate } from './member-sync.js';
import { MAX_AGE_MS, TO_WIRE, flattenMeta } from './messages.js';
import type { WireUpdate } from './messages.js';
import type { SwimOptions } from './options.js';
import { SizeEstimator } from './sizes.js';

export interface DisseminationComponents {
  readonly rpc: Rpc;
  readonly clock: Clock;
  readonly codec: Codec;
  readonly transport: Transport;
  readonly logger: Logger;
}

/**
 * Infection-style dissemination (SWIM section 4.1): membership updates wait
 * in a BroadcastQueue and ride on the probes this member sends anyway,
 * as many as fit in one datagram, each about retransmitMult * log N times.
 * Also turns members into wire updates (cached per member snapshot) with
 * an upper bound of their encoded size.
 */
export class Dissemination {
  readonly #c: DisseminationComponents;
  readonly #options: SwimOptions;
  readonly #list: MemberList;
  readonly #selfId: string;
  readonly #queue = new BroadcastQueue();
  readonly #estimate: SizeEstimator;
  readonly #sizes = new WeakMap<object, number>();
  readonly #wires = new WeakMap<Member, WireUpdate>();

  constructor(components: DisseminationComponents, options: SwimOptions, list: MemberList, selfId: string) {
    this.#c = components;
    this.#options = options;
    this.#list = list;
    this.#selfId = selfId;
    this.#estimate = new SizeEstimator(components.codec);
  }

  /** Updates waiting to be piggybacked. */
  get pending(): number {
    return this.#queue.size;
  }

  /** The member as a wire update; a suspicion carries its current age and confirmations. */
  wire(member: Member): WireUpdate {
    const wire = this.#base(member);
    if (member.state !== 'suspect') return wire;
    const suspicion = this.#list.get(member.id)?.suspicion;
    if (suspicion === undefined) return wire;
    return {
      ...wire,
      ageMs: Math.min(MAX_AGE_MS, this.#c.clock.now() - suspicion.since),
      confirmations: suspicion.confirmations,
    };
  }

  /** The member's current wire update with a bound of its size (ages do not change the bound). */
  sized(member: Member): SizedUpdate {
    return { update: this.wire(member), bytes: this.#sizeOf(this.#base(member)) };
  }

  /** Queues `update` for piggybacking; a suspicion's `since` keeps its age current in every copy. */
  enqueue(update: WireUpdate, since?: number): void {
    this.#queue.enqueue(update, this.#sizeOf(update), since);
  }

  clear(): void {
    this.#queue.clear();
  }

  /** Sends `base` with `first` and as many queued updates as fit in one datagram. */
  transmit(to: string, type: string, base: Record<string, unknown>, first: readonly WireUpdate[] = []): void {
    if (this.#queue.size === 0 && first.length === 0) {
      this.send(to, type, { ...base, updates: [] });
      return;
    }
    const limit = retransmitLimit(this.#options.retransmitMult, this.#list.liveCount);
    const maxBytes = Math.min(this.#options.maxMessageBytes, this.#c.transport.maxMessageBytes) - FRAME_HEADER_BYTES;
    let budget = maxBytes - this.#estimate.message(type, base);
    for (const update of first) budget -= this.#sizeOf(update);
    let picked = this.#queue.select(budget, limit);
    for (;;) {
      const updates = [...first, ...picked.map((b) => this.#current(b))];
      try {
        this.#c.rpc.send(to, type, { ...base, updates });
        this.#queue.sent(picked, limit);
        return;
      } catch (err) {
        // The estimate is an upper bound for the built-in codecs; a codec it misjudges gets fewer updates.
        if (!isKvError(err, 'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE') || picked.length === 0) {
          this.#c.logger.debug({ to, type, err: (err as Error).message }, 'swim: message not sent');
          return;
        }
        picked = picked.slice(0, picked.length >> 1);
      }
    }
  }

  /** Sends a one-way message as it is; a failure (a stopped transport) is only logged. */
  send(to: string, type: string, payload: Record<string, unknown>): void {
    try {
      this.#c.rpc.send(to, type, payload);
    } catch (err) {
      this.#c.logger.debug({ to, type, err: (err as Error).message }, 'swim: message not sent');
    }
  }

  #base(member: Member): WireUpdate {
    let wire = this.#wires.get(member);
    if (wire === undefined) {
      wire = {
        id: member.id,
        state: TO_WIRE[member.state],
        incarnation: member.incarnation,
        address: member.address,
        meta: member.state === 'alive' ? flattenMeta(member.meta) : [],
        from: member.state === 'suspect' || member.state === 'dead' ? this.#selfId : '',
        ageMs: 0,
        confirmations: 0,
      };
      this.#wires.set(member, wire);
    }
    return wire;
  }

  /** Upper bound of the update's size inside any message (cached per update object). */
  #sizeOf(update: WireUpdate): number {
    let bytes = this.#sizes.get(update);
    if (bytes === undefined) {
      bytes = this.#estimate.update(update);
      this.#sizes.set(update, bytes);
    }
    return bytes;
  }

  /** The update as it goes out now: a suspicion carries its current age and confirmations. */
  #current(broadcast: Broadcast): WireUpdate {
    if (broadcast.since === undefined) return broadcast.update;
    const suspicion = this.#list.get(broadcast.id)?.suspicion;
    return {
      ...broadcast.update,
      ageMs: Math.min(MAX_AGE_MS, this.#c.clock.now() - broadcast.since),
      confirmations: suspicion?.confirmations ?? broadcast.update.confirmations,
    };
  }
}
