import type { Member } from '../contracts/membership.js';
import type { LocateOptions, ReplicaSet } from '../contracts/placement.js';
import type { StoredRecord } from '../contracts/storage.js';
import { RefusedError, relocateIntent, withRelocation } from './admission.js';
import type { RelocateOptions } from './admission.js';
import { compareRecords } from './hlc.js';
import { isReachable } from './kv-context.js';
import type { KvContext } from './kv-context.js';
import type { KnownRecord } from './local-replica.js';
import { gather, quorumError } from './quorum.js';
import type { Answer } from './quorum.js';
import { quoteKey } from './limits.js';

/** What a read without a signal asks placement: one shared object, not one per read. */
const READ_INTENT: LocateOptions = Object.freeze({ intent: 'read' });

/** What a quorum read found. */
export interface ReadOutcome {
  /** The newest record among the answers, tombstones included. */
  readonly newest: StoredRecord | undefined;
  /** The replica whose answer is `newest` (the first to answer when none holds the key). */
  readonly servedBy: Member;
  /** This node's own record, when it answered as a replica. */
  readonly local: KnownRecord | undefined;
}

/**
 * Reads: ask `readQuorum` replicas (this node first, then placement's order,
 * replicas known to be down last), hedge to the next replica when one is
 * slow, answer the newest version, and write it back to replicas that
 * answered with an older one (read repair). A replica that refuses (not
 * its key at its epoch) makes the read locate the key again, bounded.
 */
export class ReadPath {
  readonly #ctx: KvContext;
  /** The relocation loop's options for a read without a signal. */
  readonly #relocate: RelocateOptions;

  constructor(ctx: KvContext) {
    this.#ctx = ctx;
    this.#relocate = { clock: ctx.clock, onRetry: () => void ctx.stats.relocations++ };
  }

  /** Locates `key` and reads it; relocates on refusals. */
  // Not async, and the loop's options without a signal are built once: this is every client read.
  get(key: string, signal: AbortSignal | undefined): Promise<ReadOutcome> {
    const ctx = this.#ctx;
    return withRelocation(signal ? { ...this.#relocate, signal } : this.#relocate, async (_moved, round) => {
      const set = await ctx.placement.locate(
        key,
        round > 0 ? relocateIntent('read', signal) : signal === undefined ? READ_INTENT : { intent: 'read', signal },
      );
      // Awaited, not returned: a returned promise costs two more turns to adopt.
      return await this.read(key, set, signal);
    });
  }

  /** The newest record among `readQuorum` replicas of `set`. */
  read(key: string, set: ReplicaSet, signal?: AbortSignal): Promise<ReadOutcome> {
    const ctx = this.#ctx;
    const only = set.replicas[0];
    if (only !== undefined && set.replicas.length === 1 && set.readQuorum <= 1 && ctx.replicas.isLocal(only)) {
      // One replica, this node: no quorum bookkeeping (single-node deployments), and no async frame.
      try {
        return ctx.local.read(key).then((record) => {
          // Asked after the read, as a remote replica is asked: a key handed over meanwhile is read again where it went.
          const admission = ctx.placement.admit(key, 'read', set.epoch);
          if (admission.kind !== 'own') throw new RefusedError(admission, `replica ${ctx.selfId}`, key);
          return { newest: record, servedBy: only, local: { record } };
        });
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.#readReplicas(key, set, signal);
  }

  async #readReplicas(key: string, set: ReplicaSet, signal: AbortSignal | undefined): Promise<ReadOutcome> {
    const ctx = this.#ctx;
    const only = set.replicas[0];
    const requestSignal = signal === undefined ? ctx.lifetime : AbortSignal.any([signal, ctx.lifetime]);
    if (only !== undefined && set.replicas.length === 1 && set.readQuorum <= 1) {
      // One replica, another node (this one holds no copy): one request and what
      // gather would make of its failure, without gather's closures and lists.
      try {
        const record = await ctx.replicas.read(only, key, set.epoch, requestSignal);
        return { newest: record, servedBy: only, local: undefined };
      } catch (err) {
        if (err instanceof RefusedError) throw err;
        ctx.replicaFailed(only, err, 'read');
        throw quorumError(`read of key ${quoteKey(key)}`, 1, 0, [{ member: only, err }]);
      }
    }
    const needed = Math.max(1, set.readQuorum);
    let refused: RefusedError | undefined;
    let answers: Answer<StoredRecord | undefined>[];
    try {
      answers = await gather({
        candidates: this.#order(set.replicas),
        needed,
        parallel: needed,
        task: (member) => ctx.replicas.read(member, key, set.epoch, requestSignal),
        what: `read of key ${quoteKey(key)}`,
        onFailure: (member, err) => {
          if (err instanceof RefusedError) refused ??= err;
          else ctx.replicaFailed(member, err, 'read');
        },
        ...(ctx.settings.hedgeMs > 0 ? { hedgeMs: ctx.settings.hedgeMs, clock: ctx.clock } : {}),
      });
    } catch (err) {
      // Too few replicas own the key at this epoch: locate again rather than fail.
      throw refused ?? err;
    }
    let newest: StoredRecord | undefined;
    let servedBy = answers[0]!.member;
    let local: KnownRecord | undefined;
    for (const { member, value } of answers) {
      if (value !== undefined && (newest === undefined || compareRecords(value, newest) > 0)) {
        newest = value;
        servedBy = member;
      }
      if (ctx.replicas.isLocal(member)) local = { record: value };
    }
    if (newest !== undefined && ctx.settings.readRepair) this.#repair(answers, newest, set.epoch);
    return { newest, servedBy, local };
  }

  /** Writes `newest` back, in the background, to the replicas that answered with something older. */
  #repair(answers: readonly Answer<StoredRecord | undefined>[], newest: StoredRecord, epoch: number): void {
    const ctx = this.#ctx;
    for (const { member, value } of answers) {
      const stale = value === undefined ? !newest.tombstone : compareRecords(value, newest) < 0;
      if (!stale) continue;
      const repair = ctx.replicas.write(member, newest, epoch, undefined, ctx.lifetime).then(
        () => void ctx.stats.readRepairs++,
        (err: unknown) => ctx.replicaFailed(member, err, 'read repair'),
      );
      void ctx.track(repair);
    }
  }

  /**
   * Local replica first (cheapest), then placement's order (`kv.readFrom`
   * "order") or a random order (`"any"`), replicas known to be down last.
   */
  #order(replicas: readonly Member[]): Member[] {
    const local: Member[] = [];
    const up: Member[] = [];
    const down: Member[] = [];
    for (const m of replicas) {
      if (this.#ctx.replicas.isLocal(m)) local.push(m);
      else if (isReachable(m)) up.push(m);
      else down.push(m);
    }
    const spread = this.#ctx.settings.readFrom === 'any' && up.length > 1 ? this.#ctx.random.shuffle(up) : up;
    return [...local, ...spread, ...down];
  }
}
