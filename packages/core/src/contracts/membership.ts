import type { Lifecycle } from './lifecycle.js';

/**
 * alive: answering. suspect: missed probes, may still refute. dead: declared
 * failed (may come back with a higher incarnation). left: said goodbye.
 */
export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';

export interface Member {
  /** Stable node id from the config (unique in the cluster). */
  readonly id: string;
  /** Transport URI of the node, e.g. `udp://127.0.0.2:7946`. */
  readonly address: string;
  readonly state: MemberState;
  /** Bumped by the member itself to refute a suspicion or announce a restart. */
  readonly incarnation: number;
  /** Small string facts the member announces about itself: `api` (its HTTP base URL), `role`. */
  readonly meta: Readonly<Record<string, string>>;
}

export interface MembershipEvent {
  /** The member as it is now. */
  readonly member: Member;
  /** Its state before this change; undefined when it was not known. */
  readonly previous: MemberState | undefined;
}

export type MembershipListener = (event: MembershipEvent) => void;

/**
 * Parameters an operator's view carries besides its members, for the
 * placement: names a placement reads (such as `replicationFactor`, the
 * members per shard), whole-number values. Empty: the view carries none,
 * and the placement uses its configured options. Every node that installs
 * the view installs its parameters with it.
 */
export type ViewParameters = Readonly<Record<string, number>>;

/** What a membership strategy promises about itself, used by its conformance run and the simulator. */
export interface MembershipBounds {
  /** A crashed member is seen as dead by every live member within this many ms. */
  readonly detectionMs: number;
  /** Packet loss rate (0..1) at which the strategy declares no member dead that is alive. */
  readonly toleratedLoss: number;
  /** The protocol period in ms (probe / heartbeat interval). */
  readonly periodMs: number;
  /**
   * After a partition long enough for the sides to declare each other dead
   * heals, every member lists every other alive again within this many ms
   * (from the heal). Infinity for a strategy that declares nobody dead
   * (an administered view) or that does not heal by itself.
   */
  readonly healMs: number;
  /** Suspicion timeout in ms, where the strategy has one. */
  readonly suspicionTimeoutMs?: number;
}

/**
 * Who is in the cluster right now, and in which state.
 *
 * `members()` and `self` are cheap synchronous snapshots, safe to call from
 * any callback. Listeners run synchronously after the view changes, once per
 * changed member; a listener must not throw and must not block (queue work).
 * A strategy talks to other nodes only through the injected Rpc.
 */
export interface Membership extends Lifecycle {
  readonly name: string;
  /** This node as others see it. */
  readonly self: Member;
  /** Every known member, self included, in a stable order (by id). */
  members(): readonly Member[];
  /** Subscribes to changes; returns the unsubscribe function. */
  on(listener: MembershipListener): () => void;
  /** Contacts seed addresses (transport URIs) and merges their view. Resolves once one seed answered. */
  join(seeds: readonly string[]): Promise<void>;
  /** Tells the cluster this node leaves on purpose. Called before stop() on a graceful shutdown. */
  leave(): Promise<void>;
  readonly bounds: MembershipBounds;
  /**
   * Hint from the data path: a request to member `id` just failed. Cheap and
   * non-blocking; strategies may ignore it or confirm it by their own
   * probing (the controller does). Never marks a member dead by itself.
   */
  reportUnreachable?(id: string): void;
  /**
   * Replaces the member list by an operator's decision (`PUT /v1/cluster/view`),
   * for strategies whose view is administered rather than discovered
   * (`static`). `view` holds `host:port` node addresses; `parameters`, when
   * given, replace the named parameters of the view (`viewParameters`), the
   * others kept. Resolves once the new view is installed here and sent to
   * every member of the old and new view. The caller (core's cluster
   * component) has had the placement check the parameters first.
   */
  setView?(view: readonly string[], parameters?: ViewParameters): Promise<void>;
  /**
   * The parameters of the installed view, for strategies that take a view
   * from an operator; the same object until they change. A change of the
   * parameters alone emits an event for every member (its state unchanged),
   * so placement and data movement look at the view again. Omitted: the
   * view carries none (`{}`).
   */
  readonly viewParameters?: ViewParameters;
}
