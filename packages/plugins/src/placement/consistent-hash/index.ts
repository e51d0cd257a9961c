import { definePlugin } from '@kvmesh/core';
import { DATA_ROLES_SCHEMA } from '../support/options-schema.js';
import { HASH_NAMES } from '../support/hash.js';
import { quorumSchema } from '../support/quorum.js';
import {
  DEFAULT_VIRTUAL_NODES,
  RING_DEFAULTS,
  createConsistentHashPlacement,
  type ConsistentHashOptions,
} from './consistent-hash-placement.js';

export {
  DEFAULT_VIRTUAL_NODES,
  RING_DEFAULTS,
  createConsistentHashPlacement,
  type ConsistentHashComponents,
  type ConsistentHashOptions,
  type ConsistentHashPlacement,
} from './consistent-hash-placement.js';
export { RingLayout, RingStrategy, type RingSettings } from './ring-layout.js';
export { ShardLayout, ShardStrategy, cutShards, type ShardSettings } from './shard-layout.js';
export { REPLICATION_FACTOR_PARAMETER, checkFactorParameters, factorOf } from './view-parameters.js';

/** Consistent hashing: a virtual-node ring with preference lists (dht-node) or fixed shards (CSE138). */
export const consistentHashPlacement = definePlugin({
  family: 'placement',
  name: 'consistent-hash',
  description:
    'Consistent hashing over the data members: a ring of virtual nodes where a key lives on the next replicationFactor distinct members, or shards of replicationFactor members with keys hashed onto shards.',
  version: '0.1.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      mode: {
        enum: ['ring', 'shards'],
        default: 'ring',
        description:
          'ring: a key lives on the first replicationFactor distinct members clockwise from its hash, with the next ones as fallbacks (dht-node). shards: the data members sorted by id are cut into shards of replicationFactor members (the remainder joins the last shards) and keys hash onto shards (CSE138).',
      },
      replicationFactor: {
        type: 'integer',
        minimum: 1,
        default: RING_DEFAULTS.replicationFactor,
        description:
          'Replicas per key (ring), or members per shard (shards). With fewer data members, every data member.',
      },
      virtualNodes: {
        type: 'integer',
        minimum: 1,
        maximum: 4096,
        default: DEFAULT_VIRTUAL_NODES,
        description:
          'Points on the hash ring per owner: per member in ring mode, per shard in shards mode. More points even out the load; 128 keeps max/mean near 1.1.',
      },
      fallbacks: {
        type: 'integer',
        minimum: 0,
        default: RING_DEFAULTS.replicationFactor,
        description:
          'Ring mode: the next distinct members after the replicas that take hinted writes for a replica that is down. Shards mode has no spare members and ignores it.',
      },
      writeQuorum: quorumSchema(RING_DEFAULTS.writeQuorum, 'Replica acknowledgements a write needs.'),
      readQuorum: quorumSchema(RING_DEFAULTS.readQuorum, 'Replicas a read consults.'),
      hash: {
        enum: [...HASH_NAMES],
        default: 'xxhash32',
        description:
          'Hash placing keys and points: xxhash32 (fast), or the first 32 bits of sha1 or md5. Every node of a cluster must use the same.',
      },
      dataRoles: DATA_ROLES_SCHEMA,
    },
  },
  needs: ['membership', 'logger'],
  create: (options: ConsistentHashOptions) => (components) => createConsistentHashPlacement(components, options),
});
