import type { Message } from '../contracts/codec.js';
import type { DeleteResult, PutResult, WriteConditions } from '../contracts/kv.js';
import type { Member } from '../contracts/membership.js';
import type { LocateOptions, ReplicaSet } from '../contracts/placement.js';
import type { StoredRecord, Version } from '../contracts/storage.js';
import { KvError, isKvError } from '../errors.js';
import {
  RefusedError,
  admissionOf,
  notDelivered,
  refusedMessage,
  relocateIntent,
  withRelocation,
} from './admission.js';
import type { RelocateOptions } from './admission.js';
import { compareVersions, formatVersion, isVersion } from './hlc.js';
import type { KeyLocks } from './key-locks.js';
import { isLive, isReachable, selfIn } from './kv-context.js';
import type { KvContext } from './kv-context.js';
import { KV_MESSAGES } from './kv-messages.js';
import type { Expectation, RefusedPayload, WritePayload, WriteReplyPayload } from './kv-messages.js';
import { quoteKey } from './limits.js';
import type { KnownRecord, WriteAck } from './local-replica.js';
import { gather, quorumError } from './quorum.js';
import type { ReadPath } from './read-path.js';

const EMPTY = new Uint8Array(0);
/** What a write without a signal asks placement: one shared object, not one per write. */
const WRITE_INTENT: LocateOptions = Object.freeze({ intent: 'write' });
/** Stamping again after a replica held a newer version: at most this many versions per write. */
const MAX_STAMPS = 3;
/**
 * A forwarded write waits for the primary's own quorum read and replica
 * writes, each bounded by `rpc.timeoutMs`: this many of those deadlines.
 */
const FORWARD_TIMEOUT_FACTOR = 3;

/** A client write: a put, or a delete (`value` undefined). */
interface WriteOp {
  readonly key: string;
  readonly value: Uint8Array | undefined;
  readonly contentType: string;
  readonly conditions: WriteConditions | undefined;
  /** The client request's id, for logs (a forwarded write takes it to the primary). */
  readonly requestId: string | undefined;
}

/** What the primary did. */
interface Applied {
  readonly outcome: 'APPLIED' | 'NOTHING_TO_DELETE';
  readonly created: boolean;
  readonly version: Version | undefined;
}

/** A replica held a version at least as new as the one being written, so the write did not land there. */
class Superseded extends Error {
  readonly version: Version;
  constructor(member: Member, version: Version) {
    super(`replica ${member.id} holds a newer version (${formatVersion(version)})`);
    this.version = version;
  }
}

/** A replica held a record that a conditional write's expectation excludes: a concurrent conditional write got there first. */
class Conflict extends Error {
  readonly member: Member;
  constructor(member: Member, version: Version | undefined) {
    super(
      `replica ${member.id} holds ${version === undefined ? 'a record' : `version ${formatVersion(version)}`}, written since the condition was checked`,
    );
    this.member = member;
  }
}

/**
 * Writes. Every write of a key is run by the key's primary: the first
 * reachable replica in placement's order. Another node forwards the write
 * there (one hop, `kvmesh.kv.Write`). The primary, under its lock on the
 * key, reads what the replicas hold (a quorum read for conditional writes
 * and deletes, its own record otherwise), checks the conditions, stamps a
 * version newer than anything it saw, and writes every reachable replica.
 * The write is acknowledged once `writeQuorum` replicas *stored* it; a
 * replica that already held a newer version (a clock that ran ahead) makes
 * the primary observe that version and stamp again, so an acknowledged
 * write is the newest on every replica that acknowledged it. Replicas that
 * are down get the record as a hint on a fallback member.
 */
export class WritePath {
  readonly #ctx: KvContext;
  readonly #reads: ReadPath;
  readonly #locks: KeyLocks;
  /** The relocation loop's options for a write without a signal. */
  readonly #relocate: RelocateOptions;
  /** Ids of forwarded writes whose client gave none: `<node id>-<n>`. */
  #requests = 0;

