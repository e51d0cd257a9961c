import type { Clock, Timer } from '../contracts/clock.js';
import type { Logger } from '../contracts/logger.js';
import type { Member, Membership, MembershipEvent, ViewParameters } from '../contracts/membership.js';
import type { Move, OwnershipChange, Placement } from '../contracts/placement.js';
import type { Random } from '../contracts/random.js';
import type { Rpc } from '../contracts/rpc.js';
import { isPresent, viewFingerprint } from './hash.js';
import type { MoveDonePayload, MoveQueryPayload, MoveQueryReplyPayload } from './movement-messages.js';
import { MoveRunner, planOutgoing } from './move-runner.js';
import type { OutgoingMove } from './move-runner.js';
import type { DataMover } from './mover.js';
import { PendingMoves } from './pending-moves.js';
import type { PendingSummary } from './pending-moves.js';
import type { PlanStore } from './plan-store.js';
import type { MovementSettings } from './settings.js';
import type { MovementCounters } from './stats.js';

/** Views kept while data is unsettled; beyond it the oldest is dropped (and logged). */
const MAX_VIEWS = 32;
/** Moves listed per direction in `describe()`. */
const DESCRIBE_LIMIT = 32;

export interface RebalancerOptions {
  readonly selfId: string;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly placement: Placement;
  readonly membership?: Membership | undefined;
  readonly rpc: Rpc;
  readonly mover: DataMover;
  readonly settings: MovementSettings;
  readonly plans: PlanStore;
  readonly counters: MovementCounters;
  /** Reports a failed background task (status' lastError, the log). */
  readonly onError: (err: unknown, context: string) => void;
}

/** A member view the data was or is to be placed by: its members and its parameters. */
interface PlacedView {
  readonly members: readonly Member[];
  readonly parameters: ViewParameters;
}

const NO_PARAMETERS: ViewParameters = Object.freeze({});

/** One move as `describe()` lists it. */
export interface MoveSummary extends PendingSummary {
  readonly purge?: boolean;
  readonly passes?: number;
}

export interface RebalancerDescription {
  readonly view: string;
  readonly outgoing: readonly MoveSummary[];
  readonly incoming: readonly MoveSummary[];
  readonly outgoingPending: number;
  readonly incomingPending: number;
}

/**
 * Moves data after membership changes.
 *
 * It keeps the member views seen since this node's data was last settled.
 * On a change (debounced) it asks placement for `plan(view, latest)` from
 * every such view, so moves that an earlier change left unfinished are
 * planned again towards the newest owners. For each move:
 * - this node in `from`: copy the range to the new owners (`to \ from`), or
 *   to every owner in `to` when this node is no longer one of them, then
 *   purge what every target stored;
 * - this node in `to \ from`: the range is pending, with its present old
 *   owners as sources, until each reports `MoveDone`, answers a
 *   `MoveQuery` with "not busy" for the same view, or is seen dead or left;
 *   `readThrough` names those sources meanwhile.
 * The views and completed moves are persisted, so both sides resume after
 * a crash; once nothing is pending the views collapse to the latest one,
 * which stays on disk: a node that restarts plans from the view it held
 * data for. A node alone in its view plans nothing (it has not joined yet,
 * or every other member is gone: no data can move either way).
 *
 * Routed placements announce moves through `onOwnershipChange`; they are run
 * the same way but are not persisted.
 */
export class Rebalancer {
  readonly #o: RebalancerOptions;
  readonly #selfId: string;
  readonly #runner: MoveRunner;
  readonly #pending: PendingMoves;
  #history: PlacedView[] = [];
  #latest: readonly Member[] = [];
  #view = '';
  #outgoing: OutgoingMove[] = [];
  #routed: OutgoingMove[] = [];
  #planned = false;
  /** Signature of the state last saved to the plan file. */
  #saved = '';
  /** Set for `moveDebounceMs` after each plan: events meanwhile are planned once when it ends. */
  #debounce: Timer | undefined;
  /** An event arrived since the last plan. */
  #dirty = false;
  #stopped = false;
  readonly #waiters: Array<() => void> = [];
  readonly #background = new Set<Promise<unknown>>();

