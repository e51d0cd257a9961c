import { definePlugin } from '@kvmesh/core';
import { ownPortProperties } from '../support/own-port.js';
import { VelourFogFacade } from './velour-fog-facade.js';
import type { VelourFogOptions } from './velour-fog-facade.js';

export {
  VelourFogFacade,
  VELOUR_FOG_ERROR_HEADER,
  VELOUR_FOG_GET_METHODS,
  VELOUR_FOG_GET_PATH,
  VELOUR_FOG_SET_METHODS,
  keyOfPath as velourFogKeyOfPath,
  keyOfQuery as velourFogKeyOfQuery,
} from './velour-fog-facade.js';
export type { VelourFogComponents, VelourFogOptions } from './velour-fog-facade.js';
export { VELOUR_FOG_OPENAPI } from './openapi.js';
export { velourFogConformance } from './conformance.js';

/** The Velour Fog client API: `GET /get/?key=KEY` (200 or 204) and `POST /KEY`. */
export const velourFogFacade = definePlugin({
  family: 'facade',
  name: 'velour-fog',
  description:
    'The Velour Fog client API: GET /get/?key=KEY answers 200 with the value or 204 when absent; POST /KEY with the value as body sets it.',
  version: '0.1.0',
  coreVersions: '^0.1.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: ownPortProperties(
      "A port of the facade's own (0: any free port). null: the node's API port, as the seed's server.py serves its clients on the one port it is given.",
    ),
  },
  needs: ['kv'],
  create: (options: VelourFogOptions) => (components) => new VelourFogFacade(components, options),
});