  constructor(ctx: KvContext, reads: ReadPath, locks: KeyLocks) {
    this.#ctx = ctx;
    this.#reads = reads;
    this.#locks = locks;
    this.#relocate = { clock: ctx.clock, onRetry: () => void ctx.stats.relocations++ };
  }

  async put(
    key: string,
    value: Uint8Array,
    contentType: string,
    conditions: WriteConditions | undefined,
    signal: AbortSignal | undefined,
    requestId?: string,
  ): Promise<PutResult> {
    const { applied, servedBy } = await this.#run({ key, value, contentType, conditions, requestId }, signal);
    return { created: applied.created, version: applied.version!, servedBy };
  }

  async delete(
    key: string,
    conditions: WriteConditions | undefined,
    signal: AbortSignal | undefined,
    requestId?: string,
  ) {
    const { applied, servedBy } = await this.#run(
      { key, value: undefined, contentType: '', conditions, requestId },
      signal,
    );
    const result: DeleteResult =
      applied.outcome === 'APPLIED'
        ? { existed: true, version: applied.version!, servedBy }
        : { existed: false, servedBy };
    return result;
  }

  /** Runs a write forwarded to this node (admitted already): the `kvmesh.kv.Write` handler. */
  async onForwarded(payload: WritePayload): Promise<Message> {
    const conditions: WriteConditions = {
      ...(payload.ifMatch !== '' ? { ifMatch: payload.ifMatch } : {}),
      ...(payload.ifNoneMatch ? { ifNoneMatch: '*' as const } : {}),
    };
    const op: WriteOp = {
      key: payload.key,
      value: payload.tombstone ? undefined : payload.value,
      contentType: payload.contentType,
      conditions: Object.keys(conditions).length === 0 ? undefined : conditions,
      requestId: payload.requestId === '' || payload.requestId === undefined ? undefined : payload.requestId,
    };
    this.#ctx.logger.debug({ key: op.key, requestId: op.requestId }, 'running a write forwarded here as its primary');
    let reply: WriteReplyPayload;
    try {
      const set = await this.#ctx.placement.locate(op.key, { intent: 'write' });
      if (op.conditions !== undefined) {
        // A condition is decided by the one primary, under its lock: a node that is not the
        // first reachable replica sends the write there, as two deciders could both let it pass.
        const primary = set.replicas.find(isReachable);
        if (primary !== undefined && !this.#ctx.replicas.isLocal(primary)) {
          const refused: RefusedPayload = {
            kind: 'MOVED',
            epoch: set.epoch,
            retryAfterMs: 0,
            toId: primary.id,
            toAddress: primary.address,
          };
          return { type: KV_MESSAGES.refused, payload: refused };
        }
      }
      const applied = await this.#locks.run(op.key, () => this.#coordinate(set, op));
      reply = {
        outcome: applied.outcome,
        created: applied.created,
        version: applied.version ?? null,
        currentVersion: '',
        message: '',
      };
    } catch (err) {
      // Placement stopped admitting the key here while the write waited for the lock: the sender locates again.
      if (err instanceof RefusedError) return refusedMessage(err.admission, this.#ctx.placement.epoch);
      if (!isKvError(err, 'KVMESH_ERR_KV_PRECONDITION_FAILED')) throw err;
      const current = (err.details as { currentVersion?: unknown } | undefined)?.currentVersion;
      reply = {
        outcome: 'PRECONDITION_FAILED',
        created: false,
        version: null,
        currentVersion: typeof current === 'string' ? current : '',
        message: err.message,
      };
    }
    return { type: KV_MESSAGES.writeReply, payload: reply };
  }

  /** Locates the key, then runs the write here (primary) or at the primary; relocates on refusals. */
  // Not async: it hands back the relocation loop's own promise. This is every
  // client write, so the loop's options are built once (without a signal) and
  // the common round (this node is the primary) allocates no candidate list.
  #run(op: WriteOp, signal: AbortSignal | undefined): Promise<{ applied: Applied; servedBy: Member }> {
    const ctx = this.#ctx;
    // Primaries that could not be reached during this write: the next reachable replica takes over.
    let skip: Set<string> | undefined;
    return withRelocation(signal ? { ...this.#relocate, signal } : this.#relocate, async (moved, round) => {
      if (signal?.aborted) throw signal.reason;
      const set = await ctx.placement.locate(
        op.key,
        round > 0 ? relocateIntent('write', signal) : signal ? { intent: 'write', signal } : WRITE_INTENT,
      );
      // Every reachable replica not skipped, in placement's order; or where the key moved.
      const candidates = moved !== undefined ? [moved] : set.replicas;
      const failures: { member: Member; err: unknown }[] = [];
      let tried = 0;
      for (const primary of candidates) {
        if (moved === undefined && (!isReachable(primary) || skip?.has(primary.id))) continue;
        tried++;
        if (ctx.replicas.isLocal(primary)) {
          const applied = await this.#locks.run(op.key, () => this.#coordinate(set, op));
          return { applied, servedBy: primary };
        }
        // The primary's log lines name the client's request, or this node's id for it.
        if (op.requestId === undefined) op = { ...op, requestId: this.#nextRequestId() };
        try {
          return { applied: await this.#forward(primary, set.epoch, op, signal), servedBy: primary };
        } catch (err) {
          // The primary's own answer (a refusal, a failed condition, no quorum) stands.
          if (err instanceof RefusedError || !isKvError(err)) throw err;
          // A primary that has not joined yet refused the write whole: nothing was applied. A plain
          // write goes to the next replica; a conditional one waits for its primary (the next
          // replica would send it back there), and the client hears that nothing was applied.
          const refusedWhole = isKvError(err, 'KVMESH_ERR_KV_NOT_JOINED');
          if (refusedWhole && op.conditions !== undefined) throw primaryJoining(op, primary);
          if (!refusedWhole && !retriableForward(err)) throw err;
          if (!refusedWhole) ctx.replicaFailed(primary, err, `forwarded write (request ${op.requestId})`);
          // A write that may have reached the primary is not sent to another: the
          // first may still apply it later, above what the second acknowledged
          // meanwhile, and a conditional one could apply twice. The client hears so.
          // A conditional write is never sent on: a connection that broke while the
          // primary ran it (a crash after it stored the record) fails as a refused one does.
          if (!refusedWhole && (op.conditions !== undefined || !notDelivered(err))) throw uncertain(op, primary, err);
          (skip ??= new Set()).add(primary.id);
          failures.push({ member: primary, err });
        }
      }
      throw tried === 0
        ? quorumError(writeWhat(op), Math.max(1, set.writeQuorum), 0, [], 'no replica is up')
        : quorumError(writeWhat(op), Math.max(1, set.writeQuorum), 0, failures);
    });
  }

  /** Sends the write to `primary` and turns its reply into the result. */
  async #forward(primary: Member, epoch: number, op: WriteOp, signal: AbortSignal | undefined): Promise<Applied> {
    const ctx = this.#ctx;
    const payload: WritePayload = {
      key: op.key,
      tombstone: op.value === undefined,
      value: op.value ?? EMPTY,
      contentType: op.contentType,
      ifMatch: op.conditions?.ifMatch ?? '',
      ifNoneMatch: op.conditions?.ifNoneMatch === '*',
      epoch,
      requestId: op.requestId ?? '',
    };
    ctx.stats.forwardedWrites++;
    const reply = await ctx.rpc.request<WriteReplyPayload | RefusedPayload>(
      primary.address,
      KV_MESSAGES.write,
      payload,
      {
        timeoutMs: ctx.settings.timeoutMs * FORWARD_TIMEOUT_FACTOR,
        ...(signal ? { signal: AbortSignal.any([signal, ctx.lifetime]) } : { signal: ctx.lifetime }),
      },
    );
    if (reply.type === KV_MESSAGES.refused) {
      throw new RefusedError(admissionOf(reply.payload as RefusedPayload), `primary ${primary.id}`, op.key);
    }
    const answer = reply.payload as WriteReplyPayload;
    if (answer.outcome === 'PRECONDITION_FAILED') {
      throw new KvError('KVMESH_ERR_KV_PRECONDITION_FAILED', answer.message, {
        details: answer.currentVersion === '' ? {} : { currentVersion: answer.currentVersion },
      });
    }
    const applied = answer.outcome === 'APPLIED';
    if (applied !== isVersion(answer.version) || (answer.outcome === 'NOTHING_TO_DELETE' && op.value !== undefined)) {
      throw new KvError(
        'KVMESH_ERR_MESSAGE_INVALID',
        `primary ${primary.id} answered a ${op.value === undefined ? 'delete' : 'put'} of key ${quoteKey(op.key)} with ${answer.outcome} and ${answer.version === null ? 'no' : 'a'} version`,
      );
    }
    if (answer.version !== null) {
      try {
        ctx.hlc.observe(answer.version);
      } catch {
        // A primary whose clock ran far ahead: its answer still stands.
      }
    }
    return { outcome: answer.outcome, created: answer.created, version: answer.version ?? undefined };
  }

  #nextRequestId(): string {
    return `${this.#ctx.selfId}-${(++this.#requests).toString(36)}`;
  }

  /** The primary's part, under the key's lock. */
  async #coordinate(set: ReplicaSet, op: WriteOp): Promise<Applied> {
    const ctx = this.#ctx;
    if (selfIn(set, ctx.selfId) !== undefined) {
      // Asked under the lock, as remote replicas ask before they store: a write located before
      // placement gave the key up (or froze it to hand it over) must not land here afterwards.
      const admission = ctx.placement.admit(op.key, 'write', set.epoch);
      if (admission.kind !== 'own') throw new RefusedError(admission, `primary ${ctx.selfId}`, op.key);
    }
    const isDelete = op.value === undefined;
    const needsQuorumRead = isDelete || op.conditions !== undefined;
    let floor: Version | undefined;
    for (let stamp = 0; stamp < MAX_STAMPS; stamp++) {
      let newest: StoredRecord | undefined;
      let local: KnownRecord | undefined;
      if (needsQuorumRead) {
        const current = await this.#reads.read(op.key, set);
        newest = current.newest;
        local = current.local;
      } else if (selfIn(set, ctx.selfId) !== undefined) {
        const record = await ctx.local.read(op.key);
        newest = record;
        local = { record };
      }
      if (op.conditions !== undefined) checkPreconditions(op.key, newest, op.conditions);
      const nothingLive = isDelete && !isLive(newest);
      // A delete that finds nothing live still writes its tombstone when replicas went unread:
      // one outside the quorum read may hold a value the client means to delete.
      if (nothingLive && set.readQuorum >= set.replicas.length) {
        return { outcome: 'NOTHING_TO_DELETE', created: false, version: undefined };
      }
      // The version must beat what the replicas hold, and what a replica showed us last round.
      if (newest !== undefined) ctx.hlc.observe(newest.version);
      if (floor !== undefined) ctx.hlc.observe(floor);
      const record: StoredRecord = {
        key: op.key,
        value: op.value ?? EMPTY,
        contentType: isDelete ? '' : op.contentType,
        version: ctx.hlc.now(),
        tombstone: isDelete,
      };
      try {
        const acks = await this.#replicate(set, record, local, op.conditions === undefined, expectation(op, newest));
        if (nothingLive) return { outcome: 'NOTHING_TO_DELETE', created: false, version: undefined };
        const created = needsQuorumRead
          ? !isLive(newest)
          : !isLive(newest) && !acks.some((ack) => ack.previous !== undefined && !ack.previousTombstone);
        return { outcome: 'APPLIED', created, version: record.version };
      } catch (err) {
        if (!(err instanceof Superseded)) throw err;
        floor = err.version;
        ctx.logger.debug(
          { key: op.key, requestId: op.requestId, err: err.message },
          'a replica held a newer version: stamping again',
        );
      }
    }
    throw new KvError(
      'KVMESH_ERR_KV_QUORUM',
      `write of key ${quoteKey(op.key)} was superseded ${MAX_STAMPS} times by newer versions on its replicas; nothing was acknowledged, retry`,
    );
  }

  /**
   * Writes `record` to every reachable replica; resolves with `writeQuorum`
   * acknowledgements of replicas that stored it (`conditionalWriteQuorum`
   * for a conditional write).
   * @throws Superseded when a replica held a newer version before the quorum was reached.
   * @throws RefusedError when the quorum was missed and a replica refused the key at its epoch (a view
   *   change reached it first), if `relocatable`: the coordinator locates again and writes the value with
   *   a newer version, which a plain put or delete may (a conditional write may have been applied by the
   *   replicas that took it, so it answers the quorum failure instead).
   */
  async #replicate(
    set: ReplicaSet,
    record: StoredRecord,
    local: KnownRecord | undefined,
    relocatable: boolean,
    expect?: Expectation,
  ): Promise<WriteAck[]> {
    const ctx = this.#ctx;
    const needed = Math.max(1, expect === undefined ? set.writeQuorum : conditionalQuorumOf(set));
    const only = set.replicas.length === 1 ? set.replicas[0] : undefined;
    if (needed === 1 && only !== undefined && ctx.replicas.isLocal(only)) {
      const ack = await ctx.local.write(record, local, expect);
      if (ack.conflict === true) throw lostRace(record.key, new Conflict(only, ack.previous), 0, 0, false);
      if (!stored(ack, record)) throw new Superseded(only, ack.previous!);
      return [ack];
    }
    const what = writeWhat(record);
    // A replica placement already knows to be down would only fail after a
    // deadline; when too few are left, refuse before anything is written.
    const targets = set.replicas.filter((m) => ctx.replicas.isLocal(m) || isReachable(m));
    if (targets.length < needed) {
      throw quorumError(what, needed, 0, [], `only ${targets.length} of ${set.replicas.length} replicas are up`);
    }
    const hinted = new Set<string>();
    const hint = (target: Member): void => this.#hint(set, target, record, hinted);
    for (const m of set.replicas) if (!targets.includes(m)) hint(m);
    let superseded: Superseded | undefined;
    let refused: RefusedError | undefined;
    let conflict: Conflict | undefined;
    // For a conditional write that loses a race: where it was stored, and whether a replica may hold it unseen.
    const storedAt: Member[] = [];
    let unsure = false;
    const tasks: Promise<unknown>[] = [];
    let settled = false;
    const acks = await gather({
      candidates: targets,
      needed,
      parallel: targets.length,
      task: (member) => {
        const task = ctx.track(
          ctx.replicas
            .write(member, record, set.epoch, ctx.replicas.isLocal(member) ? local : undefined, ctx.lifetime, expect)
            .then((ack) => {
              if (ack.conflict === true) throw new Conflict(member, ack.previous);
              if (!stored(ack, record)) throw new Superseded(member, ack.previous!);
              if (expect !== undefined) storedAt.push(member);
              return ack;
            }),
        );
        // Only a conditional write can lose a race and need to wait for its requests before it answers.
        if (expect !== undefined) tasks.push(task.catch(() => undefined));
        return task;
      },
      what,
      onFailure: (member, err) => {
        if (err instanceof Conflict) {
          conflict ??= err;
          return;
        }
        // A request that failed may have been stored before its answer was lost.
        if (!(err instanceof Superseded) && !(err instanceof RefusedError)) unsure = true;
        if (err instanceof Superseded) {
          if (settled) this.#lateSuperseded(set, record, err);
          else superseded ??= err;
          return;
        }
        ctx.replicaFailed(member, err, 'write');
        if (err instanceof RefusedError) refused ??= err;
        // A refusal is placement's answer and a drift refusal the replica's clock's: replaying would be refused alike.
        if (!(err instanceof RefusedError) && !isKvError(err, 'KVMESH_ERR_VERSION_DRIFT')) hint(member);
      },
    }).catch(async (err: unknown) => {
      if (conflict !== undefined) {
        await Promise.all(tasks);
        const kept = await this.#retract(record, storedAt);
        throw lostRace(record.key, conflict, storedAt.length, kept, unsure);
      }
      throw superseded ?? (relocatable ? refused : undefined) ?? err;
    });
    settled = true;
    if (superseded !== undefined) throw superseded;
    return acks.map((a) => a.value);
  }

  /**
   * Takes a conditional write that lost its race back from the replicas that
   * stored it, so it cannot later win over the write that won (the newest
   * version would, through read repair and anti-entropy). Resolves with the
   * number of replicas that may still hold it.
   */
  async #retract(record: StoredRecord, storedAt: readonly Member[]): Promise<number> {
    const ctx = this.#ctx;
    const results = await Promise.allSettled(
      storedAt.map((member) => ctx.replicas.retract(member, record.key, record.version, ctx.lifetime)),
    );
    let kept = 0;
    for (const [i, result] of results.entries()) {
      if (result.status === 'rejected') {
        kept++;
        ctx.replicaFailed(storedAt[i]!, result.reason, 'retract');
      }
    }
    ctx.logger.debug(
      { key: record.key, stored: storedAt.length, kept },
      'a conditional write lost its race: taken back',
    );
    return kept;
  }

  /** Leaves `record` for `target` (down, or its write failed) on a fallback, in the background. */
  #hint(set: ReplicaSet, target: Member, record: StoredRecord, hinted: Set<string>): void {
    const ctx = this.#ctx;
    if (ctx.hint === undefined || hinted.has(target.id)) return;
    hinted.add(target.id);
    const fallback =
      set.fallbacks.find((m) => isReachable(m) && !hinted.has(`fallback:${m.id}`)) ?? selfIn(set, ctx.selfId);
    if (fallback === undefined) return;
    hinted.add(`fallback:${fallback.id}`);
    const stored = ctx.hint(fallback, target, record).then(
      () => void ctx.stats.hintsWritten++,
      (err: unknown) => ctx.replicaFailed(fallback, err, 'hint'),
    );
    void ctx.track(stored);
  }

  /**
   * A replica answered, after the write was acknowledged, that it holds a
   * newer version (from a clock that ran ahead). Unless a later write
   * replaced this one meanwhile, stamp the same value again above it, so the
   * acknowledged value is not shadowed by an older write.
   */
  #lateSuperseded(set: ReplicaSet, record: StoredRecord, err: Superseded): void {
    const ctx = this.#ctx;
    ctx.logger.warn({ key: record.key, err: err.message }, 'an acknowledged write was shadowed: stamping it again');
    const restamp = this.#locks.run(record.key, async () => {
      const current = await ctx.local.readOwn(record.key);
      if (current !== undefined && compareVersions(current.version, record.version) !== 0) return;
      try {
        ctx.hlc.observe(err.version);
      } catch {
        return;
      }
      const again: StoredRecord = { ...record, version: ctx.hlc.now() };
      await this.#replicate(set, again, { record: current }, false);
    });
    void ctx.track(restamp.catch((failure: unknown) => ctx.replicaFailed(set.replicas[0]!, failure, 'restamp')));
  }
}

