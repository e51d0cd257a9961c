import type { Lifecycle } from './lifecycle.js';
import type { Member, ViewParameters } from './membership.js';
import type { StoredRecord, Version } from './storage.js';

/** What an operation will do with the key: placements may route reads and writes differently. */
export type Intent = 'read' | 'write';

/** Where a key lives, for one operation, as placement saw it at `epoch`. */
export interface ReplicaSet {
  /**
   * Replicas in preference order. The first reachable one is the key's
   * primary: it stamps versions and decides conditional writes.
   */
  readonly replicas: readonly Member[];
  /**
   * Members that take a write, as a hint, for a replica that is down
   * (hinted hand-off), in the order to ask them; empty when the placement
   * has none (e.g. a shard holds no spare member). Never one of `replicas`.
   */
  readonly fallbacks: readonly Member[];
  /** Acknowledgements a write needs before it is acknowledged to the client (from `replicas`; hints do not count). */
  readonly writeQuorum: number;
  /**
   * Acknowledgements a conditional write (If-Match, If-None-Match) needs,
   * from `replicas`: at least `writeQuorum`, at most `replicas.length`.
   * Each replica stores at most one of two conditional writes made from one
   * version (it checks the condition itself), so two nodes that each take
   * themselves for the key's primary cannot both have one acknowledged as
   * long as their quorums must share a replica. A placement whose nodes
   * name the same replicas for a key at one epoch answers a majority of
   * them at least: any two majorities of one set meet. A placement whose
   * nodes may name different sets for one key at the same time (routed
   * placements: a node whose successor list or k-bucket lacks a live node
   * names the next one instead) answers every replica, `replicas.length`:
   * two such sets that share any replica then meet, and two primaries of
   * one key cannot both decide a compare-and-set.
   */
  readonly conditionalWriteQuorum: number;
  /** Replicas a read consults. */
  readonly readQuorum: number;
  /**
   * The view (or ring) the set was computed at: `viewEpoch` of the ids of
   * the members that hold data. Equal on every node that sees the same data
   * members; it changes whenever they change.
   */
  readonly epoch: number;
  /**
   * Routing hops `locate` took to find the set: requests to other nodes in
   * sequence (parallel requests of one round count once). 0 for placements
   * that know every member; simulators report it (`kvmesh sim placement`).
   */
  readonly hops: number;
}

/**
 * A replica's answer to "may I serve `key` now?" (`Placement.admit`):
 * - `own`: yes.
 * - `not-owner`: no; `owners`, when known, are the replicas at this node's
 *   epoch (the coordinator locates again, bounded, and may use them).
 * - `frozen`: ownership is moving right now; retry after `retryAfterMs`.
 * - `moved`: the key now lives at `to` (a forward pointer left by a move); the
 *   coordinator sends the request there.
 */
export type Admission =
  | { readonly kind: 'own' }
  | { readonly kind: 'not-owner'; readonly epoch: number; readonly owners?: readonly Member[] }
  | { readonly kind: 'frozen'; readonly retryAfterMs: number }
  | { readonly kind: 'moved'; readonly to: Member };

/**
 * Where every key lives at one view, stated so that a client outside the
 * cluster can compute a key's replicas itself and send its request straight
 * to one of them (`GET /v1/cluster/routes`). It names no strategy: a key's
 * position is `hash` of its UTF-8 bytes, a number below 2^32; the key
 * belongs to the first range whose `end` is at or above it (past the last
 * `end`, to the first range); the range's replica list, in preference
 * order, is its replicas.
 */
export interface RoutingTable {
  /** The placement's `epoch` when the table was computed: it changes with the view. */
  readonly epoch: number;
  /**
   * The key hash, by name: `xxhash32` (xxHash32, seed 0), `sha1` or `md5`
   * (the first 4 bytes of the digest, big-endian).
   */
  readonly hash: 'xxhash32' | 'sha1' | 'md5';
  /**
   * How a key's replicas are ordered within its range's list: `listed`, as
   * listed; `fmix32`, rotated left by `fmix32(position) mod length`
   * (MurmurHash3's 32-bit finaliser), which spreads primaries over the list.
   */
  readonly order: 'listed' | 'fmix32';
  /** Replica lists, member ids in preference order (before `order` applies). */
  readonly replicaSets: readonly (readonly string[])[];
  /** Inclusive upper ends of the ranges, ascending, each below 2^32. */
  readonly ends: readonly number[];
  /** For each range (aligned with `ends`), the index of its list in `replicaSets`. */
  readonly sets: readonly number[];
}

