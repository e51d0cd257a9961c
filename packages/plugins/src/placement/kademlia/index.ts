import { definePlugin } from '@kvmesh/core';
import { KademliaPlacement } from './kademlia-placement.js';
import { KADEMLIA_OPTIONS_SCHEMA } from './options.js';
import type { KademliaOptions } from './options.js';

export { KademliaPlacement, KADEMLIA_EPOCH, type KademliaComponents } from './kademlia-placement.js';
export { KademliaNode, type KademliaNodeSettings, type KademliaCounters } from './kademlia-node.js';
export { RoutingTable, STALE_AFTER_FAILURES } from './routing-table.js';
export { iterativeLookup, type LookupRequest, type LookupResult } from './lookup.js';
export { contactOf, type Contact } from './contact.js';
export { ID_BITS, idOf, hexOf, compareDistance, commonPrefixBits, idInBucket } from './node-id.js';
export { KADEMLIA_MESSAGES, KADEMLIA_PROTO, defineKademliaMessages } from './messages.js';
export {
  KADEMLIA_OPTIONS_SCHEMA,
  DEFAULT_K,
  DEFAULT_ALPHA,
  DEFAULT_FREEZE_MS,
  type KademliaOptions,
} from './options.js';
export { ShiftProtocol, type ShiftCounters } from './shift-protocol.js';

/** How often a simulator samples lookups while the overlay settles or repairs (at most). */
const SIMULATION_PERIOD_MS = 60_000;

/** Kademlia (Maymounkov & Mazières 2002) placement: a classic DHT, or KeyShift's ownership shift. */
export const kademliaPlacement = definePlugin({
  family: 'placement',
  name: 'kademlia',
  description:
    'Kademlia DHT (256-bit SHA-256 ids, XOR distance, k-buckets, iterative lookups): keys on the closest nodes (replicate), or owned by the node that uses them, with ownership shifting on access (KeyShift).',
  version: '0.1.0',
  optionsSchema: KADEMLIA_OPTIONS_SCHEMA,
  needs: ['node', 'clock', 'random', 'logger', 'messages', 'rpc'],
  create: (options: KademliaOptions) => (components) => new KademliaPlacement(options, components),
  simulation: {
    // Each node bootstraps through a node of an earlier wave, and keeps nothing on disk.
    options: (_member, _members, options, contact) => ({
      ...options,
      seeds: contact === undefined ? [] : [contact.hostPort],
      persistOwnership: false,
    }),
    // Lookups are sampled every minute of virtual time, or every bucket refresh (§2.3) when that is sooner.
    periodMs: (options) => Math.min(options['refreshIntervalMs'] as number, SIMULATION_PERIOD_MS),
  },
});
