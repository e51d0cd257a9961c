import { KvError, viewEpoch } from '@kvmesh/core';
import type {
  Admission,
  Intent,
  LocateOptions,
  Logger,
  Member,
  Membership,
  Move,
  PlanParameters,
  Placement,
  ReplicaSet,
  RoutingTable,
  ViewParameters,
} from '@kvmesh/core';
import { dataMembers, sameIds } from './data-members.js';
import type { Layout, LayoutStrategy } from './layout.js';
import { conditionalQuorum, resolveQuorum } from './quorum.js';

export interface LayoutPlacementComponents {
  readonly membership: Membership;
  readonly logger?: Logger;
}

const OWN: Admission = Object.freeze({ kind: 'own' });
const EMPTY: readonly Member[] = Object.freeze([]);
const NO_PARAMETERS: ViewParameters = Object.freeze({});

/**
 * A full-view placement driven by a LayoutStrategy: it keeps the layout of
 * the current data members, recomputes it when that set of ids changes
 * (bumping the epoch), and refreshes the Member objects it hands out when
 * only a state changes (a suspect or dead member stays a replica, flagged).
 *
 * A strategy that takes view parameters (`checkParameters`) gets the
 * membership's `viewParameters` too: the layout and the epoch follow them.
 *
 * Membership events only mark the view stale; the next call recomputes it,
 * so a burst of events (a cluster starting) costs one rebuild. Replica sets
 * are built once per slot and view and shared by every key of the slot, so
 * `locate` allocates nothing on the request path.
 */
export class LayoutPlacement<L extends Layout> implements Placement {
  readonly name: string;
  readonly #c: LayoutPlacementComponents;
  readonly #strategy: LayoutStrategy<L>;
  readonly #dataRoles: readonly string[];
  #layout: L;
  /** Current Member objects, aligned with the layout's members. */
  #current: readonly Member[];
  #sets: (ReplicaSet | undefined)[];
  /**
   * This node's index in the layout's members, -1 when it holds no data. Found
   * by the membership's `self`, which names this node as the others see it
   * (a static view may id members by host:port whatever node.id says).
   */
  #self: number;
  /** viewEpoch of the data members' ids (and parameters): equal on every node that sees the same ones. */
  #epoch: number;
  /** The view parameters the layout was built with (always `{}` for a strategy that takes none). */
  #parameters: ViewParameters;
  #stale = false;
  /** The membership snapshot the view was last computed from. */
  #seen: readonly Member[];
  #unsubscribe: (() => void) | undefined;
  /** The layouts `plan` built last, by their ids: a coordinator asks about the same views repeatedly. */
  #planned = new Map<string, L>();
  /** The routing table of the current layout, built on first request. */
  #routes: RoutingTable | undefined;

