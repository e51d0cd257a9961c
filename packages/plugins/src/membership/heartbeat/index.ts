import { definePlugin } from '@kvmesh/core';
import { WHOLE_LIST_FRAME_LIMITS } from '../support/sim-frame-limits.js';
import { HeartbeatMembership, type HeartbeatMembershipOptions } from './heartbeat-membership.js';

export {
  HeartbeatMembership,
  HEARTBEAT_MESSAGES,
  type HeartbeatMembershipComponents,
  type HeartbeatMembershipOptions,
} from './heartbeat-membership.js';

/** dyschord's heartbeat: gossip-style heartbeat counters, dead after failAfterMs without growth. */
export const heartbeatMembership = definePlugin({
  family: 'membership',
  name: 'heartbeat',
  description:
    'Gossip-style heartbeating: members gossip counter tables to random peers; a counter that stops growing means dead.',
  version: '0.1.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      heartbeatMs: {
        type: 'integer',
        minimum: 1,
        default: 1000,
        description:
          'Every this many ms a member increments its heartbeat counter and sends its table to `fanout` random peers.',
      },
      fanout: {
        type: 'integer',
        minimum: 1,
        default: 3,
        description: 'Random alive peers each table is sent to per period.',
      },
      failAfterMs: {
        type: 'integer',
        minimum: 1,
        default: 10000,
        description:
          'A member whose counter has not grown for this long is dead. News of a counter takes several periods to reach every member (up to about 7 at 100 members with fanout 3), so keep it at 10 periods or more. Over a datagram transport (udp) a table is cut to what fits in one datagram (about 7 JSON entries in 1200 bytes) and news spreads slower still: 24 members need about 20 periods; use the http transport for large clusters.',
      },
      cleanupAfterMs: {
        type: 'integer',
        minimum: 1,
        default: 20000,
        description:
          'A dead or departed member is forgotten once its counter has not grown for this long (at least failAfterMs; twice it is customary).',
      },
    },
  },
  needs: ['node', 'clock', 'random', 'logger', 'messages', 'rpc', 'transport'],
  create: (options: HeartbeatMembershipOptions) => (components) => new HeartbeatMembership(components, options),
  // Whole counter tables do not fit one datagram past a couple of dozen members (see failAfterMs).
  simulation: { frameLimits: WHOLE_LIST_FRAME_LIMITS },
});
