import type { Clock, Timer } from '../contracts/clock.js';
import type { Logger } from '../contracts/logger.js';
import type { Member, Membership, MembershipEvent } from '../contracts/membership.js';
import type { Move, OwnershipChange, Placement } from '../contracts/placement.js';
import type { Random } from '../contracts/random.js';
import type { Rpc } from '../contracts/rpc.js';
import type { StoredRecord } from '../contracts/storage.js';
import { KvError } from '../errors.js';
import { isPresent, viewFingerprint } from './hash.js';
import { MOVEMENT_MESSAGES } from './movement-messages.js';
import type { MoveDonePayload, MoveQueryPayload, MoveQueryReplyPayload } from './movement-messages.js';
import type { DataMover } from './mover.js';
import type { ClearedMove, PlanStore } from './plan-store.js';
import type { MovementSettings } from './settings.js';
import type { MovementCounters } from './stats.js';
import { Throttle } from './throttle.js';

/** Longest wait between two tries of an unfinished move. */
const MAX_RETRY_DELAY_MS = 30_000;
/**
 * Passes a purging move makes back to back before it waits: each pass sends
 * what the last one could not purge because a newer write landed meanwhile.
 */
const MAX_IMMEDIATE_PASSES = 8;
/**
 * A non-purging move's catch-up pass also sends versions this much older
 * than its first pass began: a write stamped by a node whose clock lags this
 * one's still counts as recent.
 */
const CATCH_UP_SLACK_MS = 5_000;
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

/** A range this node sends away. */
interface OutgoingMove {
  readonly id: string;
  readonly move: Move;
  readonly targets: readonly Member[];
  /** This node no longer owns the range: remove each record once every target stored it. */
  readonly purge: boolean;
  /** True for a move a routed placement announced (not recomputed from views, not persisted). */
  readonly routed: boolean;
  view: string;
  done: boolean;
  passes: number;
  firstPassStartMs: number;
  /** Keys a target refused in the last pass (a non-purging move sends them again). */
  retry: ReadonlySet<string>;
}

/** A range moving to this node, and the old owners still sending it. */
interface IncomingMove {
  readonly range: string;
  readonly move: Move;
  readonly sources: Map<string, Member>;
  readonly sinceMs: number;
}

/** One move as `describe()` lists it. */
export interface MoveSummary {
  readonly range: string;
  /** Targets (outgoing) or old owners still sending (incoming). */
  readonly members: readonly string[];
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

const stopping = (): KvError => new KvError('KVMESH_ERR_RPC_ABORTED', 'data movement is stopping');
const superseded = (): KvError => new KvError('KVMESH_ERR_RPC_ABORTED', 'a newer plan replaced this one');

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
  readonly #throttle: Throttle;
  #history: Member[][] = [];
  #latest: readonly Member[] = [];
  #view = '';
  #outgoing: OutgoingMove[] = [];
  #routed: OutgoingMove[] = [];
  #incoming = new Map<string, IncomingMove>();
  /** `range \n source` → view it was reported complete for. */
  readonly #cleared = new Map<string, string>();
  #planned = false;
  /** Signature of the state last saved to the plan file. */
  #saved = '';
  #debounce: Timer | undefined;
  #queryTimer: Timer | undefined;
  #querying = false;
  #running: Promise<void> | undefined;
  #runAbort: AbortController | undefined;
  #rerun = false;
  #stopped = false;
  readonly #lifetime = new AbortController();
  readonly #waiters: Array<() => void> = [];
  readonly #background = new Set<Promise<unknown>>();

  constructor(options: RebalancerOptions) {
    this.#o = options;
    this.#selfId = options.selfId;
    this.#throttle = new Throttle(options.clock, options.settings.rebalanceMaxKeysPerSecond);
  }

