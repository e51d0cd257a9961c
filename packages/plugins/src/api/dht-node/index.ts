import { definePlugin } from '@kvmesh/core';
import { ownPortProperties } from '../support/own-port.js';
import { DhtNodeFacade } from './dht-node-facade.js';
import type { DhtNodeOptions } from './dht-node-facade.js';

export { DhtNodeFacade, DHT_NODE_METHODS, DHT_NODE_PREFIX, keyOf as dhtNodeKeyOf } from './dht-node-facade.js';
export type { DhtNodeComponents, DhtNodeOptions } from './dht-node-facade.js';
export { DHT_NODE_OPENAPI } from './openapi.js';
export { dhtNodeConformance } from './conformance.js';

/** The dht-node client API: POST, GET and DELETE of `/d/<key>`. */
export const dhtNodeFacade = definePlugin({
  family: 'facade',
  name: 'dht-node',
  description: 'The dht-node client API: POST /d/<key> with the value as body, GET /d/<key>, DELETE /d/<key>.',
  version: '0.1.0',
  coreVersions: '^0.1.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: ownPortProperties(
      "A port of the facade's own (the dht-node seed's nodes listen on 8000, 8001 and 8002; 0: any free port). null: the node's API port, beside the native API.",
    ),
  },
  needs: ['kv'],
  create: (options: DhtNodeOptions) => (components) => new DhtNodeFacade(components, options),
});
