import { definePlugin } from '@kvmesh/core';
import { ownPortProperties } from '../support/own-port.js';
import { Cse138Facade } from './cse138-facade.js';
import type { Cse138Options } from './cse138-facade.js';

export { Cse138Facade, keyOf as cse138KeyOf } from './cse138-facade.js';
export type { Cse138Components, Cse138Options } from './cse138-facade.js';
export { CausalContext as Cse138CausalContext } from './causal-context.js';
export { CSE138_OPENAPI } from './openapi.js';
export { cse138Conformance } from './conformance.js';

/** The CSE138 sharded store's client API: keys, key-count, view change and shards under /kvs/. */
export const cse138Facade = definePlugin({
  family: 'facade',
  name: 'cse138',
  description:
    'The CSE138 sharded store API: PUT/GET/DELETE /kvs/keys/<key> with JSON bodies and causal contexts, GET /kvs/key-count, PUT /kvs/view-change, GET /kvs/shards[/<id>].',
  version: '0.1.0',
  coreVersions: '^0.1.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: ownPortProperties(
      "A port of the facade's own (0: any free port). null: the node's API port, where the seed's nodes answer (13800).",
    ),
  },
  needs: ['kv', 'cluster', 'placement', 'storage', 'rpc', 'messages', 'clock', 'logger'],
  create: (options: Cse138Options) => (components) => new Cse138Facade(components, options),
});
