import type { Clock } from '../contracts/clock.js';
import type { Message } from '../contracts/codec.js';
import type { Lifecycle } from '../contracts/lifecycle.js';
import type { Logger } from '../contracts/logger.js';
import type { Member, Membership } from '../contracts/membership.js';
import type { OwnershipChange, Placement } from '../contracts/placement.js';
import type { Random } from '../contracts/random.js';
import type { MessageRegistry, Rpc } from '../contracts/rpc.js';
import type { Storage, StoredRecord, Version } from '../contracts/storage.js';
import { isKvError } from '../errors.js';
import type { NodeInfo } from '../plugin.js';
import { AntiEntropy } from './anti-entropy.js';
import type { AntiEntropyPass } from './anti-entropy.js';
import { HintedHandoff } from './hints.js';
import { MOVEMENT_MESSAGES, defineMovementMessages } from './movement-messages.js';
import type {
  DigestRequestPayload,
  HintPayload,
  MoveDonePayload,
  MoveQueryPayload,
  PutBatchPayload,
  RepairRequestPayload,
} from './movement-messages.js';
import { DataMover, EMPTY_REPLY } from './mover.js';
import { PlanStore, planFilePath } from './plan-store.js';
import { Rebalancer } from './rebalancer.js';
import type { MoveSummary } from './rebalancer.js';
import { readMovementSettings } from './settings.js';
import type { MovementSettings } from './settings.js';
import { createMovementCounters } from './stats.js';
import type { MovementCounters } from './stats.js';

/** What the movement component is built from (the KV service passes its own components). */
export interface MovementComponents {
  node: NodeInfo;
  clock: Clock;
  random: Random;
  storage: Storage;
  placement: Placement;
  /** Absent on nodes without one: no rebalancing on membership changes, no anti-entropy; hints still replay. */
  membership?: Membership | undefined;
  rpc: Rpc;
  messages: MessageRegistry;
  logger: Logger;
  /** The node config; the options are read from its `kv` section. */
  config: Readonly<Record<string, unknown>>;
  /**
   * The KV service's hybrid logical clock. Every version stored from another
   * node's batch is observed first, so this node's later writes are newer
   * than what it received; a version the clock refuses (too far ahead) is
   * refused to the sender, who tries again later.
   */
  hlc?: { observe(version: Version): unknown } | undefined;
}

/** Progress of data movement for `GET /v1/cluster` and `/metrics`. Plain JSON. */
export interface MovementStatus {
  /** `moving` while a move from or to this node is unfinished. */
  readonly state: 'idle' | 'moving';
  /** Fingerprint of the member view the moves were planned for ('' before the first plan). */
  readonly view: string;
  readonly moves: {
    /** Outgoing moves planned / completed since start. */
    readonly planned: number;
    readonly done: number;
    /** Unfinished outgoing moves, and ranges moving here that are still pending. */
    readonly outgoing: number;
    readonly incoming: number;
    /** The first few of each. */
    readonly outgoingRanges: readonly MoveSummary[];
    readonly incomingRanges: readonly MoveSummary[];
  };
  readonly keys: {
    /** Records stored at new owners by rebalancing (counted per owner). */
    readonly copied: number;
    /** Records removed here after every new owner stored them. */
    readonly purged: number;
    /** Records this node stored from other nodes' batches. */
    readonly received: number;
  };
  readonly hints: {
    /** Hints held here for other members (as of the last replay round). */
    readonly held: number;
    readonly stored: number;
    readonly replayed: number;
  };
  readonly antiEntropy: {
    readonly passes: number;
    /** Digest buckets found to differ from a peer's, summed over the passes. */
    readonly differing: number;
    /** Records stored on either side by repairs this node started. */
    readonly repaired: number;
  };
  readonly lastError: MovementCounters['lastError'];
}

/**
 * Core's data movement: one data mover (`DataMover`: scan → PutBatch →
 * purge up to the copied version) and its users — rebalancing after
 * membership or ownership changes, hinted hand-off, anti-entropy. The KV
 * service builds it, calls `readThrough` on reads, `hint` for replicas that
 * are down, and waits for `settled` before a joining node reports ready.
 */