  constructor(components: LayoutPlacementComponents, strategy: LayoutStrategy<L>, dataRoles: readonly string[]) {
    this.#c = components;
    this.#strategy = strategy;
    this.name = strategy.name;
    this.#dataRoles = Object.freeze([...dataRoles]);
    this.#seen = components.membership.members();
    const members = dataMembers(this.#seen, this.#dataRoles);
    this.#parameters = this.#viewParameters();
    this.#layout = strategy.build(members, this.#parameters);
    this.#current = members;
    this.#epoch = epochOf(members, this.#parameters);
    this.#sets = new Array<ReplicaSet | undefined>(this.#layout.slots);
    this.#self = this.#indexOf(components.membership.self.id);
  }

  get epoch(): number {
    this.#sync();
    return this.#epoch;
  }

  /** The data members of the current view, sorted by id (current state included). */
  get dataMembers(): readonly Member[] {
    this.#sync();
    return this.#current;
  }

  start(): void {
    if (this.#unsubscribe !== undefined) return;
    // Events only mark the view stale: listeners must not block, and a burst costs one rebuild.
    this.#unsubscribe = this.#c.membership.on(() => {
      this.#stale = true;
    });
    this.#stale = true;
    this.#sync();
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  async locate(key: string, _options: LocateOptions): Promise<ReplicaSet> {
    return this.locateNow(key);
  }

  /** `locate` without the promise, for callers that are synchronous. */
  locateNow(key: string): ReplicaSet {
    this.#sync();
    if (this.#current.length === 0) {
      throw new KvError(
        'KVMESH_ERR_PLACEMENT_EMPTY',
        `no member with a data role (${this.#dataRoles.join(', ')}) is in the view; start a storage node or check dataRoles`,
        { details: { epoch: this.#epoch } },
      );
    }
    return this.#set(this.#layout.slotOf(key));
  }

  admit(key: string, _intent: Intent, _epoch: number): Admission {
    this.#sync();
    if (this.#current.length === 0) return { kind: 'not-owner', epoch: this.#epoch, owners: EMPTY };
    const slot = this.#layout.slotOf(key);
    if (this.#self >= 0 && this.#layout.hasReplica(slot, this.#self)) return OWN;
    return { kind: 'not-owner', epoch: this.#epoch, owners: this.#set(slot).replicas };
  }

  plan(before: readonly Member[], after: readonly Member[], parameters?: PlanParameters): readonly Move[] {
    const a = dataMembers(before, this.#dataRoles);
    const b = dataMembers(after, this.#dataRoles);
    this.#sync();
    const pa = this.#taken(parameters?.before ?? this.#parameters);
    const pb = this.#taken(parameters?.after ?? this.#parameters);
    if (sameIds(a, b) && sameParameters(pa, pb)) return [];
    return this.#strategy.plan(this.#layoutOf(a, pa), this.#layoutOf(b, pb));
  }

  checkViewParameters(parameters: ViewParameters, members: number): void {
    if (Object.keys(parameters).length === 0) return;
    if (this.#strategy.checkParameters === undefined) {
      throw new KvError(
        'KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID',
        `placement '${this.name}' takes no view parameters (found ${Object.keys(parameters).join(', ')}); nothing was changed`,
      );
    }
    this.#strategy.checkParameters(parameters, members);
  }

  routes(): RoutingTable | undefined {
    this.#sync();
    if (this.#strategy.routes === undefined) return undefined;
    if (this.#routes === undefined || this.#routes.epoch !== this.#epoch) {
      const routes = this.#strategy.routes(this.#layout);
      const ids = this.#layout.members.map((m) => m.id);
      this.#routes = Object.freeze({
        epoch: this.#epoch,
        hash: routes.hash,
        order: routes.order,
        replicaSets: Object.freeze(routes.replicaSets.map((set) => Object.freeze(set.map((i) => ids[i]!)))),
        ends: routes.ends,
        sets: routes.sets,
      });
    }
    return this.#routes;
  }

  describe(): Record<string, unknown> {
    this.#sync();
    return {
      strategy: this.#strategy.name,
      epoch: this.#epoch,
      dataRoles: this.#dataRoles,
      writeQuorum: this.#strategy.writeQuorum,
      readQuorum: this.#strategy.readQuorum,
      members: this.#current.map((m) => ({ id: m.id, state: m.state })),
      ...this.#strategy.describe(this.#layout),
    };
  }

  #sync(): void {
    // members() is a snapshot that stays the same array until the list changes, so comparing it
    // also catches a member forgotten without an event; events cover memberships that copy.
    const seen = this.#c.membership.members();
    if (seen === this.#seen && !this.#stale) return;
    this.#seen = seen;
    this.#stale = false;
    const members = dataMembers(seen, this.#dataRoles);
    const parameters = this.#viewParameters();
    if (!sameIds(members, this.#layout.members) || !sameParameters(parameters, this.#parameters)) {
      this.#layout = this.#layoutOf(members, parameters);
      this.#parameters = parameters;
      this.#epoch = epochOf(members, parameters);
      this.#current = members;
      this.#sets = new Array<ReplicaSet | undefined>(this.#layout.slots);
      this.#self = this.#indexOf(this.#c.membership.self.id);
      this.#c.logger?.info(
        { epoch: this.#epoch, members: members.map((m) => m.id), parameters },
        'placement view changed: data members or view parameters differ',
      );
      return;
    }
    let changed = false;
    for (let i = 0; i < members.length && !changed; i++) changed = members[i] !== this.#current[i];
    if (changed) {
      // Same ids, new states or incarnations: same replicas, fresh Member objects.
      this.#current = members;
      this.#sets = new Array<ReplicaSet | undefined>(this.#layout.slots);
    }
  }

  /** The membership's view parameters, when the strategy takes any. */
  #viewParameters(): ViewParameters {
    return this.#taken(this.#c.membership.viewParameters ?? NO_PARAMETERS);
  }

  #taken(parameters: ViewParameters): ViewParameters {
    return this.#strategy.checkParameters === undefined ? NO_PARAMETERS : parameters;
  }

  #layoutOf(members: readonly Member[], parameters: ViewParameters): L {
    if (sameIds(members, this.#layout.members) && sameParameters(parameters, this.#parameters)) return this.#layout;
    const label = `${members.map((m) => m.id).join('\u0000')}\u0001${parametersLabel(parameters)}`;
    let layout = this.#planned.get(label);
    if (layout === undefined) {
      layout = this.#strategy.build(members, parameters);
      if (this.#planned.size >= 4) this.#planned.delete(this.#planned.keys().next().value!);
      this.#planned.set(label, layout);
    }
    return layout;
  }

  #set(slot: number): ReplicaSet {
    let set = this.#sets[slot];
    if (set === undefined) {
      const layout = this.#layout;
      const replicas = Object.freeze(layout.replicaIndices(slot).map((i) => this.#current[i]!));
      const writeQuorum = resolveQuorum(this.#strategy.writeQuorum, replicas.length);
      set = Object.freeze({
        replicas,
        fallbacks: Object.freeze(layout.fallbackIndices(slot).map((i) => this.#current[i]!)),
        writeQuorum,
        conditionalWriteQuorum: conditionalQuorum(writeQuorum, replicas.length),
        readQuorum: resolveQuorum(this.#strategy.readQuorum, replicas.length),
        epoch: this.#epoch,
        hops: 0,
      });
      this.#sets[slot] = set;
    }
    return set;
  }

  #indexOf(id: string): number {
    return this.#layout.members.findIndex((m) => m.id === id);
  }
}

/** The parameters as one string, names sorted. */
function parametersLabel(parameters: ViewParameters): string {
  return Object.keys(parameters)
    .sort()
    .map((k) => `${k}=${String(parameters[k])}`)
    .join(',');
}

function sameParameters(a: ViewParameters, b: ViewParameters): boolean {
  return a === b || parametersLabel(a) === parametersLabel(b);
}

/** viewEpoch of the members' ids, and of the view's parameters when it carries any (a view without them keeps its epoch). */
function epochOf(members: readonly Member[], parameters: ViewParameters): number {
  const ids = members.map((m) => m.id);
  const named = parametersLabel(parameters);
  return viewEpoch(named === '' ? ids : [...ids, `\u0001${named}`]);
}