/** What every replica must hold for a conditional write to be stored there; undefined for a plain write. */
function expectation(op: WriteOp, newest: StoredRecord | undefined): Expectation | undefined {
  if (op.conditions === undefined) return undefined;
  if (op.conditions.ifNoneMatch === '*') return { absent: true, atMost: null };
  // If-Match held, so `newest` is live; a delete's own conditions are the same.
  return newest === undefined ? { absent: true, atMost: null } : { absent: false, atMost: newest.version };
}

/**
 * A conditional write found on a replica a record written after its
 * condition was checked (by a primary that believed itself the key's only
 * one, while views disagreed). Stored nowhere: the condition no longer
 * holds, 412. Stored somewhere (and taken back): the client hears that it
 * may or may not take effect, as a reader may have seen it meanwhile.
 */
function lostRace(key: string, conflict: Conflict, stored: number, kept: number, unsure: boolean): KvError {
  if (stored === 0 && !unsure) {
    return new KvError(
      'KVMESH_ERR_KV_PRECONDITION_FAILED',
      `key ${quoteKey(key)} changed while the condition was checked (${conflict.message}); nothing was written`,
    );
  }
  const back =
    kept === 0
      ? `taken back from the ${stored} that stored it`
      : `${kept} of the ${stored} that stored it could not be asked to take it back`;
  return new KvError(
    'KVMESH_ERR_KV_QUORUM',
    `write of key ${quoteKey(key)} lost to a concurrent conditional write (${conflict.message}) after ${stored} replica(s) took it (${back}); it may or may not take effect: read the key before retrying`,
    { cause: conflict },
  );
}

