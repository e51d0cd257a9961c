import { definePlugin } from '@kvmesh/core';
import { DyschordFacade } from './dyschord-facade.js';
import { DYSCHORD_OPTIONS_SCHEMA, dyschordConfigDefaults } from './options.js';
import type { DyschordOptions } from './options.js';

export { DyschordFacade, DYSCHORD_PATHS, DYSCHORD_VALUE_TYPE } from './dyschord-facade.js';
export type { DyschordComponents } from './dyschord-facade.js';
export { DYSCHORD_OPTIONS_SCHEMA, dyschordConfigDefaults } from './options.js';
export type { DyschordOptions } from './options.js';
export { XML_RPC_FAULTS, XmlRpcFault, faultResponse, methodResponse, parseMethodCall } from './xml-rpc.js';
export type { XmlRpcCall, XmlRpcValue } from './xml-rpc.js';
export { DYSCHORD_OPENAPI } from './openapi.js';
export { dyschordConformance } from './conformance.js';

/** The dyschord client API: XML-RPC `lookup(key)` and `store(key, value)`; takes dyschord.conf's keys as options. */
export const dyschordFacade = definePlugin({
  family: 'facade',
  name: 'dyschord',
  description:
    "The dyschord client API: XML-RPC lookup(key) and store(key, value) on POST / and /RPC2, values any JSON-encodable value; options are dyschord.conf's keys.",
  version: '0.1.0',
  coreVersions: '^0.1.0',
  optionsSchema: DYSCHORD_OPTIONS_SCHEMA,
  needs: ['kv', 'node', 'logger'],
  configDefaults: dyschordConfigDefaults,
  create: (options: DyschordOptions) => (components) => new DyschordFacade(components, options),
});
