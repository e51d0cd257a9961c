import type { Clock, Timer } from '../contracts/clock.js';
import type { Logger } from '../contracts/logger.js';
import type { Member } from '../contracts/membership.js';
import type { Move } from '../contracts/placement.js';
import type { Rpc } from '../contracts/rpc.js';
import { KvError } from '../errors.js';
import { isPresent } from './hash.js';
import { MOVEMENT_MESSAGES } from './movement-messages.js';
import type { MoveDonePayload, MoveQueryPayload, MoveQueryReplyPayload } from './movement-messages.js';
import type { ClearedMove } from './plan-store.js';
import type { MovementSettings } from './settings.js';

/** Moves listed in `describe()`. */
const DESCRIBE_LIMIT = 32;

/** A range moving to this node, and the old owners still sending it. */
interface IncomingMove {
  readonly range: string;
  readonly move: Move;
  readonly sources: Map<string, Member>;
  readonly sinceMs: number;
}

export interface PendingMovesOptions {
  readonly selfId: string;
  readonly clock: Clock;
  readonly rpc: Rpc;
  readonly logger: Logger;
  readonly settings: MovementSettings;
  /** Fingerprint of the view this node planned last ('' before its first plan). */
  readonly view: () => string;
  /** Called when pending moves went away (completed, source gone, expired). */
  readonly onChange: () => void;
  readonly onError: (err: unknown, context: string) => void;
}

/** One pending range as `describe()` lists it. */
export interface PendingSummary {
  readonly range: string;
  /** Old owners still sending it. */
  readonly members: readonly string[];
}

/**
 * The ranges moving to this node and, for each, the old owners that still
 * hold data of it: `readThrough` names them. An old owner stops being
 * waited for when it sends `MoveDone` for the range, when it answers a
 * `MoveQuery` with "not busy" for the view this node planned, when it is
 * seen dead or left, or after `movePendingTimeoutMs`. The queries run every
 * `moveQueryIntervalMs` (and at once) while anything is pending: a MoveDone
 * can be lost, and an old owner whose plan differs sends none.
 */
export class PendingMoves {
  readonly #o: PendingMovesOptions;
  #incoming = new Map<string, IncomingMove>();
  /** `range \n source` → the view it was reported complete for. */
  readonly #cleared = new Map<string, string>();
  readonly #lifetime = new AbortController();
  readonly #background = new Set<Promise<unknown>>();
  #timer: Timer | undefined;
  #querying = false;
  #stopped = false;

  constructor(options: PendingMovesOptions) {
    this.#o = options;
  }

  /** Number of pending ranges. */
  get size(): number {
    return this.#incoming.size;
  }