/** A key set that changes owner after a membership change. */
export interface Move {
  /** Human-readable description of the range (for logs and /v1/cluster). */
  readonly range: string;
  /** True for the keys in the range. */
  readonly contains: (key: string) => boolean;
  /** Member ids that held the range before. */
  readonly from: readonly string[];
  /** Member ids that hold it after. */
  readonly to: readonly string[];
}

/**
 * An ownership change announced by a placement whose nodes see only their
 * neighbours (routed placements): the keys in `moves` changed owners at
 * `epoch`. Core's data mover acts on the moves whose `from` holds this node.
 */
export interface OwnershipChange {
  readonly epoch: number;
  readonly moves: readonly Move[];
  /**
   * The members the moves name, as the placement knows them (address,
   * state): a routed placement's nodes know their neighbours, which a
   * membership may not list (or there is none). Core resolves `from` and
   * `to` ids through these and the membership's list, the membership's
   * state winning for a member both know; an id found in neither is
   * skipped (no copy to it, no read-through from it). Omitted: the
   * membership's list alone.
   */
  readonly members?: readonly Member[];
  /**
   * Ids of members the placement found gone (failed or left) without a
   * membership to say so: core stops waiting for moves from them, as it does
   * for a member the membership reports dead.
   */
  readonly departed?: readonly string[];
}

export type OwnershipListener = (change: OwnershipChange) => void;

/**
 * How the node's dashboard (`GET /ui`) draws a placement: one of a few
 * generic shapes, carried as the `drawing` member of `describe()`. The page
 * has one renderer per shape and names no strategy.
 * - `ring`: points on a circle (`at` in [0, 1), clockwise from the top),
 *   each owned by a member (virtual points of a hash ring, the nodes of a
 *   Chord ring), and optional chords between two points (this node's
 *   fingers);
 * - `groups`: sets of members that hold data together (shards, the replica
 *   groups of a partition table), each with a weight (its share of the keys,
 *   or its number of partitions);
 * - `buckets`: a routing table's buckets (Kademlia's k-buckets), each with
 *   how full it is and the members in it.
 * Members are named by id. Keep it small: a few thousand points at most.
 */
export type PlacementDrawing = RingDrawing | GroupsDrawing | BucketsDrawing;

export interface RingDrawing {
  readonly shape: 'ring';
  /** One line under the picture: what the points are. */
  readonly caption: string;
  readonly points: readonly { readonly at: number; readonly member: string }[];
  readonly links?: readonly { readonly from: number; readonly to: number; readonly label?: string }[];
}

export interface GroupsDrawing {
  readonly shape: 'groups';
  readonly caption: string;
  readonly groups: readonly {
    readonly id: string;
    readonly members: readonly string[];
    /** Relative size (a share of keys, a count of partitions); drawn proportionally. */
    readonly weight: number;
    readonly label?: string;
  }[];
}

export interface BucketsDrawing {
  readonly shape: 'buckets';
  readonly caption: string;
  readonly buckets: readonly {
    readonly index: number;
    readonly size: number;
    readonly capacity: number;
    readonly members: readonly string[];
  }[];
}

/** The parameters (`Membership.viewParameters`) of the two views a `plan` goes between. */
export interface PlanParameters {
  readonly before: ViewParameters;
  readonly after: ViewParameters;
}

/**
 * Core's access to this node's record of one key, for placements that move
 * a single key's ownership between nodes on access (ownership shift):
 * the placement decides when a key moves and talks to the other
 * node through its own messages; core reads, stores and purges the record,
 * versions kept. Handed over through `Placement.useKeyTransfer`.
 *
 * Every call runs under the KV service's lock on the key: it waits for a
 * write of the key in progress on this node, and a write that takes the
 * lock after it asks `Placement.admit` before it stores anything. So once
 * placement stops admitting a key here (`frozen`, `moved`), the record
 * `read` answers is the last one written here. May be called concurrently
 * (calls for one key run one after the other); must not be called from
 * inside `admit`.
 */
export interface KeyTransfer {
  /** This node's own record of `key`, tombstones included; undefined when it holds none. */
  read(key: string): Promise<StoredRecord | undefined>;
  /**
   * Stores `record` (copied from the key's previous owner) unless this node
   * holds an equal or newer version. Its version is observed by this node's
   * hybrid logical clock first, so writes here afterwards are stamped above
   * it. Resolves true when written.
   * @throws KvError KVMESH_ERR_VERSION_DRIFT when the version is too far
   *   ahead of this node's clock (nothing stored), KVMESH_ERR_STORAGE_* from storage.
   */
  store(record: StoredRecord): Promise<boolean>;
  /**
   * Removes this node's record of `key` when its version is not newer than
   * `upTo` (a write that landed since is kept). Resolves true when removed,
   * false when a newer record stays or there was none.
   */
  purge(key: string, upTo: Version): Promise<boolean>;
}

