export { VirtualClock, VIRTUAL_EPOCH_MS, type VirtualClockOptions } from './virtual-clock.js';
export { SkewedClock, type SkewBase } from './skewed-clock.js';
export { SeededRandom } from './seeded-random.js';
export { LINK_PROFILES, resolveLinkProfile, type LinkProfile } from './link-profile.js';
export {
  SimTransport,
  SIM_SCHEME,
  SIM_FAILURE,
  simAddress,
  type SimPacket,
  type SimPacketKind,
  type SimPort,
  type SimTransportOptions,
} from './sim-transport.js';
export {
  SimNetwork,
  type SimDropReason,
  type SimNetworkOptions,
  type SimNetworkStats,
  type SimTraceEvent,
} from './sim-network.js';
export * from './cluster.js';
export * from './frame-profiles.js';
export * from './membership-sim.js';
export * from './placement-sim.js';
export * from './kv/index.js';
