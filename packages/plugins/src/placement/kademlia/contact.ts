import { idOf } from './node-id.js';

/**
 * A node of the overlay as its peers know it: its member id (the node id of
 * its config), its transport URI, and its Kademlia id, which is SHA-256 of
 * the member id, so a contact names itself by what every node can check.
 */
export interface Contact {
  readonly id: string;
  readonly address: string;
  readonly nodeId: Uint8Array;
}

/** A contact as it travels (`kvmesh.placement.kademlia.Contact`): the Kademlia id is computed, not sent. */
export interface WireContact {
  readonly id: string;
  readonly address: string;
}

// Computing SHA-256 of an id is cheap, but lookups see the same contacts over and over, and a
// simulator runs thousands of nodes in one process whose tables share them: contacts are interned.
// By id, then address: no key string is built per contact received.
const interned = new Map<string, Map<string, Contact>>();
const MAX_INTERNED = 200_000;
let internedCount = 0;

/** The contact for member `id` at `address` (one shared, frozen object per pair). */
export function contactOf(id: string, address: string): Contact {
  let byAddress = interned.get(id);
  let contact = byAddress?.get(address);
  if (contact === undefined) {
    contact = Object.freeze({ id, address, nodeId: idOf(id) });
    if (internedCount >= MAX_INTERNED) {
      interned.clear();
      internedCount = 0;
      byAddress = undefined;
    }
    if (byAddress === undefined) interned.set(id, (byAddress = new Map()));
    byAddress.set(address, contact);
    internedCount++;
  }
  return contact;
}

/**
 * The contact as a message field. A Contact is a WireContact already: every
 * codec keeps only the fields the schema declares (the Kademlia id is left
 * out), so the interned object travels as it is and no copy is made per
 * contact of every answer.
 */
export function toWire(contact: Contact): WireContact {
  return contact;
}

/** A contact from the wire, or undefined for one without an id or an address. */
export function fromWire(wire: WireContact | null | undefined): Contact | undefined {
  if (wire === null || wire === undefined || wire.id === '' || wire.address === '') return undefined;
  return contactOf(wire.id, wire.address);
}