  /** Old owners to read through for `key`; undefined (without allocating) when nothing moves here. */
  readThrough(key: string): readonly Member[] | undefined {
    if (this.#incoming.size === 0) return undefined;
    let out: Member[] | undefined;
    for (const entry of this.#incoming.values()) {
      if (!entry.move.contains(key)) continue;
      for (const source of entry.sources.values()) {
        out ??= [];
        if (!out.some((m) => m.id === source.id)) out.push(source);
      }
    }
    return out;
  }

  /**
   * Replaces the pending ranges by those of a new plan. An old owner still
   * waited for that is not known to be gone stays, for the ranges it was
   * sending: it may hold data of them until it says it is done.
   */
  replace(moves: readonly Move[], after: readonly Member[]): void {
    const present = new Map<string, Member>();
    for (const m of after) if (isPresent(m)) present.set(m.id, m);
    const incoming = new Map<string, IncomingMove>();
    for (const move of moves) this.#add(incoming, move, present);
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
    this.#incoming = incoming;
    this.#queries();
  }

  /** Adds the pending ranges of moves a routed placement announced. */
  add(moves: readonly Move[], members: readonly Member[]): void {
    const present = new Map<string, Member>();
    for (const m of members) if (isPresent(m)) present.set(m.id, m);
    for (const move of moves) this.#add(this.#incoming, move, present);
    this.#queries();
  }

  /** Serves `kvmesh.movement.MoveDone`. */
  complete(payload: MoveDonePayload): void {
    this.#cleared.set(pairKey(payload.range, payload.source), payload.view);
    // Done for another view than the one planned here: the source may still owe data for this one.
    if (payload.view !== this.#o.view()) return;
    const entry = this.#incoming.get(payload.range);
    if (entry !== undefined && entry.sources.delete(payload.source)) {
      if (entry.sources.size === 0) this.#incoming.delete(payload.range);
      this.#o.logger.debug({ range: payload.range, source: payload.source }, 'a move to this node is complete');
    }
    this.#changed();
  }

  /** Stops waiting for `id` (dead, left, or done with everything for this view). */
  drop(id: string): void {
    let changed = false;
    for (const [range, entry] of this.#incoming) {
      if (!entry.sources.delete(id)) continue;
      changed = true;
      if (entry.sources.size === 0) this.#incoming.delete(range);
    }
    if (changed) this.#changed();
  }

  /** The completed moves, for the plan file. */
  cleared(): ClearedMove[] {
    const out: ClearedMove[] = [];
    for (const [key, view] of this.#cleared) {
      const at = key.lastIndexOf('\n');
      out.push({ range: key.slice(0, at), source: key.slice(at + 1), view });
    }
    return out;
  }

  /** A signature of the completed moves: changes whenever `cleared()` does. */
  clearedSignature(): string {
    return [...this.#cleared].map(([k, v]) => `${k}=${v}`).join(',');
  }

  restoreCleared(cleared: readonly ClearedMove[]): void {
    for (const c of cleared) this.#cleared.set(pairKey(c.range, c.source), c.view);
  }

  /** Forgets the completed moves (the views collapsed: they will not be planned again). */
  forgetCleared(): void {
    this.#cleared.clear();
  }

  describe(): PendingSummary[] {
    return [...this.#incoming.values()]
      .slice(0, DESCRIBE_LIMIT)
      .map((e) => ({ range: e.range, members: [...e.sources.keys()] }));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#lifetime.abort(new KvError('KVMESH_ERR_RPC_ABORTED', 'data movement is stopping'));
    await Promise.allSettled([...this.#background]);
  }

  #add(into: Map<string, IncomingMove>, move: Move, present: ReadonlyMap<string, Member>): void {
    const selfId = this.#o.selfId;
    if (!move.to.includes(selfId) || move.from.includes(selfId)) return;
    const view = this.#o.view();
    for (const id of move.from) {
      const source = present.get(id);
      if (source === undefined || this.#cleared.get(pairKey(move.range, id)) === view) continue;
      let entry = into.get(move.range);
      if (entry === undefined) {
        const sinceMs = this.#incoming.get(move.range)?.sinceMs ?? this.#o.clock.now();
        entry = { range: move.range, move, sources: new Map(), sinceMs };
        into.set(move.range, entry);
      }
      entry.sources.set(id, source);
    }
  }

  #changed(): void {
    this.#queries();
    this.#o.onChange();
  }

  /** Starts the queries while anything is pending (asking at once), stops them when nothing is. */
  #queries(): void {
    if (this.#stopped) return;
    if (this.#incoming.size === 0) {
      this.#timer?.cancel();
      this.#timer = undefined;
      return;
    }
    if (this.#timer !== undefined) return;
    this.#timer = this.#o.clock.setInterval(() => this.#track(this.#query()), this.#o.settings.moveQueryIntervalMs);
    this.#track(this.#query());
  }

  async #query(): Promise<void> {
    if (this.#querying || this.#stopped) return;
    this.#querying = true;
    try {
      this.#expire();
      const sources = new Map<string, Member>();
      for (const entry of this.#incoming.values()) for (const [id, m] of entry.sources) sources.set(id, m);
      const payload: MoveQueryPayload = { target: this.#o.selfId };
      await Promise.all([...sources.values()].map((source) => this.#ask(source, payload)));
    } finally {
      this.#querying = false;
    }
  }

  async #ask(source: Member, payload: MoveQueryPayload): Promise<void> {
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
    // "Not busy" counts only for the view this node planned: an old owner behind or ahead may still owe data.
    const view = this.#o.view();
    if (!reply.busy && view !== '' && reply.view === view) {
      this.#o.logger.debug({ source: source.id }, 'an old owner has nothing more to send here');
      this.drop(source.id);
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
    if (changed) this.#changed();
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise.catch((err: unknown) => this.#o.onError(err, 'asking old owners about moves'));
    this.#background.add(tracked);
    void tracked.finally(() => this.#background.delete(tracked));
  }
}

const pairKey = (range: string, source: string): string => `${range}\n${source}`;
