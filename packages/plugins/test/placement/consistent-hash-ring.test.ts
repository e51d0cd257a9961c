import test from 'ava';
import { runPlacementConformance } from '@kvmesh/core';
import { loadHash } from '../../src/placement/support/hash.js';
import type { HashName } from '../../src/placement/support/hash.js';
import { placementFactory } from './options.js';

// dht-node: N = 3, R = W = 2, 128 virtual nodes per member.
runPlacementConformance(test, {
  name: 'consistent-hash ring',
  create: placementFactory('consistent-hash', { mode: 'ring' }),
  keyHash: (name) => loadHash(name as HashName),
  bounds: { replicationFactor: 3, balance: { 10: 1.15, 100: 1.25 }, joinMoved: 1.1, leaveMoved: 1.2 },
  // A view change may set the replicas per key; majority quorums follow them.
  parameters: [{ replicationFactor: 1 }, { replicationFactor: 5 }, { replicationFactor: 3 }],
});

runPlacementConformance(test, {
  name: 'consistent-hash ring sha1',
  create: placementFactory('consistent-hash', { mode: 'ring', hash: 'sha1', replicationFactor: 2, fallbacks: 1 }),
  bounds: { replicationFactor: 2, balance: { 10: 1.2, 100: 1.3 }, joinMoved: 1.2 },
  keys: 20_000,
  skip: ['lifecycle', 'empty'],
});
