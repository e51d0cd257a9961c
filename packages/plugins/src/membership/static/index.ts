import { definePlugin } from '@kvmesh/core';
import { WHOLE_LIST_FRAME_LIMITS } from '../support/sim-frame-limits.js';
import { StaticMembership, type StaticMembershipOptions } from './static-membership.js';

export {
  StaticMembership,
  STATIC_MESSAGES,
  STATIC_STATE_FILE,
  type StaticMembershipComponents,
  type StaticMembershipOptions,
} from './static-membership.js';
export { parseView, parseParameters, compareVersions, type ViewEntry, type ViewVersion } from './view.js';

/** Members from the config's view, changed only by an operator's view change (CSE138). */
export const staticMembership = definePlugin({
  family: 'membership',
  name: 'static',
  description:
    'Members come from the configured view and change only by a view change, spread with an epoch; no failure detection.',
  version: '0.1.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      view: {
        oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string', minLength: 1 } }],
        default: [],
        description:
          'Every member as host:port (its id) or id@host:port: an array, or one comma-separated string such as "${VIEW}" (CSE138: VIEW="10.10.0.2:8085,10.10.0.3:8085"). Empty: this node alone.',
      },
      syncIntervalMs: {
        type: 'integer',
        minimum: 1,
        default: 1000,
        description:
          'Every this many ms a member compares view epochs with one random member and pulls a newer view, so one that missed a view change catches up.',
      },
    },
  },
  needs: ['node', 'clock', 'random', 'logger', 'messages', 'rpc'],
  create: (options: StaticMembershipOptions) => (components) => new StaticMembership(components, options),
  // Every member is configured with the whole view, as CSE138's VIEW lists it; only an operator changes it.
  simulation: {
    options: (_member, members, options) => ({ ...options, view: members.map((m) => `${m.id}@${m.hostPort}`) }),
    detectsFailures: false,
    frameLimits: WHOLE_LIST_FRAME_LIMITS,
  },
});
