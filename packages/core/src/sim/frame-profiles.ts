import type { PluginCatalog } from '../config/catalog.js';
import type { FrameLimits } from '../plugin.js';

/** Name of the simulator's own frame profile in `frameProfiles`. */
export const SIM_DEFAULT_FRAME_PROFILE = 'mixed';

/**
 * The simulator's default frame limits: one-way messages in one 1,200-byte
 * datagram less an 8-byte header (1,200 never fragments: IPv6's minimum MTU
 * is 1,280), requests and responses up to 64 KiB, so a page of a member list
 * travels as one request while an oversized gossip message still fails.
 */
export const SIM_DEFAULT_FRAME_LIMITS: FrameLimits = Object.freeze({ maxMessageBytes: 1192, maxFrameBytes: 65_536 });

/** Frame limits with a name to report them by. */
export interface FrameProfile {
  readonly name: string;
  readonly limits: FrameLimits;
}

/**
 * The frame profiles a simulation can run on: the simulator's default
 * first, then every registered transport that declares `frameLimits`, by
 * name, smallest frames first (ties by name). A transport is mimicked by
 * what its manifest declares; none is known to the simulator by name.
 */
export function frameProfiles(registry: PluginCatalog): FrameProfile[] {
  const transports = registry
    .entries('transport')
    .flatMap((e) => (e.manifest.frameLimits ? [{ name: e.manifest.name, limits: e.manifest.frameLimits }] : []))
    .filter((p) => p.name !== SIM_DEFAULT_FRAME_PROFILE)
    .sort((a, b) => a.limits.maxFrameBytes - b.limits.maxFrameBytes || a.name.localeCompare(b.name));
  return [{ name: SIM_DEFAULT_FRAME_PROFILE, limits: SIM_DEFAULT_FRAME_LIMITS }, ...transports];
}

/** The first of `profiles` whose limits are exactly `limits`, or undefined. */
export function matchFrameProfile(profiles: readonly FrameProfile[], limits: FrameLimits): FrameProfile | undefined {
  return profiles.find(
    (p) => p.limits.maxMessageBytes === limits.maxMessageBytes && p.limits.maxFrameBytes === limits.maxFrameBytes,
  );
}