  /** Restores a persisted plan (re-marking moves to this node as pending) and plans the current view soon. */
  start(): void {
    const saved = this.#o.plans.load();
    if (saved !== undefined && saved.views.length > 0) {
      this.#history = saved.views.map((v) => [...v]);
      for (const c of saved.cleared) this.#cleared.set(pairKey(c.range, c.source), c.view);
      const latest = this.#history[this.#history.length - 1]!;
      this.#latest = latest;
      this.#view = viewFingerprint(latest);
      this.#planned = true;
      this.#saved = this.#signature();
      if (this.#history.length > 1) {
        this.#apply(this.#movesFor(this.#history.slice(0, -1), latest), latest);
        this.#o.logger.info(
          { views: this.#history.length, outgoing: this.#outgoing.length, incoming: this.#incoming.size },
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
    this.#queryTimer?.cancel();
    this.#queryTimer = undefined;
    this.#lifetime.abort(stopping());
    this.#runAbort?.abort(stopping());
    await Promise.allSettled([this.#running, ...this.#background]);
    await this.#o.plans.flush();
    for (const resolve of this.#waiters.splice(0)) resolve();
  }

  /** Called for every membership event (synchronously, from the membership's listener). */
  onMembershipEvent(event: MembershipEvent): void {
    if (this.#stopped) return;
    const { member } = event;
    if (member.state === 'dead' || member.state === 'left') this.#dropSource(member.id);
    this.#schedulePlan();
  }

  /** Called for every ownership change a routed placement announces. */
  onOwnershipChange(change: OwnershipChange): void {
    if (this.#stopped) return;
    const members = this.#o.membership?.members() ?? this.#latest;
    const present = presentById(members);
    for (const move of change.moves) {
      const out = this.#outgoingFor(move, present, true);
      if (out !== undefined && !this.#routed.some((m) => m.id === out.id && !m.done)) {
        this.#routed.push(out);
        this.#o.counters.movesPlanned++;
      }
      this.#addIncoming(this.#incoming, move, present, this.#o.clock.now());
    }
    if (this.#unfinished().length > 0) this.#kick();
    this.#afterChange();
  }

  /** Old owners to read through for `key` while a move of it to this node is pending; undefined otherwise. */
  readThrough(key: string): readonly Member[] | undefined {
    if (this.#incoming.size === 0) return undefined;
    let out: Member[] | undefined;
    for (const entry of this.#incoming.values()) {
      if (!entry.move.contains(key)) continue;
      for (const source of entry.sources.values()) {
        out ??= [];
        if (!out.includes(source)) out.push(source);
      }
    }
    return out;
  }

  /** Resolves once a view was planned and no move to this node is pending. */
  settled(): Promise<void> {
    if (this.#isSettled() || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** True while a move from or to this node is unfinished. */
  get moving(): boolean {
    return this.#incoming.size > 0 || this.#unfinished().length > 0;
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
      incoming: [...this.#incoming.values()].slice(0, DESCRIBE_LIMIT).map((e) => ({
        range: e.range,
        members: [...e.sources.keys()],
      })),
      outgoingPending: unfinished.length,
      incomingPending: this.#incoming.size,
    };
  }

  /** Serves `kvmesh.movement.MoveDone`: an old owner finished sending `range` here. */
  onMoveDone(payload: MoveDonePayload): void {
    const key = pairKey(payload.range, payload.source);
    this.#cleared.set(key, payload.view);
    const entry = this.#incoming.get(payload.range);
    if (entry !== undefined && entry.sources.delete(payload.source)) {
      if (entry.sources.size === 0) this.#incoming.delete(payload.range);
      this.#o.logger.debug({ range: payload.range, source: payload.source }, 'a move to this node is complete');
    }
    this.#afterChange();
  }

  /** Serves `kvmesh.movement.MoveQuery`: is a move to `target` still running here? */
  onMoveQuery(payload: MoveQueryPayload): MoveQueryReplyPayload {
    const busy =
      this.#debounce !== undefined || this.#unfinished().some((m) => m.targets.some((t) => t.id === payload.target));
    return { busy, view: this.#view };
  }

  #schedulePlan(): void {
    if (this.#debounce !== undefined || this.#stopped) return;
    // Not reset by later events: a steady stream of them must not postpone planning forever.
    this.#debounce = this.#o.clock.setTimeout(() => {
      this.#debounce = undefined;
      try {
        this.#plan();
      } catch (err) {
        this.#o.onError(err, 'planning the moves of a membership change');
      }
      this.#notify();
    }, this.#o.settings.moveDebounceMs);
  }

  #plan(): void {
    const membership = this.#o.membership;
    if (membership === undefined || this.#stopped) return;
    const after = [...membership.members()];
    this.#planned = true;
    const view = viewFingerprint(after);
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
      const self = after.find((m) => m.id === this.#selfId) ?? this.#o.membership?.self;
      this.#history = [after.filter((m) => m.id !== this.#selfId), ...(self === undefined ? [] : [[self]])];
      this.#view = '';
    }
    if (view === this.#view) {
      this.#latest = after;
      return;
    }
    const moves = this.#movesFor(this.#history, after);
    this.#history.push(after);
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
        incoming: this.#incoming.size,
      },
      'planned the data movement of a membership change',
    );
  }

  #movesFor(views: readonly (readonly Member[])[], after: readonly Member[]): Move[] {
    const moves: Move[] = [];
    const seen = new Set<string>();
    for (const before of views) {
      let planned: readonly Move[];
      try {
        planned = this.#o.placement.plan(before, after);
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
    const incoming = new Map<string, IncomingMove>();
    const now = this.#o.clock.now();
    for (const move of moves) {
      const planned = this.#outgoingFor(move, present, false);
      if (planned !== undefined && !outgoing.some((m) => m.id === planned.id)) {
        const kept = previous.get(planned.id);
        if (kept !== undefined) {
          kept.view = this.#view;
          outgoing.push(kept);
        } else {
          outgoing.push(planned);
          this.#o.counters.movesPlanned++;
        }
      }
      this.#addIncoming(incoming, move, present, now);
    }
    // An old owner that is not known dead may still hold data of a range it was sending: keep reading through it.
    const states = new Map(after.map((m) => [m.id, m]));
    for (const old of this.#incoming.values()) {
      for (const [id, source] of old.sources) {
        const current = states.get(id);
        if (current !== undefined && !isPresent(current)) continue;
        let entry = incoming.get(old.range);
        if (entry === undefined) {
          entry = { range: old.range, move: old.move, sources: new Map(), sinceMs: old.sinceMs };
          incoming.set(old.range, entry);
        }
        if (!entry.sources.has(id)) entry.sources.set(id, current ?? source);
      }
    }
    this.#outgoing = outgoing;
    this.#incoming = incoming;
    if (this.#unfinished().length > 0) this.#kick();
    this.#afterChange();
  }

  #outgoingFor(move: Move, present: ReadonlyMap<string, Member>, routed: boolean): OutgoingMove | undefined {
    if (!move.from.includes(this.#selfId)) return undefined;
    const purge = !move.to.includes(this.#selfId);
    // Handing a range over entirely: every owner after must confirm it holds the data before it is removed here.
    const ids = purge
      ? move.to.filter((id) => id !== this.#selfId)
      : move.to.filter((id) => !move.from.includes(id) && id !== this.#selfId);
    const targets = ids.map((id) => present.get(id)).filter((m): m is Member => m !== undefined);
    if (targets.length === 0) {
      if (purge && ids.length > 0) {
        this.#o.logger.warn({ range: move.range, to: ids }, 'no new owner of the range is present; keeping its data');
      }
      return undefined;
    }
    const sorted = targets.map((t) => t.id).sort();
    return {
      id: `${move.range}\n${sorted.join(',')}\n${purge ? 'purge' : 'copy'}`,
      move,
      targets,
      purge,
      routed,
      view: this.#view,
      done: false,
      passes: 0,
      firstPassStartMs: 0,
      retry: new Set(),
    };
  }

  #addIncoming(into: Map<string, IncomingMove>, move: Move, present: ReadonlyMap<string, Member>, now: number): void {
    if (!move.to.includes(this.#selfId) || move.from.includes(this.#selfId)) return;
    for (const id of move.from) {
      const source = present.get(id);
      if (source === undefined || this.#cleared.get(pairKey(move.range, id)) === this.#view) continue;
      let entry = into.get(move.range);
      if (entry === undefined) {
        entry = {
          range: move.range,
          move,
          sources: new Map(),
          sinceMs: this.#incoming.get(move.range)?.sinceMs ?? now,
        };
        into.set(move.range, entry);
      }
      entry.sources.set(id, source);
    }
  }

  #dropSource(id: string): void {
    let changed = false;
    for (const [range, entry] of this.#incoming) {
      if (!entry.sources.delete(id)) continue;
      changed = true;
      if (entry.sources.size === 0) this.#incoming.delete(range);
    }
    if (changed) this.#afterChange();
  }

  /** Persists, starts or stops the queries, collapses the views once nothing is pending. */
  #afterChange(): void {
    if (this.#stopped) return;
    this.#routed = this.#routed.filter((m) => !m.done);
    if (this.#incoming.size > 0) this.#startQueries();
    else this.#stopQueries();
    if (!this.moving && this.#history.length > 1) {
      this.#history = [this.#history[this.#history.length - 1]!];
      this.#cleared.clear();
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
    const cleared: ClearedMove[] = [];
    for (const [key, view] of this.#cleared) {
      const [range, source] = splitPair(key);
      cleared.push({ range, source, view });
    }
    this.#track(this.#o.plans.save({ views: this.#history.map((v) => [...v]), cleared }));
  }

  #signature(): string {
    const views = this.#history.map((v) => viewFingerprint(v)).join(',');
    const addresses = this.#latest.map((m) => `${m.id}@${m.address}`).join(',');
    return `${views}|${addresses}|${[...this.#cleared.keys()].join(',')}`;
  }

  #unfinished(): OutgoingMove[] {
    const out: OutgoingMove[] = [];
    for (const m of this.#outgoing) if (!m.done) out.push(m);
    for (const m of this.#routed) if (!m.done) out.push(m);
    return out;
  }

  #isSettled(): boolean {
    return this.#planned && this.#debounce === undefined && this.#incoming.size === 0;
  }

  #notify(): void {
    if (!this.#isSettled()) return;
    for (const resolve of this.#waiters.splice(0)) resolve();
  }

  // --- running the outgoing moves ---

  #kick(): void {
    if (this.#running !== undefined) {
      this.#rerun = true;
      this.#runAbort?.abort(superseded());
      return;
    }
    this.#running = this.#run().finally(() => (this.#running = undefined));
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      this.#rerun = false;
      const controller = new AbortController();
      this.#runAbort = controller;
      const { signal } = controller;
      for (const move of this.#unfinished()) {
        if (signal.aborted) break;
        try {
          await this.#runMove(move, signal);
        } catch (err) {
          if (signal.aborted) break;
          this.#o.onError(err, `moving range ${move.move.range}`);
        }
        if (move.done) {
          this.#o.counters.movesDone++;
          await this.#announce(move);
          this.#afterChange();
        }
      }
      if (this.#stopped) return;
      if (this.#rerun) {
        failures = 0;
        continue;
      }
      if (this.#unfinished().length === 0) {
        this.#afterChange();
        return;
      }
      failures++;
      const delay = Math.min(MAX_RETRY_DELAY_MS, this.#o.settings.moveRetryMs * 2 ** Math.min(failures - 1, 16));
      try {
        // Jitter, so the old owners of a range do not all come back at once.
        await this.#o.clock.sleep(delay * (0.5 + this.#o.random.next() / 2), signal);
      } catch {
        // Woken by a newer plan (or stop): go round again.
      }
    }
  }

  /** One try of a move: its passes until it is done, or until a target refused (try again later). */
  async #runMove(move: OutgoingMove, signal: AbortSignal): Promise<void> {
    for (let pass = 0; pass < MAX_IMMEDIATE_PASSES && !move.done; pass++) {
      const startMs = this.#o.clock.now();
      const catchUp = move.passes > 0;
      let select: ((record: StoredRecord) => boolean) | undefined;
      if (catchUp && !move.purge) {
        // A range this node keeps: send again only what was written since the first pass began, and what was refused.
        const since = move.firstPassStartMs - CATCH_UP_SLACK_MS;
        const retry = move.retry;
        select = (record) => record.version.wallMs >= since || retry.has(record.key);
      }
      const result = await this.#o.mover.copy({
        filter: move.move.contains,
        targets: move.targets,
        purge: move.purge,
        purpose: 'PURPOSE_REBALANCE',
        throttle: this.#throttle,
        signal,
        ...(select === undefined ? {} : { select }),
        onPage: (_, page) => {
          this.#o.counters.keysCopied += page.written;
          this.#o.counters.keysPurged += page.purged;
        },
      });
      if (move.passes === 0) move.firstPassStartMs = startMs;
      move.passes++;
      move.retry = result.refused;
      if (move.purge) {
        // Done once a pass finds nothing left in the range: everything went and was purged.
        if (result.scanned === 0) move.done = true;
      } else if (catchUp && result.refused.size === 0) {
        move.done = true;
      }
      if (result.refused.size > 0) return;
    }
  }

  /** Tells every target the move is complete; a lost message is made up for by the target's MoveQuery. */
  async #announce(move: OutgoingMove): Promise<void> {
    const payload: MoveDonePayload = {
      range: move.move.range,
      epoch: this.#o.placement.epoch,
      source: this.#selfId,
      view: move.view,
    };
    await Promise.allSettled(
      move.targets.map((t) =>
        this.#o.rpc.request(t.address, MOVEMENT_MESSAGES.moveDone, payload, {
          timeoutMs: this.#o.settings.batchTimeoutMs,
          signal: this.#lifetime.signal,
        }),
      ),
    );
  }

  // --- asking old owners about pending moves ---

  #startQueries(): void {
    if (this.#queryTimer !== undefined) return;
    this.#queryTimer = this.#o.clock.setInterval(
      () => this.#track(this.#query()),
      this.#o.settings.moveQueryIntervalMs,
    );
    this.#track(this.#query());
  }

  #stopQueries(): void {
    this.#queryTimer?.cancel();
    this.#queryTimer = undefined;
  }

  async #query(): Promise<void> {
    if (this.#querying || this.#stopped) return;
    this.#querying = true;
    try {
      this.#expire();
      const sources = new Map<string, Member>();
      for (const entry of this.#incoming.values()) for (const [id, m] of entry.sources) sources.set(id, m);
      const payload: MoveQueryPayload = { target: this.#selfId };
      await Promise.all(
        [...sources.values()].map(async (source) => {
          let reply: MoveQueryReplyPayload;
          try {
            const message = await this.#o.rpc.request<MoveQueryReplyPayload>(
              source.address,
              MOVEMENT_MESSAGES.moveQuery,
              payload,
              { timeoutMs: this.#o.settings.batchTimeoutMs, signal: this.#lifetime.signal },
            );
            if (message.type !== MOVEMENT_MESSAGES.moveQueryReply) return;
            reply = message.payload;
          } catch {
            // Unreachable: the membership decides whether it is dead.
            return;
          }
          if (!reply.busy && reply.view === this.#view && this.#view !== '') {
            this.#o.logger.debug({ source: source.id }, 'an old owner has nothing more to send here');
            this.#dropSource(source.id);
          }
        }),
      );
    } finally {
      this.#querying = false;
    }
  }

  #expire(): void {
    const timeoutMs = this.#o.settings.movePendingTimeoutMs;
    if (timeoutMs === 0) return;
    const now = this.#o.clock.now();
    let changed = false;
    for (const [range, entry] of this.#incoming) {
      if (now - entry.sinceMs < timeoutMs) continue;
      this.#o.logger.warn(
        { range, sources: [...entry.sources.keys()], timeoutMs },
        'a move to this node stayed pending past movePendingTimeoutMs; no longer waiting for it',
      );
      this.#incoming.delete(range);
      changed = true;
    }
    if (changed) this.#afterChange();
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise.catch((err: unknown) => this.#o.onError(err, 'data movement'));
    this.#background.add(tracked);
    void tracked.finally(() => this.#background.delete(tracked));
  }
}

function presentById(members: readonly Member[]): Map<string, Member> {
  const out = new Map<string, Member>();
  for (const m of members) if (isPresent(m)) out.set(m.id, m);
  return out;
}

const pairKey = (range: string, source: string): string => `${range}\n${source}`;

function splitPair(key: string): [string, string] {
  const at = key.lastIndexOf('\n');
  return [key.slice(0, at), key.slice(at + 1)];
}