export interface LocateOptions {
  readonly intent: Intent;
  /** Absolute time (injected Clock, ms) by which the answer is useless; lookups give up then. */
  readonly deadlineMs?: number;
  readonly signal?: AbortSignal;
  /**
   * True when a replica refused the set the previous `locate` of this key
   * gave (not-owner, frozen): a placement that caches routes must not
   * answer from its cache, and drops the entry.
   */
  readonly retry?: boolean;
}

/**
 * Decides which members hold a key.
 *
 * `locate` may be called concurrently and may talk to other nodes through the
 * injected Rpc (lookups routed through the overlay); strategies that move
 * ownership on access do it inside `locate` and answer `admit` accordingly. It
 * must never read or write the local Storage's records other than through
 * its own messages.
 *
 * `admit` and `plan` are synchronous and pure over the placement's current
 * state: the same state gives the same answers.
 *
 * Full-view placements (every node knows every member) answer `plan` and
 * need no events; routed placements answer `plan` with `[]` and announce
 * changes through `onOwnershipChange`. Core runs every data movement.
 */
export interface Placement extends Lifecycle {
  readonly name: string;
  /**
   * The epoch of the placement's current view: `viewEpoch(ids of the data
   * members)` (with the view's parameters, for a placement that reads
   * them: a change of parameters alone changes it), or a constant for a placement whose view never changes or
   * whose nodes never share one view (routed placements, which then decide
   * ownership in `admit` alone). Two
   * nodes agree on it exactly when they agree on the data members; a read
   * is answered only by replicas at the coordinator's epoch (core checks
   * it before `admit`), so a node that has not learned a view change yet
   * never answers "not found" for a key that moved to it.
   */
  readonly epoch: number;
  /**
   * The ordered replica set for `key` among the live members.
   * @throws KvError KVMESH_ERR_PLACEMENT_EMPTY when no member can hold
   *   the key (an empty cluster), KVMESH_ERR_RPC_TIMEOUT past `deadlineMs`.
   */
  locate(key: string, options: LocateOptions): Promise<ReplicaSet>;
  /**
   * Called on a replica for every replica request about `key` (the
   * coordinator's `epoch` travels with it): whether this node serves it now.
   * Cheap; never blocks; never throws.
   */
  admit(key: string, intent: Intent, epoch: number): Admission;
  /**
   * The key ranges that move when the member list goes from `before` to
   * `after`. `parameters` are the two views' parameters; omitted, both
   * are the current view's. A placement that takes no parameters ignores it.
   */
  plan(before: readonly Member[], after: readonly Member[], parameters?: PlanParameters): readonly Move[];
  /**
   * Optional: called by core's cluster component before an operator's view
   * change that carries parameters is installed, with them and the number
   * of members of the new view. Returns when the placement can meet them;
   * changes nothing. Synchronous and pure. Omitted: the placement takes no
   * parameters, and core refuses every view change that carries some.
   * @throws KvError KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID naming the
   *   parameter it does not know, or the value it cannot meet and why.
   */
  checkViewParameters?(parameters: ViewParameters, members: number): void;
  /**
   * Subscribes to ownership changes a routed placement discovers; returns the
   * unsubscribe function. Full-view placements omit it (their changes come
   * from `plan`). Listeners must not throw or block.
   */
  onOwnershipChange?(listener: OwnershipListener): () => void;
  /**
   * Optional: called once by the node's KV service when it is built (before
   * `start()`), with core's access to single records. A placement that
   * moves ownership of a key on access keeps it to copy the key from its old
   * owner and remove the old copy; every other placement omits the member.
   * A node without a KV service never calls it.
   */
  useKeyTransfer?(transfer: KeyTransfer): void;
  /**
   * Optional: the current view as a RoutingTable, for clients that route
   * requests to a key's replicas themselves. Synchronous and pure over the
   * current state; may be called for any client request (cache the table
   * per epoch). Omitted, or undefined: the placement cannot state where keys
   * live without lookups (routed placements), and clients send requests to
   * any node, which coordinates them.
   */
  routes?(): RoutingTable | undefined;
  /**
   * A JSON summary for `GET /v1/cluster` (ring, shards, partitions...), with
   * a `drawing` member (PlacementDrawing) saying how the dashboard draws it.
   */
  describe(): Record<string, unknown> & { readonly drawing?: PlacementDrawing };
}
