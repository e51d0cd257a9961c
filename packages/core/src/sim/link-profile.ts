/**
 * How one direction of a simulated link treats each message. Every value is
 * drawn per message from the network's seeded Random, so a run replays.
 */
export interface LinkProfile {
  /** One-way delay in whole ms, uniform in [min, max] (0 <= min <= max). */
  readonly latencyMs: { readonly min: number; readonly max: number };
  /** Probability (0..1) that a message is lost. */
  readonly loss: number;
  /** Probability (0..1) that a message that got through arrives a second time; the copy draws its own delay. */
  readonly duplicate: number;
  /** Probability (0..1) that a message is held back by an extra delay, so messages sent after it overtake it. */
  readonly reorder: number;
  /** The extra delay of a held-back message: uniform in [1, reorderDelayMs] ms. */
  readonly reorderDelayMs: number;
}

/**
 * Named profiles in the spirit of memberlist's LAN/WAN/local configs. The
 * numbers are round figures for a rack, a continent-wide WAN, and a bad
 * network, not measurements.
 */
export const LINK_PROFILES = {
  /** Same host: at most 1 ms, no faults. */
  local: { latencyMs: { min: 0, max: 1 }, loss: 0, duplicate: 0, reorder: 0, reorderDelayMs: 1 },
  /** One data centre: 1-5 ms, no faults. */
  lan: { latencyMs: { min: 1, max: 5 }, loss: 0, duplicate: 0, reorder: 0, reorderDelayMs: 5 },
  /** Between regions: 20-150 ms, 1% loss, 1% reordering. */
  wan: { latencyMs: { min: 20, max: 150 }, loss: 0.01, duplicate: 0, reorder: 0.01, reorderDelayMs: 100 },
  /** A bad network: 10% loss, 2% duplicates, 10% reordering. */
  lossy: { latencyMs: { min: 5, max: 50 }, loss: 0.1, duplicate: 0.02, reorder: 0.1, reorderDelayMs: 100 },
} as const satisfies Record<string, LinkProfile>;

/** `base` with `overrides` applied, checked. @throws RangeError naming the bad field. */
export function resolveLinkProfile(base: LinkProfile, overrides: Partial<LinkProfile> = {}): LinkProfile {
  const profile: LinkProfile = {
    ...base,
    ...overrides,
    latencyMs: { ...base.latencyMs, ...overrides.latencyMs },
  };
  const { min, max } = profile.latencyMs;
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max < min) {
    throw new RangeError(`latencyMs needs integers 0 <= min <= max (found min ${min}, max ${max})`);
  }
  for (const field of ['loss', 'duplicate', 'reorder'] as const) {
    const p = profile[field];
    if (!(p >= 0 && p <= 1)) throw new RangeError(`${field} must be a probability in [0, 1] (found ${p})`);
  }
  if (!Number.isInteger(profile.reorderDelayMs) || profile.reorderDelayMs < 1) {
    throw new RangeError(`reorderDelayMs must be an integer >= 1 (found ${profile.reorderDelayMs})`);
  }
  return Object.freeze({ ...profile, latencyMs: Object.freeze({ ...profile.latencyMs }) });
}