/**
 * Acknowledgements a conditional write needs: placement's answer, or every
 * replica from a placement that gives none (a plugin written before the
 * member existed), the one bound that holds whatever its nodes name.
 */
function conditionalQuorumOf(set: ReplicaSet): number {
  const quorum = set.conditionalWriteQuorum as number | undefined;
  return typeof quorum === 'number' && Number.isInteger(quorum)
    ? Math.max(set.writeQuorum, quorum)
    : set.replicas.length;
}

/** The replica holds `record` now: it stored it, or already had exactly this version. */
function stored(ack: WriteAck, record: StoredRecord): boolean {
  return ack.written || (ack.previous !== undefined && compareVersions(ack.previous, record.version) === 0);
}

function writeWhat(op: { key: string }): string {
  return `write of key ${quoteKey(op.key)}`;
}

/** Failures after which another replica may run the write instead. */
function retriableForward(err: { code: string }): boolean {
  return (
    err.code === 'KVMESH_ERR_TRANSPORT_UNREACHABLE' ||
    err.code === 'KVMESH_ERR_TRANSPORT_CLOSED' ||
    err.code === 'KVMESH_ERR_RPC_TIMEOUT'
  );
}

function primaryJoining(op: WriteOp, primary: Member): KvError {
  return new KvError(
    'KVMESH_ERR_KV_NOT_JOINED',
    `conditional write of key ${quoteKey(op.key)}: its primary ${primary.id} is joining its cluster and runs no writes before it has; nothing was applied, retry shortly`,
  );
}

