import { definePlugin } from '@kvmesh/core';
import { SinglePlacement } from './single-placement.js';

export { SinglePlacement, type SinglePlacementComponents } from './single-placement.js';

/** Every key on this node only: for one-node deployments and development. */
export const singlePlacement = definePlugin({
  family: 'placement',
  name: 'single',
  description: 'Every key lives on this node alone (one replica, W = R = 1): for one-node deployments and development.',
  version: '0.1.0',
  optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
  needs: ['node', 'rpc'],
  create: () => (components) => new SinglePlacement(components),
});
