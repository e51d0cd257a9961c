import type { ReplicaSet } from '../contracts/placement.js';
import type { LookupFigures } from './placement-sim-types.js';

/**
 * The figures of one batch of lookups: `sets` what each returned (undefined
 * when it failed), `succeeded` whether its named primary admitted the key,
 * `packets` what they sent in all.
 */
export function lookupFigures(
  sets: readonly (ReplicaSet | undefined)[],
  succeeded: readonly boolean[],
  packets: number,
): LookupFigures {
  const count = sets.length;
  const hops: number[] = [];
  sets.forEach((set, i) => {
    if (set !== undefined && succeeded[i] === true) hops.push(set.hops);
  });
  hops.sort((a, b) => a - b);
  return {
    lookups: count,
    successRate: count === 0 ? 1 : round(hops.length / count, 4),
    hopsMean: hops.length === 0 ? 0 : round(hops.reduce((a, b) => a + b, 0) / hops.length, 3),
    hopsP50: percentile(hops, 50),
    hopsP99: percentile(hops, 99),
    hopsMax: hops.length === 0 ? 0 : hops[hops.length - 1]!,
    messagesPerLookup: count === 0 ? 0 : round(packets / count, 3),
  };
}

/** Nearest-rank percentile of sorted values; 0 for none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
