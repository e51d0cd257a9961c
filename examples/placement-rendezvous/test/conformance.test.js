// How a third-party placement proves itself: the suite every built-in runs.
// Run with `npx ava` in this folder.
import test from 'ava';
import { runPlacementConformance } from '@kvmesh/core';
import { plugin } from '../index.js';

const defaults = Object.fromEntries(
  Object.entries(plugin.optionsSchema.properties).map(([name, schema]) => [name, schema.default]),
);

runPlacementConformance(test, {
  name: 'rendezvous',
  create: (components) => plugin.create(defaults)(components),
  bounds: { replicationFactor: 3, balance: { 10: 1.15, 100: 1.25 }, joinMoved: 1.1, leaveMoved: 1.3 },
});
