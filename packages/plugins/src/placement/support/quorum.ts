import type { JsonSchema } from '@kvmesh/core';

/** A quorum as configured: a count, every replica, or more than half of them. */
export type QuorumOption = number | 'all' | 'majority';

/** Schema of a quorum option. */
export function quorumSchema(defaultValue: QuorumOption, description: string): JsonSchema {
  return {
    oneOf: [{ type: 'integer', minimum: 1 }, { enum: ['all', 'majority'] }],
    default: defaultValue,
    description: `${description} A count, "all" (every replica of the key) or "majority" (more than half of them). Never more than the key's replicas: with fewer data members than the replication factor it shrinks with them.`,
  };
}

/** The quorum for a key with `replicas` replicas (at least 1 when there are any). */
export function resolveQuorum(option: QuorumOption, replicas: number): number {
  if (replicas === 0) return 0;
  if (option === 'all') return replicas;
  if (option === 'majority') return Math.floor(replicas / 2) + 1;
  return Math.min(option, replicas);
}

/** Problems of a quorum against the replication factor it applies to, as sentences. */
export function quorumProblems(name: string, option: QuorumOption, replicationFactor: number): string[] {
  return typeof option === 'number' && option > replicationFactor
    ? [`${name} ${option} exceeds the ${replicationFactor} replicas a key has`]
    : [];
}

/**
 * The quorum of a conditional write (`ReplicaSet.conditionalWriteQuorum`)
 * of a key whose replicas every node at one epoch names alike: the write
 * quorum, raised to a majority of the `replicas` when it is smaller, so
 * that two nodes that each take themselves for the key's primary meet on a
 * replica, which stores only one of their compare-and-sets.
 */
export function conditionalQuorum(writeQuorum: number, replicas: number): number {
  return Math.min(replicas, Math.max(writeQuorum, Math.floor(replicas / 2) + 1));
}
