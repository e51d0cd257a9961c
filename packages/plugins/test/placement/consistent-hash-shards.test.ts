import test from 'ava';
import { runPlacementConformance } from '@kvmesh/core';
import { loadHash } from '../../src/placement/support/hash.js';
import type { HashName } from '../../src/placement/support/hash.js';
import { placementFactory } from './options.js';

// CSE138: shards of replicationFactor members; the unit of balance is the shard.
runPlacementConformance(test, {
  name: 'consistent-hash shards',
  keyHash: (name) => loadHash(name as HashName),
  create: placementFactory('consistent-hash', {
    mode: 'shards',
    replicationFactor: 2,
    writeQuorum: 'all',
    readQuorum: 1,
  }),
  bounds: { replicationFactor: 2, balance: { 10: 1.15, 100: 1.25 } },
  // The CSE138 view change's repl-factor: 10 members in shards of 1, 3 (3+3+4) or all 10.
  parameters: [{ replicationFactor: 1 }, { replicationFactor: 3 }, { replicationFactor: 10 }],
});
