import { definePlugin } from '@kvmesh/core';
import { DATA_ROLES_SCHEMA } from '../support/options-schema.js';
import { quorumSchema } from '../support/quorum.js';
import { HASH_MOD_DEFAULTS, createHashModPlacement, type HashModOptions } from './hash-mod-placement.js';

export {
  HASH_MOD_DEFAULTS,
  createHashModPlacement,
  type HashModComponents,
  type HashModOptions,
  type HashModPlacement,
} from './hash-mod-placement.js';
export {
  PartitionLayout,
  PartitionStrategy,
  memberSeed,
  partitionOf,
  rendezvousScore,
  type PartitionSettings,
} from './partition-layout.js';

/** SHA-1 partitions, each on a group of storage members chosen by rendezvous hashing (Velour Fog). */
export const hashModPlacement = definePlugin({
  family: 'placement',
  name: 'hash-mod',
  description:
    'Keys fall into 16^digits partitions by the leading hex digits of their SHA-1; each partition lives on the `replicas` data members that rank highest for it (rendezvous hashing), so frontends hold nothing and a membership change moves few partitions.',
  version: '0.1.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      digits: {
        type: 'integer',
        minimum: 1,
        maximum: 4,
        default: HASH_MOD_DEFAULTS.digits,
        description:
          "Leading hex digits of the key's SHA-1 that pick its partition: 16^digits partitions (1: 16 ... 4: 65536). More partitions spread the load more evenly over many members.",
      },
      replicas: {
        type: 'integer',
        minimum: 1,
        default: HASH_MOD_DEFAULTS.replicas,
        description: 'Data members per partition (K). With fewer data members, every data member.',
      },
      fallbacks: {
        type: 'integer',
        minimum: 0,
        default: HASH_MOD_DEFAULTS.fallbacks,
        description:
          'The next-ranked data members that take hinted writes for a replica that is down. 0: none, as in Velour Fog.',
      },
      writeQuorum: quorumSchema(
        HASH_MOD_DEFAULTS.writeQuorum,
        'Replica acknowledgements a write needs (Velour Fog: a set goes to all K).',
      ),
      readQuorum: quorumSchema(HASH_MOD_DEFAULTS.readQuorum, 'Replicas a read consults (Velour Fog: a get asks one).'),
      dataRoles: DATA_ROLES_SCHEMA,
    },
  },
  needs: ['membership', 'logger'],
  create: (options: HashModOptions) => (components) => createHashModPlacement(components, options),
});
