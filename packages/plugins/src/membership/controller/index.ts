import { definePlugin } from '@kvmesh/core';
import { WHOLE_LIST_FRAME_LIMITS } from '../support/sim-frame-limits.js';
import { CONTROLLER_ROLE, ControllerMembership, type ControllerMembershipOptions } from './controller-membership.js';

export {
  ControllerMembership,
  CONTROLLER_ROLE,
  CONTROLLER_STATE_FILE,
  type ControllerMembershipComponents,
  type ControllerMembershipOptions,
} from './controller-membership.js';
export { CONTROLLER_MESSAGES } from './wire.js';

/** Velour Fog: a controller node keeps the member list, probes reported members, pushes every change. */
export const controllerMembership = definePlugin({
  family: 'membership',
  name: 'controller',
  description:
    'One node with role "controller" keeps and persists the member list; members heartbeat to it and receive every change.',
  version: '0.1.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      controller: {
        type: 'string',
        default: '',
        description:
          'host:port of the controller node. Empty: the first join seed that answers as a controller. Ignored on the controller itself.',
      },
      heartbeatMs: {
        type: 'integer',
        minimum: 1,
        default: 1000,
        description:
          'Every member heartbeats to the controller this often; the answer carries the whole list when the member missed a change.',
      },
      failAfterMs: {
        type: 'integer',
        minimum: 1,
        default: 3000,
        description:
          'The controller probes a member that sent no heartbeat for this long, and declares it dead if every probe fails.',
      },
      probeTimeoutMs: {
        type: 'integer',
        minimum: 1,
        default: 300,
        description: 'Deadline of one probe of a member that missed its heartbeats or was reported unreachable.',
      },
      probeAttempts: {
        type: 'integer',
        minimum: 1,
        default: 3,
        description:
          'Probes in a row that must fail before a member is declared dead (a false report about a live member never kills it).',
      },
      removeDeadAfterMs: {
        type: 'integer',
        minimum: 0,
        default: 0,
        description:
          'How long a member stays listed dead before the controller removes it (lists it as left), so placement hands its data to the others and writes that need every replica go on (Velour Fog: frontends report dead storage nodes and the controller removes them). A removed member that comes back registers again. Only while the controller hears from a majority of the members: cut off itself, it removes nobody. 0: dead members stay listed until they return.',
      },
    },
  },
  needs: ['node', 'clock', 'logger', 'messages', 'rpc'],
  create: (options: ControllerMembershipOptions) => (components) => new ControllerMembership(components, options),
  // As Velour Fog deploys it: the first member keeps the list and is never crashed, the second is a
  // frontend, the rest store data; the controller pushes whole lists, so frames are large.
  simulation: {
    role: (member) => (member.index === 0 ? CONTROLLER_ROLE : member.index === 1 ? 'frontend' : 'storage'),
    essential: (member) => member.index === 0,
    frameLimits: WHOLE_LIST_FRAME_LIMITS,
  },
});