function uncertain(op: WriteOp, primary: Member, err: unknown): KvError {
  return new KvError(
    'KVMESH_ERR_KV_QUORUM',
    `write of key ${quoteKey(op.key)}: its primary ${primary.id} did not answer (${(err as Error).message}); it may or may not apply it: read the key before retrying a conditional write`,
    { cause: err },
  );
}

/**
 * @throws KvError KVMESH_ERR_KV_PRECONDITION_FAILED when `conditions` do not
 *   hold for `current` (the newest record, tombstones included).
 */
export function checkPreconditions(key: string, current: StoredRecord | undefined, conditions: WriteConditions): void {
  const live = isLive(current) ? current : undefined;
  const version = live === undefined ? undefined : formatVersion(live.version);
  const failed = (why: string): KvError =>
    new KvError('KVMESH_ERR_KV_PRECONDITION_FAILED', `key ${quoteKey(key)} ${why}; nothing was written`, {
      details: version === undefined ? {} : { currentVersion: version },
    });
  if (conditions.ifNoneMatch === '*' && live !== undefined) {
    throw failed(`exists (version ${version}) and If-None-Match: * allows only creating it`);
  }
  if (conditions.ifMatch !== undefined) {
    if (live === undefined) throw failed(`does not exist, so If-Match: ${conditions.ifMatch} cannot match`);
    if (conditions.ifMatch !== '*' && conditions.ifMatch !== version) {
      throw failed(`is at version ${version}, not ${conditions.ifMatch} (If-Match)`);
    }
  }
}
