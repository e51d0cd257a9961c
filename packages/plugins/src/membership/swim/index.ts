import { SIM_DEFAULT_FRAME_LIMITS, definePlugin } from '@kvmesh/core';
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
  // Probes, acks, ping-reqs and gossip are one-way messages within one datagram; join and sync pages are
  // requests up to 64 KiB. One-datagram pages would only make 1,000 members joining at once copy the list
  // in ~200 requests each, twice as slow to simulate, without changing what is measured afterwards.
  simulation: { frameLimits: SIM_DEFAULT_FRAME_LIMITS },
});
