import type { JsonSchema } from '@kvmesh/core';
import { DEFAULT_ROLE } from './data-members.js';

/** The `dataRoles` option every full-view placement shares. */
export const DATA_ROLES_SCHEMA: JsonSchema = {
  type: 'array',
  items: { type: 'string', minLength: 1 },
  minItems: 1,
  uniqueItems: true,
  default: [DEFAULT_ROLE],
  description: `Member roles (meta.role) that hold data; a member without a role counts as "${DEFAULT_ROLE}". Other members (frontends, a controller) are never replicas; their KV service forwards.`,
};
