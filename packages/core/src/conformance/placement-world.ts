import type {
  Member,
  MemberState,
  Membership,
  MembershipBounds,
  MembershipListener,
  ViewParameters,
} from '../contracts/membership.js';
import type { Rpc } from '../contracts/rpc.js';
import { KvError } from '../errors.js';
import type { NodeInfo } from '../plugin.js';

/** How a member enters a PlacementWorld. */
export interface WorldMemberSpec {
  /** meta.role; `null` leaves the role out of meta (such a member counts as storage). Default `storage`. */
  readonly role?: string | null;
  readonly state?: MemberState;
}

const BOUNDS: MembershipBounds = Object.freeze({ detectionMs: 1000, toleratedLoss: 0, periodMs: 100, healMs: 1000 });

/**
 * A member list that a test scripts by hand, and one Membership per node
 * reading it: what placement tests and the placement conformance suite
 * give the placement under test instead of a real membership.
 *
 * Like the built-in memberships, `members()` is a frozen snapshot sorted by
 * id that stays the same array until something changes; listeners hear one
 * event per changed member, synchronously; `forget` drops a member without
 * an event (a membership has no state for "unknown").
 */
export class PlacementWorld {
  readonly #members = new Map<string, Member>();
  readonly #listeners = new Map<string, Set<MembershipListener>>();
  #sorted: readonly Member[] | undefined;
  #parameters: ViewParameters = Object.freeze({});

  /** A world holding `ids` (storage members unless `spec` says otherwise). */
  static of(ids: readonly string[], spec: WorldMemberSpec = {}): PlacementWorld {
    const world = new PlacementWorld();
    for (const id of ids) world.add(id, spec);
    return world;
  }

  /** The transport URI every member of a world has: `sim://<id>`. */
  static address(id: string): string {
    return `sim://${id}`;
  }

  members(): readonly Member[] {
    this.#sorted ??= Object.freeze([...this.#members.values()].sort((a, b) => (a.id < b.id ? -1 : 1)));
    return this.#sorted;
  }

  get(id: string): Member | undefined {
    return this.#members.get(id);
  }

  /** Adds a member (or replaces one with the same id) and tells every listener. */
  add(id: string, spec: WorldMemberSpec = {}): Member {
    const role = spec.role === undefined ? 'storage' : spec.role;
    const meta: Record<string, string> = { api: `http://${id}.test` };
    if (role !== null) meta['role'] = role;
    return this.#set({
      id,
      address: PlacementWorld.address(id),
      state: spec.state ?? 'alive',
      incarnation: this.#members.get(id)?.incarnation ?? 0,
      meta: Object.freeze(meta),
    });
  }

  /** Changes a member's state (and, for `alive`, bumps its incarnation as a refutation does). */
  setState(id: string, state: MemberState): Member {
    const member = this.#members.get(id);
    if (member === undefined) throw new Error(`no member '${id}' in the world`);
    const incarnation = state === 'alive' && member.state !== 'alive' ? member.incarnation + 1 : member.incarnation;
    return this.#set({ ...member, state, incarnation });
  }

  /** Drops a member without an event, as a membership forgets one. */
  forget(id: string): void {
    if (this.#members.delete(id)) this.#sorted = undefined;
  }

  /** The view's parameters (`Membership.viewParameters`); `{}` until set. */
  get parameters(): ViewParameters {
    return this.#parameters;
  }

  /**
   * Replaces the view's parameters and, as an administered membership does,
   * tells every listener about every member (their states unchanged).
   */
  setParameters(parameters: ViewParameters): void {
    this.#parameters = Object.freeze({ ...parameters });
    this.#sorted = undefined;
    for (const member of this.members()) {
      for (const listeners of this.#listeners.values()) {
        for (const listener of [...listeners]) listener({ member, previous: member.state });
      }
    }
  }

  /** Listeners currently subscribed through node `id`'s membership. */
  listenerCount(id: string): number {
    return this.#listeners.get(id)?.size ?? 0;
  }

  /** The Membership node `id` sees: `self` is its member (or a frontend outside the list). */
  membership(id: string): Membership {
    const listeners = this.#listeners.get(id) ?? new Set<MembershipListener>();
    this.#listeners.set(id, listeners);
    const get = (memberId: string): Member | undefined => this.get(memberId);
    const members = (): readonly Member[] => this.members();
    const parameters = (): ViewParameters => this.#parameters;
    return {
      name: 'placement-world',
      get viewParameters(): ViewParameters {
        return parameters();
      },
      get self(): Member {
        return (
          get(id) ?? {
            id,
            address: PlacementWorld.address(id),
            state: 'alive',
            incarnation: 0,
            meta: { role: 'storage' },
          }
        );
      },
      members,
      on(listener) {
        const wrapped: MembershipListener = (event) => listener(event);
        listeners.add(wrapped);
        return () => listeners.delete(wrapped);
      },
      join: async () => undefined,
      leave: async () => undefined,
      bounds: BOUNDS,
    };
  }

  /** NodeInfo of node `id` (role from its member, storage when absent). */
  node(id: string): NodeInfo {
    return {
      id,
      address: `${id}.test:7700`,
      role: this.#members.get(id)?.meta['role'] ?? 'storage',
      dataDir: `/nonexistent/${id}`,
      configDir: '/nonexistent',
    };
  }

  /** An Rpc at node `id`'s address that reaches nobody (full-view placements need none). */
  rpc(id: string): Rpc {
    const unreachable = (): never => {
      throw new KvError('KVMESH_ERR_TRANSPORT_UNREACHABLE', 'a placement world has no network');
    };
    return {
      address: PlacementWorld.address(id),
      request: () =>
        Promise.reject(new KvError('KVMESH_ERR_TRANSPORT_UNREACHABLE', 'a placement world has no network')),
      send: unreachable,
      handle: () => undefined,
      on: () => () => undefined,
    };
  }

  #set(member: Member): Member {
    const frozen = Object.freeze(member);
    const previous = this.#members.get(frozen.id)?.state;
    this.#members.set(frozen.id, frozen);
    this.#sorted = undefined;
    for (const listeners of this.#listeners.values()) {
      for (const listener of [...listeners]) listener({ member: frozen, previous });
    }
    return frozen;
  }
}
