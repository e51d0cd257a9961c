import { KvError } from '@kvmesh/core';
import type { Logger, Membership } from '@kvmesh/core';
import { loadHash } from '../support/hash.js';
import type { HashName } from '../support/hash.js';
import { LayoutPlacement } from '../support/layout-placement.js';
import { quorumProblems } from '../support/quorum.js';
import type { QuorumOption } from '../support/quorum.js';
import { RingStrategy } from './ring-layout.js';
import type { RingLayout } from './ring-layout.js';
import { ShardStrategy } from './shard-layout.js';
import type { ShardLayout } from './shard-layout.js';

export interface ConsistentHashOptions {
  readonly mode: 'ring' | 'shards';
  readonly replicationFactor: number;
  readonly virtualNodes: number;
  readonly fallbacks: number;
  readonly writeQuorum: QuorumOption;
  readonly readQuorum: QuorumOption;
  readonly hash: HashName;
  readonly dataRoles: readonly string[];
}

export interface ConsistentHashComponents {
  readonly membership: Membership;
  readonly logger?: Logger;
}

/** dht-node: N = 3 replicas, R = W = 2 (seed 004), which a majority of 3 gives. */
export const RING_DEFAULTS = Object.freeze({
  replicationFactor: 3,
  readQuorum: 'majority',
  writeQuorum: 'majority',
} as const);
/** Points per ring owner: keeps max/mean load near 1.1 at 100 members (docs/placement.md). */
export const DEFAULT_VIRTUAL_NODES = 128;

/**
 * Consistent hashing over the data members, in one of two layouts:
 * `ring` (a preference list of distinct members per key, with fallbacks for
 * hinted hand-off) or `shards` (members cut into fixed groups, keys hashed
 * onto the groups). See RingLayout and ShardLayout.
 */
export type ConsistentHashPlacement = LayoutPlacement<RingLayout> | LayoutPlacement<ShardLayout>;

/**
 * Builds the placement; async because the default hash compiles its
 * WebAssembly module first (once per process).
 * @throws KvError KVMESH_ERR_CONFIG_INVALID when a quorum exceeds the replication factor.
 */
export async function createConsistentHashPlacement(
  components: ConsistentHashComponents,
  options: ConsistentHashOptions,
): Promise<ConsistentHashPlacement> {
  const problems = [
    ...quorumProblems('writeQuorum', options.writeQuorum, options.replicationFactor),
    ...quorumProblems('readQuorum', options.readQuorum, options.replicationFactor),
  ];
  if (problems.length > 0) {
    throw new KvError('KVMESH_ERR_CONFIG_INVALID', `placement options: ${problems.join('; ')}`);
  }
  const hash = await loadHash(options.hash);
  const common = {
    replicationFactor: options.replicationFactor,
    virtualNodes: options.virtualNodes,
    writeQuorum: options.writeQuorum,
    readQuorum: options.readQuorum,
    hash,
    hashName: options.hash,
  };
  return options.mode === 'shards'
    ? new LayoutPlacement(components, new ShardStrategy(common), options.dataRoles)
    : new LayoutPlacement(components, new RingStrategy({ ...common, fallbacks: options.fallbacks }), options.dataRoles);
}