  constructor(options: RebalancerOptions) {
    this.#o = options;
    this.#selfId = options.selfId;
    this.#runner = new MoveRunner({
      ...options,
      moves: () => [...this.#outgoing, ...this.#routed],
      onProgress: () => this.#afterChange(),
    });
    this.#pending = new PendingMoves({
      ...options,
      view: () => this.#view,
      onChange: () => this.#afterChange(),
    });
  }

  /** Restores a persisted plan (re-marking moves to this node as pending) and plans the current view soon. */
  start(): void {
    const saved = this.#o.plans.load();
    if (saved !== undefined && saved.views.length > 0) {
      this.#history = saved.views.map((v, i) => ({
        members: [...v],
        parameters: saved.parameters?.[i] ?? NO_PARAMETERS,
      }));
      this.#pending.restoreCleared(saved.cleared);
      const latest = this.#history[this.#history.length - 1]!;
      this.#latest = latest.members;
      this.#view = viewFingerprint(latest.members, latest.parameters);
      this.#planned = true;
      this.#saved = this.#signature();
      if (this.#history.length > 1) {
        this.#apply(this.#movesFor(this.#history.slice(0, -1), latest), latest.members);
        this.#o.logger.info(
          { views: this.#history.length, outgoing: this.#unfinished().length, incoming: this.#pending.size },
          'resuming the data movement of a persisted plan',
        );
      }
    }
    if (this.#o.membership === undefined) {
      this.#planned = true;
      this.#notify();
    } else {
      this.#schedulePlan();
    }
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#debounce?.cancel();
    this.#debounce = undefined;
    await Promise.all([this.#runner.stop(), this.#pending.stop()]);
    await Promise.allSettled([...this.#background]);
    await this.#o.plans.flush();
    for (const resolve of this.#waiters.splice(0)) resolve();
  }

  /** Called for every membership event (synchronously, from the membership's listener). */
  onMembershipEvent(event: MembershipEvent): void {
    if (this.#stopped) return;
    const { member } = event;
    if (member.state === 'dead' || member.state === 'left') this.#pending.drop(member.id);
    this.#schedulePlan();
  }

  /** Called for every ownership change a routed placement announces. */
  onOwnershipChange(change: OwnershipChange): void {
    if (this.#stopped) return;
    for (const id of change.departed ?? []) this.#pending.drop(id);
    const members = routedMembers(change.members, this.#o.membership?.members() ?? this.#latest);
    const present = presentById(members);
    for (const move of change.moves) {
      const out = planOutgoing(this.#selfId, move, present, this.#view, true, this.#o.logger);
      if (out !== undefined && !this.#routed.some((m) => m.id === out.id && !m.done)) {
        this.#routed.push(out);
        this.#o.counters.movesPlanned++;
      }
    }
    this.#pending.add(change.moves, members);
    if (this.#unfinished().length > 0) this.#runner.kick();
    this.#afterChange();
  }

  /** Old owners to read through for `key` while a move of it to this node is pending; undefined otherwise. */
  readThrough(key: string): readonly Member[] | undefined {
    return this.#pending.readThrough(key);
  }

  /** Resolves once a view was planned and no move to this node is pending. */
  settled(): Promise<void> {
    if (this.#isSettled() || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** True while a move from or to this node is unfinished. */
  get moving(): boolean {
    return this.#pending.size > 0 || this.#unfinished().length > 0;
  }

  describe(): RebalancerDescription {
    const unfinished = this.#unfinished();
    return {
      view: this.#view,
      outgoing: unfinished.slice(0, DESCRIBE_LIMIT).map((m) => ({
        range: m.move.range,
        members: m.targets.map((t) => t.id),
        purge: m.purge,
        passes: m.passes,
      })),
      incoming: this.#pending.describe(),
      outgoingPending: unfinished.length,
      incomingPending: this.#pending.size,
    };
  }

  /** Serves `kvmesh.movement.MoveDone`: an old owner finished sending `range` here. */
  onMoveDone(payload: MoveDonePayload): void {
    this.#pending.complete(payload);
  }

  /** Serves `kvmesh.movement.MoveQuery`: is a move to `target` still running here? */
  onMoveQuery(payload: MoveQueryPayload): MoveQueryReplyPayload {
    const busy = this.#dirty || this.#unfinished().some((m) => m.targets.some((t) => t.id === payload.target));
    return { busy, view: this.#view };
  }

  /**
   * Plans at once when the event changed the members placement sees:
   * placement switched to the new view in the same tick, so the ranges
   * moving here must be pending before any read can find this node's
   * storage without them. Other events (state changes that move nothing,
   * or a burst right after a plan) are planned together when
   * `moveDebounceMs` after the last plan has passed.
   */
  #schedulePlan(): void {
    if (this.#stopped) return;
    const membership = this.#o.membership;
    const viewChanged =
      membership !== undefined && viewFingerprint(membership.members(), parametersOf(membership)) !== this.#view;
    if (this.#debounce !== undefined && !viewChanged) {
      this.#dirty = true;
      return;
    }
    this.#debounce?.cancel();
    this.#dirty = false;
    try {
      this.#plan();
    } catch (err) {
      this.#o.onError(err, 'planning the moves of a membership change');
    }
    this.#notify();
    this.#debounce = this.#o.clock.setTimeout(() => {
      this.#debounce = undefined;
      if (this.#dirty) this.#schedulePlan();
      else this.#notify();
    }, this.#o.settings.moveDebounceMs);
  }

  #plan(): void {
    const membership = this.#o.membership;
    if (membership === undefined || this.#stopped) return;
    const after = [...membership.members()];
    const parameters = parametersOf(membership);
    this.#planned = true;
    const view = viewFingerprint(after, parameters);
    if (!after.some((m) => m.id !== this.#selfId && isPresent(m))) {
      // Alone: the first node, one that has not joined (yet again), or the last one standing. No data
      // can move to or from nobody, and planning towards this view would have this node take every
      // range from itself when the others appear: wait for them.
      if (this.#history.length === 0) {
        this.#latest = after;
        this.#view = view;
      }
      return;
    }
    if (this.#history.length === 0) {
      // A node with no plan behind it either joins (the others held the data before: it waits for
      // them) or comes back with data of its own (it held it alone before: it hands over what it no
      // longer owns). Planning from both views covers either; the half that does not apply finds
      // nothing to copy, or an old owner that answers "nothing for you".
      const self = after.find((m) => m.id === this.#selfId) ?? membership.self;
      this.#history = [
        { members: after.filter((m) => m.id !== this.#selfId), parameters },
        { members: [self], parameters },
      ];
      this.#view = '';
    }
    if (view === this.#view) {
      this.#latest = after;
      return;
    }
    const next = { members: after, parameters };
    const moves = this.#movesFor(this.#history, next);
    this.#history.push(next);
    if (this.#history.length > MAX_VIEWS) {
      this.#history.shift();
      this.#o.logger.warn(
        { views: MAX_VIEWS },
        'too many membership changes while data is moving; dropping the oldest view',
      );
    }
    this.#latest = after;
    this.#view = view;
    this.#apply(moves, after);
    this.#o.logger.info(
      {
        view,
        views: this.#history.length,
        moves: moves.length,
        outgoing: this.#unfinished().length,
        incoming: this.#pending.size,
      },
      'planned the data movement of a membership change',
    );
  }

  /** The union of `placement.plan(view, after)` over `views`. */
  #movesFor(views: readonly PlacedView[], after: PlacedView): Move[] {
    const moves: Move[] = [];
    const seen = new Set<string>();
    for (const before of views) {
      let planned: readonly Move[];
      try {
        planned = this.#o.placement.plan(before.members, after.members, {
          before: before.parameters,
          after: after.parameters,
        });
      } catch (err) {
        this.#o.onError(err, 'placement.plan');
        continue;
      }
      for (const move of planned) {
        const id = `${move.range}\n${move.from.join(',')}\n${move.to.join(',')}`;
        if (seen.has(id)) continue;
        seen.add(id);
        moves.push(move);
      }
    }
    return moves;
  }

  /** Replaces the moves by those of a new plan, keeping the progress of moves it plans again. */
  #apply(moves: readonly Move[], after: readonly Member[]): void {
    const present = presentById(after);
    const previous = new Map(this.#outgoing.map((m) => [m.id, m]));
    const outgoing: OutgoingMove[] = [];
    for (const move of moves) {
      const planned = planOutgoing(this.#selfId, move, present, this.#view, false, this.#o.logger);
      if (planned === undefined || outgoing.some((m) => m.id === planned.id)) continue;
      const kept = previous.get(planned.id);
      if (kept !== undefined) {
        kept.view = this.#view;
        outgoing.push(kept);
      } else {
        outgoing.push(planned);
        this.#o.counters.movesPlanned++;
      }
    }
    this.#outgoing = outgoing;
    this.#pending.replace(moves, after);
    if (this.#unfinished().length > 0) this.#runner.kick();
    this.#afterChange();
  }

  /** Collapses the views once nothing is pending, persists, wakes `settled()` waiters. */
  #afterChange(): void {
    if (this.#stopped) return;
    this.#routed = this.#routed.filter((m) => !m.done);
    if (!this.moving && this.#history.length > 1) {
      this.#history = [this.#history[this.#history.length - 1]!];
      this.#pending.forgetCleared();
      this.#outgoing = [];
      this.#o.logger.info({ view: this.#view }, 'data movement settled');
    }
    this.#persist();
    this.#notify();
  }

  /**
   * Saves the views (and completed moves) when they changed. A settled node
   * keeps its one latest view on disk too, so after a restart it plans from
   * the view it held data for rather than as a newcomer.
   */
  #persist(): void {
    if (this.#history.length === 0) return;
    const signature = this.#signature();
    if (signature === this.#saved) return;
    this.#saved = signature;
    const parameters = this.#history.some((v) => Object.keys(v.parameters).length > 0)
      ? { parameters: this.#history.map((v) => v.parameters) }
      : {};
    const saving = this.#o.plans.save({
      views: this.#history.map((v) => [...v.members]),
      ...parameters,
      cleared: this.#pending.cleared(),
    });
    this.#background.add(saving);
    void saving.finally(() => this.#background.delete(saving));
  }

  #signature(): string {
    const views = this.#history.map((v) => viewFingerprint(v.members, v.parameters)).join(',');
    const addresses = this.#latest.map((m) => `${m.id}@${m.address}`).join(',');
    return `${views}|${addresses}|${this.#pending.clearedSignature()}`;
  }

  #unfinished(): OutgoingMove[] {
    const out: OutgoingMove[] = [];
    for (const m of this.#outgoing) if (!m.done) out.push(m);
    for (const m of this.#routed) if (!m.done) out.push(m);
    return out;
  }

  #isSettled(): boolean {
    return this.#planned && !this.#dirty && this.#pending.size === 0;
  }

  #notify(): void {
    if (!this.#isSettled()) return;
    for (const resolve of this.#waiters.splice(0)) resolve();
  }
}

/** The parameters of the membership's view; none for a membership that takes no view from an operator. */
function parametersOf(membership: Membership): ViewParameters {
  return membership.viewParameters ?? NO_PARAMETERS;
}

/** The members an ownership change names, with the membership's entry replacing the placement's for a member both know. */
function routedMembers(named: readonly Member[] | undefined, listed: readonly Member[]): readonly Member[] {
  if (named === undefined || named.length === 0) return listed;
  const byId = new Map<string, Member>();
  for (const m of named) byId.set(m.id, m);
  for (const m of listed) byId.set(m.id, m);
  return [...byId.values()];
}

function presentById(members: readonly Member[]): Map<string, Member> {
  const out = new Map<string, Member>();
  for (const m of members) if (isPresent(m)) out.set(m.id, m);
  return out;
}
