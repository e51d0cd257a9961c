import type { MovementStatus } from '../movement/movement.js';
import type { Lifecycle } from './lifecycle.js';
import type { MemberState, ViewParameters } from './membership.js';

/** One member as the cluster view reports it. */
export interface ClusterMember {
  readonly id: string;
  /** Transport URI of the member, e.g. `http://127.0.0.1:7700`. */
  readonly address: string;
  readonly state: MemberState;
  /** The member's incarnation: bumped by the member to refute a suspicion, or on a restart. */
  readonly incarnation: number;
  /** Its role (`node.role`), when it has one. */
  readonly role?: string;
}

/** The cluster as one node sees it: what `GET /v1/cluster` answers. */
export interface ClusterView {
  /** This node: its id and the `host:port` of its config (`node.address`). */
  readonly self: { readonly id: string; readonly address: string };
  /** The members its membership knows (only this node when it runs without one), by id. */
  readonly members: readonly ClusterMember[];
  /** The placement strategy's own summary (`describe()`) with the `epoch` of its view; empty without a placement. */
  readonly placement: Record<string, unknown>;
  /** This node's part in data movement, when it has a KV service. */
  readonly movement?: MovementStatus;
}

/**
 * The cluster view and the operator's controls over it, as one component
 * (`cluster`), for every API a node serves: the native API's
 * `GET /v1/cluster` and `PUT /v1/cluster/view` use it, and so does any
 * facade that exposes the same under its own routes (a view change, a shard
 * list). It names no strategy: what it reports comes from the node's
 * membership, placement and KV service through their contracts.
 *
 * `view()` is a cheap synchronous snapshot, safe to call for every request.
 */
export interface Cluster extends Lifecycle {
  /** The cluster now. */
  view(): ClusterView;
  /**
   * True when this node's membership takes a view from an operator
   * (`Membership.setView`, e.g. `static`); false when it finds its members
   * itself, or the node runs without one. `setView` refuses when false.
   */
  readonly administered: boolean;
  /**
   * Replaces the member list by an operator's view: `host:port` node
   * addresses (or `id@host:port`), and optionally parameters for the
   * placement (`ViewParameters`, such as `replicationFactor`), which the
   * placement checks before anything changes and which travel with the
   * view. Resolves once the view is installed here
   * and sent to every member of the old and the new view. May be called
   * concurrently; the membership orders the calls.
   * When the node's config sets `cluster.adminToken`, only a client request
   * that presented it may change the view: the host serves each request
   * inside `withAdminToken` with the token it brought, and this checks it
   * before anything else, whichever API the call came through.
   * @throws KvError KVMESH_ERR_ADMIN_UNAUTHORIZED without the configured admin
   *   token; KVMESH_ERR_MEMBERSHIP_VIEW_UNSUPPORTED when `administered`
   *   is false; KVMESH_ERR_KERNEL_STATE while the node is not running;
   *   KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID for parameters the placement
   *   does not take or cannot meet; the membership's
   *   KVMESH_ERR_MEMBERSHIP_VIEW_INVALID. Nothing is changed by a refusal.
   */
  setView(view: readonly string[], parameters?: ViewParameters): Promise<void>;
}
