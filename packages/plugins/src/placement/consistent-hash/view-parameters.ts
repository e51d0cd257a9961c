import { KvError } from '@kvmesh/core';
import type { ViewParameters } from '@kvmesh/core';
import type { QuorumOption } from '../support/quorum.js';

/**
 * The one view parameter consistent-hash takes: replicas per key (ring) or
 * members per shard (shards), replacing the `replicationFactor` option for
 * as long as the view carries it (the CSE138 view change's `repl-factor`).
 */
export const REPLICATION_FACTOR_PARAMETER = 'replicationFactor';

/** The replication factor of a view: its parameter, else the configured option. */
export function factorOf(parameters: ViewParameters, configured: number): number {
  const value = parameters[REPLICATION_FACTOR_PARAMETER];
  return value !== undefined && Number.isSafeInteger(value) && value >= 1 ? value : configured;
}

/**
 * Checks view parameters before a view change installs them: only
 * `replicationFactor`, a whole number from 1 to the members of the new
 * view, and no smaller than a configured numeric quorum (which a key with
 * fewer replicas could never reach).
 * @throws KvError KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID saying which parameter and why.
 */
export function checkFactorParameters(
  parameters: ViewParameters,
  members: number,
  quorums: Readonly<Record<string, QuorumOption>>,
): void {
  const refuse = (why: string): never => {
    throw new KvError(
      'KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID',
      `placement 'consistent-hash': ${why}; nothing was changed`,
    );
  };
  const unknown = Object.keys(parameters).filter((k) => k !== REPLICATION_FACTOR_PARAMETER);
  if (unknown.length > 0) {
    refuse(`the only view parameter is ${REPLICATION_FACTOR_PARAMETER}; found ${unknown.join(', ')}`);
  }
  const factor = parameters[REPLICATION_FACTOR_PARAMETER];
  if (factor === undefined) return;
  if (!Number.isSafeInteger(factor) || factor < 1) {
    refuse(`${REPLICATION_FACTOR_PARAMETER} must be a whole number of at least 1; found ${JSON.stringify(factor)}`);
  }
  if (factor > members) {
    refuse(`${REPLICATION_FACTOR_PARAMETER} ${factor} exceeds the ${members} members of the new view`);
  }
  for (const [name, quorum] of Object.entries(quorums)) {
    if (typeof quorum === 'number' && quorum > factor) {
      refuse(`${REPLICATION_FACTOR_PARAMETER} ${factor} is below the configured ${name} ${quorum}`);
    }
  }
}
