/**
 * Every DI token. `Symbol.for` so that a second copy of @kvmesh/core (a
 * third-party plugin's) still resolves the same components.
 */
export const TOKENS = {
  node: Symbol.for('@kvmesh/node'),
  config: Symbol.for('@kvmesh/config'),
  clock: Symbol.for('@kvmesh/clock'),
  random: Symbol.for('@kvmesh/random'),
  logger: Symbol.for('@kvmesh/logger'),
  messages: Symbol.for('@kvmesh/messages'),
  codec: Symbol.for('@kvmesh/codec'),
  codecs: Symbol.for('@kvmesh/codecs'),
  transport: Symbol.for('@kvmesh/transport'),
  rpc: Symbol.for('@kvmesh/rpc'),
  membership: Symbol.for('@kvmesh/membership'),
  placement: Symbol.for('@kvmesh/placement'),
  storage: Symbol.for('@kvmesh/storage'),
  kv: Symbol.for('@kvmesh/kv'),
  cluster: Symbol.for('@kvmesh/cluster'),
} as const;

export type ComponentName = keyof typeof TOKENS;
