import type { Member, Move, ViewParameters } from '@kvmesh/core';
import type { QuorumOption } from './quorum.js';
import type { LayoutRoutes } from './routes.js';

/**
 * Where every key lives for one set of data members: an immutable,
 * precomputed structure (a ring, shards, a partition table) that a
 * full-view placement rebuilds when the data members change. Keys are
 * grouped into slots (a ring point, a shard and rotation, a partition):
 * every key of a slot has the same replicas and fallbacks, so replica sets
 * are built once per slot and shared.
 */
export interface Layout {
  /** The data members the indices below refer to, sorted by id. */
  readonly members: readonly Member[];
  /** Number of slots. */
  readonly slots: number;
  /** The key's slot. O(log n), allocates nothing. Only called when `members` is not empty. */
  slotOf(key: string): number;
  /** Member indices of the slot's replicas in preference order (may allocate: called once per slot and view). */
  replicaIndices(slot: number): readonly number[];
  /** Member indices of the slot's fallbacks, in order; never a replica. */
  fallbackIndices(slot: number): readonly number[];
  /** Whether member `member` is one of the slot's replicas. Allocates nothing. */
  hasReplica(slot: number, member: number): boolean;
}

/** A placement strategy over full views: builds layouts and compares two of them. */
export interface LayoutStrategy<L extends Layout> {
  /** The plugin name, reported by `describe()`. */
  readonly name: string;
  readonly writeQuorum: QuorumOption;
  readonly readQuorum: QuorumOption;
  /**
   * The layout of `members` (data members, sorted by id, possibly empty)
   * under the view's `parameters` (`{}` unless the strategy has
   * `checkParameters`). Pure: same ids and parameters, same layout.
   */
  build(members: readonly Member[], parameters: ViewParameters): L;
  /**
   * Optional: throws for view parameters the strategy cannot meet with
   * `members` members (Placement.checkViewParameters). Omitted: the
   * strategy takes none; the placement refuses them and ignores any a view carries.
   * @throws KvError KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID
   */
  checkParameters?(parameters: ViewParameters, members: number): void;
  /** The moves from `before` to `after`; for each key, `from`/`to` are its replica ids in each. Pure. */
  plan(before: L, after: L): Move[];
  /**
   * Optional: the layout as ranges of a named key hash to replica lists
   * (Placement.routes). Pure. Omitted: the placement publishes no table.
   */
  routes?(layout: L): LayoutRoutes;
  /** Strategy-specific part of `describe()`. */
  describe(layout: L): Record<string, unknown>;
}