export class Movement implements Lifecycle {
  readonly settings: MovementSettings;
  readonly mover: DataMover;
  readonly #c: MovementComponents;
  readonly #logger: Logger;
  readonly #counters = createMovementCounters();
  readonly #rebalancer: Rebalancer;
  readonly #hints: HintedHandoff;
  readonly #antiEntropy: AntiEntropy;
  readonly #unsubscribe: Array<() => void> = [];
  /** Members a routed placement named in its ownership changes, by id. */
  readonly #routedPeers = new Map<string, Member>();
  #state: 'created' | 'running' | 'stopped' = 'created';

  constructor(components: MovementComponents) {
    this.#c = components;
    this.#logger = components.logger.child({ component: 'movement' });
    this.settings = readMovementSettings(components.config);
    defineMovementMessages(components.messages);
    const selfId = components.node.id;
    const onError = (err: unknown, context: string): void => this.#onError(err, context);
    const common = {
      selfId,
      storage: components.storage,
      placement: components.placement,
      membership: components.membership,
      rpc: components.rpc,
      clock: components.clock,
      logger: this.#logger,
      settings: this.settings,
      counters: this.#counters,
      onError,
    };
    this.mover = new DataMover({
      selfId,
      storage: components.storage,
      placement: components.placement,
      rpc: components.rpc,
      logger: this.#logger,
      batchSize: this.settings.batchSize,
      maxBatchBytes: maxBatchBytes(components.config),
      batchTimeoutMs: this.settings.batchTimeoutMs,
      observe: components.hlc === undefined ? undefined : (v) => components.hlc!.observe(v),
    });
    this.#rebalancer = new Rebalancer({
      ...common,
      random: components.random.fork(),
      mover: this.mover,
      plans: new PlanStore(planFilePath(components.node.dataDir, selfId), this.#logger),
    });
    this.#hints = new HintedHandoff({ ...common, mover: this.mover });
    this.#antiEntropy = new AntiEntropy({
      ...common,
      random: components.random.fork(),
      mover: this.mover,
      peers: () => [...this.#routedPeers.values()],
    });
  }

  /** The members a routed placement named, latest state first: anti-entropy's peers without a membership. */
  #notePeers(change: OwnershipChange): void {
    for (const m of change.members ?? []) if (m.id !== this.#c.node.id) this.#routedPeers.set(m.id, m);
    for (const id of change.departed ?? []) this.#routedPeers.delete(id);
  }

  /** Registers the movement request handlers, subscribes to membership and placement events, starts the timers. */
  start(): void {
    if (this.#state !== 'created') return;
    this.#state = 'running';
    const { rpc, membership, placement, storage } = this.#c;
    if (typeof storage.putBatch !== 'function') {
      this.#logger.warn(
        { storage: storage.name },
        'the storage has no putBatch: this node cannot receive moved records (KVMESH_ERR_MOVEMENT_UNSUPPORTED)',
      );
    }
    rpc.handle(MOVEMENT_MESSAGES.putBatch, (payload: PutBatchPayload) => this.#onPutBatch(payload));
    rpc.handle(MOVEMENT_MESSAGES.moveDone, (payload: MoveDonePayload): Message => {
      this.#rebalancer.onMoveDone(payload);
      return EMPTY_REPLY;
    });
    rpc.handle(MOVEMENT_MESSAGES.moveQuery, (payload: MoveQueryPayload): Message => ({
      type: MOVEMENT_MESSAGES.moveQueryReply,
      payload: this.#rebalancer.onMoveQuery(payload),
    }));
    rpc.handle(MOVEMENT_MESSAGES.hint, (payload: HintPayload) => this.#hints.onHint(payload));
    rpc.handle(MOVEMENT_MESSAGES.digest, async (payload: DigestRequestPayload) => ({
      type: MOVEMENT_MESSAGES.digestReply,
      payload: await this.#antiEntropy.onDigest(payload),
    }));
    rpc.handle(MOVEMENT_MESSAGES.repair, async (payload: RepairRequestPayload, context) => ({
      type: MOVEMENT_MESSAGES.repairReply,
      payload: await this.#antiEntropy.onRepair(payload, context),
    }));
    if (membership !== undefined) {
      this.#unsubscribe.push(
        membership.on((event) => {
          this.#rebalancer.onMembershipEvent(event);
          this.#hints.onMembershipEvent(event);
        }),
      );
    }
    const unsubscribe = placement.onOwnershipChange?.((change) => {
      this.#notePeers(change);
      this.#rebalancer.onOwnershipChange(change);
    });
    if (unsubscribe !== undefined) this.#unsubscribe.push(unsubscribe);
    this.#rebalancer.start();
    this.#hints.start();
    this.#antiEntropy.start();
  }

  /** Stops the timers and waits for the batches in flight; a move left unfinished resumes on the next start. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    await Promise.all([this.#rebalancer.stop(), this.#hints.stop(), this.#antiEntropy.stop()]);
  }

  /**
   * For a key this node owns now: the old owners to read through while a
   * move of it to this node is not complete; undefined otherwise (the common
   * case, answered without allocating when nothing moves here).
   */
  readThrough(key: string): readonly Member[] | undefined {
    return this.#rebalancer.readThrough(key);
  }

  /**
   * Stores `record` as a hint for `target` (a replica that is down) on
   * `fallback`: this node's `storage.hints`, or a `kvmesh.movement.Hint`
   * request to it. Resolves once it is stored there.
   * @throws KvError KVMESH_ERR_MOVEMENT_UNSUPPORTED when the fallback's storage keeps no hints,
   *   KVMESH_ERR_RPC_* / KVMESH_ERR_TRANSPORT_* when the fallback cannot be reached.
   */
  hint(fallback: Member, target: Member, record: StoredRecord, signal?: AbortSignal): Promise<void> {
    return this.#hints.hint(fallback, target, record, signal);
  }

  /** Resolves when no move to this node is pending (and the current view was planned). */
  settled(): Promise<void> {
    return this.#rebalancer.settled();
  }

  /** Runs one anti-entropy pass now, with `peer` or a random alive peer (operators, tests). */
  antiEntropyNow(peer?: Member): Promise<AntiEntropyPass | undefined> {
    return this.#antiEntropy.runOnce(peer);
  }

  /** Starts a hint replay round now, without waiting for the interval. */
  replayHints(): void {
    this.#hints.kick();
  }

  status(): MovementStatus {
    const c = this.#counters;
    const moves = this.#rebalancer.describe();
    return {
      state: this.#rebalancer.moving ? 'moving' : 'idle',
      view: moves.view,
      moves: {
        planned: c.movesPlanned,
        done: c.movesDone,
        outgoing: moves.outgoingPending,
        incoming: moves.incomingPending,
        outgoingRanges: moves.outgoing,
        incomingRanges: moves.incoming,
      },
      keys: { copied: c.keysCopied, purged: c.keysPurged, received: c.keysReceived },
      hints: { held: this.#hints.held, stored: c.hintsStored, replayed: c.hintsReplayed },
      antiEntropy: { passes: c.antiEntropyPasses, differing: c.antiEntropyDiffering, repaired: c.antiEntropyRepaired },
      lastError: c.lastError,
    };
  }

  async #onPutBatch(payload: PutBatchPayload): Promise<Message> {
    const reply = await this.mover.receive(payload);
    for (const outcome of reply.outcomes) if (outcome === 'PUT_WRITTEN') this.#counters.keysReceived++;
    return { type: MOVEMENT_MESSAGES.putBatchReply, payload: reply };
  }

  #onError(err: unknown, context: string): void {
    const message = err instanceof Error ? err.message : String(err);
    this.#counters.lastError = {
      message: `${context}: ${message}`,
      code: isKvError(err) ? err.code : null,
      atMs: this.#c.clock.now(),
    };
    this.#logger.warn({ err, context }, 'data movement failed; it is tried again');
  }
}

/**
 * A batch of moved records is at most as large as one value may be
 * (`limits.maxValueBytes`): the transport is checked, at config time, to
 * carry a request with one such value, so it carries every batch too.
 */
function maxBatchBytes(config: Readonly<Record<string, unknown>>): number | undefined {
  const limit = (config['limits'] as { maxValueBytes?: unknown } | undefined)?.maxValueBytes;
  return typeof limit === 'number' ? limit : undefined;
}
