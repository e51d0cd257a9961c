import { KvError } from '@kvmesh/core';
import type { Logger, Membership } from '@kvmesh/core';
import { LayoutPlacement } from '../support/layout-placement.js';
import { quorumProblems } from '../support/quorum.js';
import type { QuorumOption } from '../support/quorum.js';
import { PartitionStrategy } from './partition-layout.js';
import type { PartitionLayout } from './partition-layout.js';

export interface HashModOptions {
  readonly digits: number;
  readonly replicas: number;
  readonly fallbacks: number;
  readonly writeQuorum: QuorumOption;
  readonly readQuorum: QuorumOption;
  readonly dataRoles: readonly string[];
}

export interface HashModComponents {
  readonly membership: Membership;
  readonly logger?: Logger;
}

/**
 * Velour Fog (seed 002): partitions by the key's SHA-1, K replicas per
 * partition; a set goes to all K, a get asks one.
 */
export const HASH_MOD_DEFAULTS = Object.freeze({
  /** 16^3 = 4096 partitions: enough that 100 members stay within 1.25 of the mean load (docs/placement.md). */
  digits: 3,
  replicas: 3,
  fallbacks: 0,
  writeQuorum: 'all',
  readQuorum: 1,
} as const);

export type HashModPlacement = LayoutPlacement<PartitionLayout>;

/** @throws KvError KVMESH_ERR_CONFIG_INVALID when a quorum exceeds the replicas. */
export function createHashModPlacement(components: HashModComponents, options: HashModOptions): HashModPlacement {
  const problems = [
    ...quorumProblems('writeQuorum', options.writeQuorum, options.replicas),
    ...quorumProblems('readQuorum', options.readQuorum, options.replicas),
  ];
  if (problems.length > 0) {
    throw new KvError('KVMESH_ERR_CONFIG_INVALID', `placement options: ${problems.join('; ')}`);
  }
  return new LayoutPlacement(components, new PartitionStrategy(options), options.dataRoles);
}
