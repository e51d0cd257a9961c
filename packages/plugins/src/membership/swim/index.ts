import { definePlugin } from '@kvmesh/core';
import { SWIM_OPTIONS_SCHEMA } from './options.js';
import type { SwimOptions } from './options.js';
import { SwimMembership } from './swim-membership.js';

export { SwimMembership, type SwimComponents } from './swim-membership.js';
export { SWIM_DEFAULTS, SWIM_OPTIONS_SCHEMA, type SwimOptions } from './options.js';
export { SWIM_MESSAGES, swimProtoSource } from './messages.js';

/** SWIM failure detection and gossip dissemination with Lifeguard, over one-way datagrams. */
export const swimMembership = definePlugin({
  family: 'membership',
  name: 'swim',
  description:
    'SWIM (Das, Gupta, Motivala 2002): randomized round-robin probes, indirect ping-req, suspicion with incarnations, piggybacked gossip; with Lifeguard.',
  version: '0.1.0',
  optionsSchema: SWIM_OPTIONS_SCHEMA,
  needs: ['node', 'clock', 'random', 'logger', 'messages', 'rpc', 'codec', 'transport'],
  create: (options: SwimOptions) => (components) => new SwimMembership(options, components),
});
