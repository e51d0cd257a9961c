import test from 'ava';
import { runPlacementConformance } from '@kvmesh/core';
import { placementFactory } from './options.js';

runPlacementConformance(test, {
  name: 'hash-mod',
  create: placementFactory('hash-mod'),
  bounds: { replicationFactor: 3, balance: { 10: 1.15, 100: 1.25 }, joinMoved: 1.1, leaveMoved: 1.3 },
});
