import type { Clock } from '../contracts/clock.js';
import type { Logger } from '../contracts/logger.js';
import type { Member } from '../contracts/membership.js';
import type { Move, Placement } from '../contracts/placement.js';
import type { Random } from '../contracts/random.js';
import type { Rpc } from '../contracts/rpc.js';
import type { StoredRecord } from '../contracts/storage.js';
import { KvError } from '../errors.js';
import { MOVEMENT_MESSAGES } from './movement-messages.js';
import type { MoveDonePayload } from './movement-messages.js';
import type { DataMover } from './mover.js';
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

/** A range this node sends away. */
export interface OutgoingMove {
  /** Range, targets and kind: a move planned again under the same id keeps its progress. */
  readonly id: string;
  readonly move: Move;
  readonly targets: readonly Member[];
  /** This node no longer owns the range: remove each record once every target stored it. */
  readonly purge: boolean;
  /** True for a move a routed placement announced (not recomputed from views, not persisted). */
  readonly routed: boolean;
  /** Fingerprint of the view the move was planned for (told to the targets when it is done). */
  view: string;
  done: boolean;
  passes: number;
  firstPassStartMs: number;
  /** Keys a target refused in the last pass (a non-purging move sends them again). */
  retry: ReadonlySet<string>;
}

/**
 * The outgoing move of `move` for this node, or undefined when this node
 * sends nothing: it is not an old owner, or no new owner is present (then
 * it keeps its data). A node that stays an owner copies to the new owners
 * only (`to \ from`); one that hands the range over copies to every owner in
 * `to`, so each confirms it holds the data before it is removed here.
 */
export function planOutgoing(
  selfId: string,
  move: Move,
  present: ReadonlyMap<string, Member>,
  view: string,
  routed: boolean,
  logger: Logger,
): OutgoingMove | undefined {
  if (!move.from.includes(selfId)) return undefined;
  const purge = !move.to.includes(selfId);
  const ids = purge
    ? move.to.filter((id) => id !== selfId)
    : move.to.filter((id) => !move.from.includes(id) && id !== selfId);
  const targets = ids.map((id) => present.get(id)).filter((m): m is Member => m !== undefined);
  if (targets.length === 0) {
    if (purge && ids.length > 0) {
      logger.warn({ range: move.range, to: ids }, 'no new owner of the range is present; keeping its data');
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
    view,
    done: false,
    passes: 0,
    firstPassStartMs: 0,
    retry: new Set(),
  };
}

export interface MoveRunnerOptions {
  readonly selfId: string;
  readonly clock: Clock;
  readonly random: Random;
  readonly rpc: Rpc;
  readonly placement: Placement;
  readonly mover: DataMover;
  readonly settings: MovementSettings;
  readonly counters: MovementCounters;
  readonly onError: (err: unknown, context: string) => void;
  /** The moves to run, unfinished ones first come first served; read again on every round. */
  readonly moves: () => readonly OutgoingMove[];
  /** Called after a move completed (and its targets were told), and when a round finished everything. */
  readonly onProgress: () => void;
}

const superseded = (): KvError => new KvError('KVMESH_ERR_RPC_ABORTED', 'a newer plan replaced this one');
const stopping = (): KvError => new KvError('KVMESH_ERR_RPC_ABORTED', 'data movement is stopping');

/**
 * Runs the outgoing moves one after another through the data mover, each
 * in passes: a purging move until a pass finds nothing left in its range; a
 * move of a range this node keeps with one catch-up pass (what was written
 * since the first began, and what was refused). A failed or refused move is
 * tried again after a backoff (`moveRetryMs`, doubling up to 30 s, with
 * jitter); a newer plan (`kick`) interrupts the round and starts a new one.
 * When a move is complete its targets get `kvmesh.movement.MoveDone`.
 */
export class MoveRunner {
  readonly #o: MoveRunnerOptions;
  readonly #throttle: Throttle;
  readonly #lifetime = new AbortController();
  #running: Promise<void> | undefined;
  #round: AbortController | undefined;
  #rerun = false;
  #stopped = false;

  constructor(options: MoveRunnerOptions) {
    this.#o = options;
    this.#throttle = new Throttle(options.clock, options.settings.rebalanceMaxKeysPerSecond);
  }

  /** Starts a round now; a round in progress stops at once and a new one begins. */
  kick(): void {
    if (this.#stopped) return;
    if (this.#running !== undefined) {
      this.#rerun = true;
      this.#round?.abort(superseded());
      return;
    }
    this.#running = this.#run().finally(() => (this.#running = undefined));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#lifetime.abort(stopping());
    this.#round?.abort(stopping());
    await this.#running;
  }

  #unfinished(): OutgoingMove[] {
    return this.#o.moves().filter((m) => !m.done);
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      this.#rerun = false;
      const round = new AbortController();
      this.#round = round;
      for (const move of this.#unfinished()) {
        if (round.signal.aborted) break;
        try {
          await this.#runMove(move, round.signal);
        } catch (err) {
          if (round.signal.aborted) break;
          this.#o.onError(err, `moving range ${move.move.range}`);
        }
        if (move.done) {
          this.#o.counters.movesDone++;
          await this.#announce(move);
          this.#o.onProgress();
        }
      }
      if (this.#stopped) return;
      if (this.#rerun) {
        failures = 0;
        continue;
      }
      if (this.#unfinished().length === 0) {
        this.#o.onProgress();
        return;
      }
      failures++;
      const delay = Math.min(MAX_RETRY_DELAY_MS, this.#o.settings.moveRetryMs * 2 ** Math.min(failures - 1, 16));
      try {
        // Jitter, so the old owners of a range do not all come back at once.
        await this.#o.clock.sleep(delay * (0.5 + this.#o.random.next() / 2), round.signal);
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
      source: this.#o.selfId,
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
}
