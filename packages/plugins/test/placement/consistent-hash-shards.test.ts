import test from 'ava';
import { runPlacementConformance } from '@kvmesh/core';
import { placementFactory } from './options.js';

// CSE138: shards of replicationFactor members; the unit of balance is the shard.
runPlacementConformance(test, {
  name: 'consistent-hash shards',
  create: placementFactory('consistent-hash', {
    mode: 'shards',
    replicationFactor: 2,
    writeQuorum: 'all',
    readQuorum: 1,
  }),
  bounds: { replicationFactor: 2, balance: { 10: 1.15, 100: 1.25 } },
});
