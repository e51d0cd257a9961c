import type { AnyPluginManifest } from '@kvmesh/core';
import { jsonCodec } from './codec/json/index.js';
import { msgpackCodec } from './codec/msgpack/index.js';
import { protobufCodec } from './codec/protobuf/index.js';
import { lmdbStorage } from './storage/lmdb/index.js';
import { memoryStorage } from './storage/memory/index.js';
import { singlePlacement } from './placement/single/index.js';
import { consistentHashPlacement } from './placement/consistent-hash/index.js';
import { hashModPlacement } from './placement/hash-mod/index.js';
import { kademliaPlacement } from './placement/kademlia/index.js';
import { chordPlacement } from './placement/chord/index.js';
import { httpTransport } from './transport/http/index.js';
import { udpTransport } from './transport/udp/index.js';
import { staticMembership } from './membership/static/index.js';
import { controllerMembership } from './membership/controller/index.js';
import { heartbeatMembership } from './membership/heartbeat/index.js';
import { swimMembership } from './membership/swim/index.js';
import { dhtNodeFacade } from './api/dht-node/index.js';
import { keyshiftFacade } from './api/keyshift/index.js';
import { cse138Facade } from './api/cse138/index.js';
import { velourFogFacade } from './api/velour-fog/index.js';
import { dyschordFacade } from './api/dyschord/index.js';

// Each strategy exports its manifest from its own folder; builtinPlugins lists them all.

export const builtinPlugins: readonly AnyPluginManifest[] = [
  jsonCodec,
  msgpackCodec,
  protobufCodec,
  memoryStorage,
  lmdbStorage,
  singlePlacement,
  consistentHashPlacement,
  hashModPlacement,
  kademliaPlacement,
  chordPlacement,
  httpTransport,
  udpTransport,
  staticMembership,
  controllerMembership,
  heartbeatMembership,
  swimMembership,
  dhtNodeFacade,
  keyshiftFacade,
  cse138Facade,
  velourFogFacade,
  dyschordFacade,
];

/** The membership plugin a tool runs when not told which (`kvmesh sim membership`): the one built for thousands of members. */
export const DEFAULT_MEMBERSHIP: string = swimMembership.name;

export * from './storage/memory/index.js';
export * from './storage/lmdb/index.js';
export * from './codec/json/index.js';
export * from './codec/msgpack/index.js';
export * from './codec/protobuf/index.js';
export * from './transport/http/index.js';
export * from './transport/udp/index.js';
export * from './membership/static/index.js';
export * from './membership/controller/index.js';
export * from './membership/heartbeat/index.js';
export * from './membership/swim/index.js';
export * from './placement/single/index.js';
export * from './placement/consistent-hash/index.js';
export * from './placement/hash-mod/index.js';
export * from './placement/chord/index.js';
export * from './api/dht-node/index.js';
export * from './api/keyshift/index.js';
export * from './api/cse138/index.js';
export * from './api/velour-fog/index.js';
export * from './api/dyschord/index.js';
