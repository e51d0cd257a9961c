import { definePlugin } from '@kvmesh/core';
import { ownPortProperties } from '../support/own-port.js';
import { KeyShiftFacade } from './keyshift-facade.js';
import type { KeyShiftOptions } from './keyshift-facade.js';

export { KeyShiftFacade, KEYSHIFT_METHODS, KEYSHIFT_PREFIX, keyOf as keyShiftKeyOf } from './keyshift-facade.js';
export type { KeyShiftComponents, KeyShiftOptions } from './keyshift-facade.js';
export { KEYSHIFT_OPENAPI } from './openapi.js';
export { keyShiftConformance } from './conformance.js';
export { PROBLEM_TYPE as KEYSHIFT_PROBLEM_TYPE, problemOf as keyShiftProblemOf } from './problem-details.js';
export type { KeyShiftProblem } from './problem-details.js';

/** The KeyShift client API: GET and PUT of `/keys/<key>`, raw bytes. */
export const keyshiftFacade = definePlugin({
  family: 'facade',
  name: 'keyshift',
  description:
    'The KeyShift client API: PUT /keys/<key> with the value bytes as body (200), GET /keys/<key> (200 application/octet-stream, or 404).',
  version: '0.1.0',
  coreVersions: '^0.1.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: ownPortProperties(
      "A port of the facade's own (0: any free port). null: the node's API port, beside the native API.",
    ),
  },
  needs: ['kv'],
  create: (options: KeyShiftOptions) => (components) => new KeyShiftFacade(components, options),
});
