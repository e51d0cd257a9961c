import { KvError } from '@kvmesh/core';
import type { Clock, Cluster, Placement, ViewParameters } from '@kvmesh/core';
import type { NodeStatus, NodeStatusService } from './node-status.js';
import { shardView } from './shard-view.js';
import type { ShardView } from './shard-view.js';

/** How long a view change may take, resharding included, before it answers 503. */
export const VIEW_CHANGE_TIMEOUT_MS = 60_000;
/** Pause between two rounds of asking every node whether its data movement settled. */
const POLL_INTERVAL_MS = 100;
/** Deadline of one status request. */
const STATUS_TIMEOUT_MS = 2_000;

export interface ViewChangeComponents {
  readonly cluster: Cluster;
  readonly placement: Placement;
  readonly clock: Clock;
  readonly status: NodeStatusService;
}

/** The view installed, and what each node of it stores once the reshard settled. */
export interface ViewChangeResult {
  readonly view: ShardView;
  /** Key count per replica `host:port`. */
  readonly counts: ReadonlyMap<string, number>;
}

/**
 * A CSE138 view change (its design document, "PUT request for view change"): installs
 * the view through the cluster component, which sends it to every member
 * of the old and the new view, then waits until every node of the new view
 * is at the same placement epoch with its data movement settled (moved keys
 * are copied to their new owners before the old ones purge them), and
 * every node the view drops has handed its keys on. Resolves with the
 * key-counts then, so they sum to the number of keys stored. `parameters`
 * (a new replication factor) travel with the view; the placement checks
 * them before anything changes, and a change of them alone reshards too.
 * @throws KvError KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID for parameters the placement cannot meet (nothing changed);
 *   the cluster's other view change errors; KVMESH_ERR_RPC_TIMEOUT
 *   when the reshard has not settled within VIEW_CHANGE_TIMEOUT_MS (the view stays installed).
 */
export async function changeView(
  c: ViewChangeComponents,
  entries: readonly string[],
  parameters?: ViewParameters,
): Promise<ViewChangeResult> {
  const before = shardView(c.cluster.view());
  await (parameters === undefined ? c.cluster.setView(entries) : c.cluster.setView(entries, parameters));
  const deadline = c.clock.now() + VIEW_CHANGE_TIMEOUT_MS;
  let previous: string | undefined;
  const gone = new Set<string>();
  for (;;) {
    const after = shardView(c.cluster.view());
    const current = new Set(after.shards.flatMap((s) => s.uris));
    const dropped = [...before.uris.values()].filter((u) => !current.has(u) && !gone.has(u));
    const [kept, left] = await Promise.all([statuses(c, [...current]), statuses(c, dropped)]);
    // A dropped node that no longer answers has nothing left to hand on that anyone could get.
    left.forEach((s, i) => s === undefined && gone.add(dropped[i]!));
    const epoch = c.placement.epoch;
    const views = new Set(kept.map((s) => s?.view));
    const settled =
      kept.every((s) => s !== undefined && s.member && !s.moving && s.epoch === epoch) &&
      views.size === 1 &&
      left.every((s) => s === undefined || (!s.moving && !s.member));
    if (settled) {
      const counts = new Map([...current].map((uri, i) => [hostOf(after, uri), kept[i]!.count] as const));
      // Two rounds in a row with the same counts: no batch of the reshard was still landing.
      const signature = JSON.stringify([...counts]);
      if (signature === previous) return { view: after, counts };
      previous = signature;
    } else {
      previous = undefined;
    }
    if (c.clock.now() >= deadline) {
      throw new KvError(
        'KVMESH_ERR_RPC_TIMEOUT',
        `the new view is installed, but its reshard did not settle within ${VIEW_CHANGE_TIMEOUT_MS} ms`,
      );
    }
    await c.clock.sleep(POLL_INTERVAL_MS);
  }
}

function statuses(c: ViewChangeComponents, uris: readonly string[]): Promise<(NodeStatus | undefined)[]> {
  return Promise.all(uris.map((uri) => c.status.of(uri, STATUS_TIMEOUT_MS).catch(() => undefined)));
}

function hostOf(view: ShardView, uri: string): string {
  for (const [host, u] of view.uris) if (u === uri) return host;
  return uri;
}
