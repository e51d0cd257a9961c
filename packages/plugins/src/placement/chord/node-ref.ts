import type { Member } from '@kvmesh/core';
import type { Ident } from './ring.js';

/** A node of the ring as this node knows it: its place and the Member the KV service reaches it by. */
export interface NodeRef {
  readonly ident: Ident;
  readonly id: string;
  readonly address: string;
  readonly member: Member;
}

/** A node as it travels in `kvmesh.placement.chord` messages. */
export interface WireNode {
  readonly id: string;
  readonly address: string;
  readonly ident: string;
  /** The node's HTTP API base URL (Member meta `api`). */
  readonly api: string;
  readonly role: string;
}

export function nodeRef(wire: WireNode): NodeRef {
  const meta: Record<string, string> = {};
  if (wire.api !== '') meta['api'] = wire.api;
  if (wire.role !== '') meta['role'] = wire.role;
  const member: Member = Object.freeze({
    id: wire.id,
    address: wire.address,
    state: 'alive',
    incarnation: 0,
    meta: Object.freeze(meta),
  });
  return Object.freeze({ ident: wire.ident, id: wire.id, address: wire.address, member });
}

export function toWire(ref: NodeRef): WireNode {
  return {
    id: ref.id,
    address: ref.address,
    ident: ref.ident,
    api: ref.member.meta['api'] ?? '',
    role: ref.member.meta['role'] ?? '',
  };
}

/**
 * One NodeRef per node id, so the lists and fingers share objects and the
 * Members handed to the KV service keep their identity. A node seen with
 * another address or position (it restarted elsewhere) replaces its entry.
 */
export class NodeDirectory {
  readonly #byId = new Map<string, NodeRef>();
  readonly #wire = new WeakMap<NodeRef, WireNode>();

  readonly #selfId: string;

  constructor(self: NodeRef) {
    this.#selfId = self.id;
    this.#byId.set(self.id, self);
  }

  /** The NodeRef of `wire`, or undefined when it is malformed (no id, address or position of the right width). */
  intern(wire: WireNode, identDigits: number): NodeRef | undefined {
    if (wire.id === '' || wire.address === '' || wire.ident.length !== identDigits) return undefined;
    const known = this.#byId.get(wire.id);
    if (known !== undefined && known.address === wire.address && known.ident === wire.ident) {
      if ((known.member.meta['api'] ?? '') === wire.api) return known;
    }
    const ref = nodeRef(wire);
    this.#byId.set(wire.id, ref);
    return ref;
  }

  /**
   * Forgets every node but `keep` (the ones in this node's lists and
   * fingers): lookups name many nodes in passing, and a directory that kept
   * them all would grow with every lookup.
   */
  prune(keep: Iterable<NodeRef>): void {
    const self = this.#byId.get(this.#selfId);
    this.#byId.clear();
    if (self !== undefined) this.#byId.set(self.id, self);
    for (const ref of keep) this.#byId.set(ref.id, ref);
  }

  get size(): number {
    return this.#byId.size;
  }

  wire(ref: NodeRef): WireNode {
    let wire = this.#wire.get(ref);
    if (wire === undefined) {
      wire = toWire(ref);
      this.#wire.set(ref, wire);
    }
    return wire;
  }
}
