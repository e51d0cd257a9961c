import { setMaxListeners } from 'node:events';
import type { DeleteResult, GetResult, KvCallOptions, KvService, PutResult, WriteConditions } from '../contracts/kv.js';
import type { Lifecycle } from '../contracts/lifecycle.js';
import type { Logger } from '../contracts/logger.js';
import type { Member } from '../contracts/membership.js';
import { KvError, isKvError } from '../errors.js';
import type { ComponentDefinition } from '../kernel/graph.js';
import { Movement } from '../movement/movement.js';
import type { MovementStatus } from '../movement/movement.js';
import type { Components } from '../plugin.js';
import { TOKENS } from '../tokens.js';
import { HybridLogicalClock } from './hlc.js';
import { KeyLocks } from './key-locks.js';
import { LocalKeyTransfer } from './key-transfer.js';
import { readKvSettings } from './kv-config.js';
import type { KvSettings } from './kv-config.js';
import type { KvContext } from './kv-context.js';
import { defineKvMessages } from './kv-messages.js';
import { createKvServiceStats, failureOutcome } from './kv-stats.js';
import type { KvOperation, KvOutcome, KvServiceStats } from './kv-stats.js';
import { checkConditions, checkContentType, checkKey, checkValue } from './limits.js';
import { LocalReplica } from './local-replica.js';
import { ReadPath } from './read-path.js';
import { ReplicaClient } from './replica-client.js';
import { TombstoneCollector } from './tombstone-collector.js';
import { WritePath } from './write-path.js';

/** The components the KV service is built from (`membership` when the node has one). */
export type KvServiceComponents = Pick<
  Components,
  'node' | 'config' | 'clock' | 'random' | 'storage' | 'placement' | 'rpc' | 'messages' | 'logger'
> &
  Partial<Pick<Components, 'membership'>>;

/** Names of the components `kvServiceDefinition` needs. */
export const KV_SERVICE_NEEDS = [
  'node',
  'config',
  'clock',
  'random',
  'storage',
  'placement',
  'rpc',
  'messages',
  'logger',
] as const;

/** Components the KV service uses when the node has them. */
export const KV_SERVICE_OPTIONAL_NEEDS = ['membership'] as const;

/**
 * The KV service: every client operation asks placement for the key's
 * replica set, then reads (ReadPath) or writes (WritePath) those replicas
 * — local storage for this node, `kvmesh.kv.*` requests for the others —
 * and applies the version rule. This class checks arguments, counts
 * outcomes and owns the lifecycle; the paths hold the logic.
 *
 * - Key, value and arguments are checked before any work: a refused
 *   operation reads and writes nothing.
 * - A replica request that placement does not admit at the replica's epoch
 *   makes the operation locate the key again, a bounded number of times.
 */
export class CoordinatorKvService implements KvService, Lifecycle {
  readonly hlc: HybridLogicalClock;
  readonly settings: KvSettings;
  /** Rebalancing, hinted hand-off and anti-entropy of this node's records. */
  readonly movement: Movement;
  readonly #components: KvServiceComponents;
  readonly #logger: Logger;
  readonly #stats = createKvServiceStats();
  readonly #local: LocalReplica;
  readonly #reads: ReadPath;
  readonly #writes: WritePath;
  readonly #collector: TombstoneCollector;
  readonly #background = new Set<Promise<unknown>>();
  readonly #lifetime = new AbortController();
  #state: 'created' | 'running' | 'stopped' = 'created';
  /** Why client operations are refused now (the node is joining its cluster); undefined: they are served. */
  #held: string | undefined;

  constructor(components: KvServiceComponents) {
    // Every replica request in flight listens on the lifetime signal; there are as many as requests.
    setMaxListeners(0, this.#lifetime.signal);
    this.#components = components;
    this.#logger = components.logger;
    this.settings = readKvSettings(components.config);
    this.hlc = new HybridLogicalClock(components.clock, components.node.id);
    defineKvMessages(components.messages);
    this.#local = new LocalReplica({
      storage: components.storage,
      hlc: this.hlc,
      limits: this.settings,
      logger: this.#logger,
      placement: components.placement,
    });
    const replicas = new ReplicaClient({
      selfId: components.node.id,
      local: this.#local,
      rpc: components.rpc,
      hlc: this.hlc,
      logger: this.#logger,
      timeoutMs: this.settings.timeoutMs,
    });
    this.movement = new Movement({ ...components, hlc: this.hlc });
    const movement = this.movement;
    const lifetime = this.#lifetime.signal;
    this.#local.readThrough = (key) => {
      const sources = movement.readThrough(key);
      if (sources === undefined) return undefined;
      // A source that cannot answer is left out; when none can, this replica cannot say what the key
      // holds (the newest copy may be at a source), so its read fails and the quorum asks another.
      return Promise.allSettled(sources.map((m) => replicas.read(m, key, 0, lifetime, true))).then((settled) => {
        const records = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
        if (records.length === 0 && settled.length > 0) throw (settled[0] as PromiseRejectedResult).reason;
        return records;
      });
    };
    const ctx: KvContext = {
      selfId: components.node.id,
      placement: components.placement,
      local: this.#local,
      replicas,
      rpc: components.rpc,
      settings: this.settings,
      stats: this.#stats,
      clock: components.clock,
      random: components.random,
      hlc: this.hlc,
      logger: this.#logger,
      lifetime: this.#lifetime.signal,
      hint: (fallback, target, record) => movement.hint(fallback, target, record, lifetime),
      track: (promise) => this.#track(promise),
      replicaFailed: (member, err, what) => this.#replicaFailed(member, err, what),
    };
    this.#reads = new ReadPath(ctx);
    const locks = new KeyLocks();
    this.#writes = new WritePath(ctx, this.#reads, locks);
    components.placement.useKeyTransfer?.(new LocalKeyTransfer({ storage: components.storage, hlc: this.hlc, locks }));
    this.#local.writeHandler = (payload) => {
      // A node that has not joined knows only itself: it would run the write with a quorum of one,
      // stamped by a clock nothing corrected yet. The sender takes the next replica.
      if (this.#held !== undefined) throw notJoined(this.#held);
      return this.#writes.onForwarded(payload);
    };
    this.#collector = new TombstoneCollector({
      clock: components.clock,
      storage: components.storage,
      logger: this.#logger,
      graceMs: this.settings.tombstoneGraceMs,
      onCollected: (count) => (this.#stats.tombstonesCollected += count),
    });
  }

  /** Operation counters for metrics (live object: read it, never write it). */
  get stats(): KvServiceStats {
    return this.#stats;
  }

  /** Progress of rebalancing, hints and anti-entropy (GET /v1/cluster, /metrics). */
  movementStatus(): MovementStatus {
    return this.movement.status();
  }

  /**
   * Resolves when no move of records to this node is pending: a node that
   * joins or returns waits for it before it reports ready.
   */
  settled(): Promise<void> {
    return this.movement.settled();
  }

  /**
   * Refuses client operations (get, put, delete) while `reason` is set, with
   * KVMESH_ERR_KV_NOT_JOINED naming it; `undefined` serves them again. The
   * node goes on answering other nodes as a replica. Whoever joins the node
   * to its cluster holds it until the join answers: before, the node knows
   * only itself, and would take every key for its own, with a quorum of
   * one.
   */
  holdClients(reason: string | undefined): void {
    this.#held = reason;
  }

  /** Removes tombstones older than `kv.tombstoneGraceMs` now, as the periodic run does. */
  collectTombstones(): Promise<number> {
    return this.#collector.collect();
  }

  start(): void {
    if (this.#state !== 'created') return;
    this.#local.serve(this.#components.rpc);
    this.movement.start();
    this.#collector.start();
    this.#state = 'running';
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    this.#lifetime.abort(new KvError('KVMESH_ERR_RPC_ABORTED', 'the KV service is stopping'));
    await Promise.all([this.#collector.stop(), this.movement.stop()]);
    await Promise.allSettled([...this.#background]);
  }

  async get(key: string, options?: KvCallOptions): Promise<GetResult> {
    const signal = options?.signal;
    try {
      checkKey(key, this.settings);
      this.#checkRunning();
      if (signal?.aborted) throw aborted('read');
      const { newest, servedBy } = await this.#reads.get(key, signal);
      const record = newest !== undefined && !newest.tombstone ? newest : undefined;
      this.#count('get', record === undefined ? 'not_found' : 'found');
      return { record, servedBy };
    } catch (err) {
      throw this.#failed('get', err, signal);
    }
  }

  async put(
    key: string,
    value: Uint8Array,
    contentType: string,
    conditions?: WriteConditions,
    options?: KvCallOptions,
  ): Promise<PutResult> {
    const signal = options?.signal;
    try {
      checkKey(key, this.settings);
      checkValue(value, this.settings);
      checkContentType(contentType);
      const checked = checkConditions(conditions);
      this.#checkRunning();
      if (signal?.aborted) throw aborted('write');
      const result = await this.#writes.put(key, value, contentType, checked, signal, options?.requestId);
      this.#count('put', result.created ? 'created' : 'replaced');
      return result;
    } catch (err) {
      throw this.#failed('put', err, signal);
    }
  }

  async delete(key: string, conditions?: WriteConditions, options?: KvCallOptions): Promise<DeleteResult> {
    const signal = options?.signal;
    try {
      checkKey(key, this.settings);
      const checked = checkConditions(conditions);
      this.#checkRunning();
      if (signal?.aborted) throw aborted('delete');
      const result = await this.#writes.delete(key, checked, signal, options?.requestId);
      this.#count('delete', result.existed ? 'deleted' : 'not_found');
      return result;
    } catch (err) {
      throw this.#failed('delete', err, signal);
    }
  }

  /** Counts a failed operation and says why; a cancelled one fails its replica requests, so blame the caller. */
  #failed(operation: KvOperation, err: unknown, signal: AbortSignal | undefined): unknown {
    const failure =
      signal?.aborted && failureOutcome(err) !== 'invalid' && !isKvError(err, 'KVMESH_ERR_KV_PRECONDITION_FAILED')
        ? aborted(operation === 'get' ? 'read' : operation === 'put' ? 'write' : 'delete')
        : err;
    this.#count(operation, failureOutcome(failure));
    return failure;
  }

  /** Keeps `promise` until it settles, so stop() can wait for writes and repairs still in flight. */
  #track<T>(promise: Promise<T>): Promise<T> {
    this.#background.add(promise);
    const forget = (): void => void this.#background.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  #replicaFailed(member: Member, err: unknown, what: string): void {
    this.#stats.replicaFailures++;
    this.#logger.debug({ replica: member.id, err: (err as Error)?.message }, `replica ${what} failed`);
    if (
      isKvError(err, 'KVMESH_ERR_TRANSPORT_UNREACHABLE') ||
      isKvError(err, 'KVMESH_ERR_RPC_TIMEOUT') ||
      isKvError(err, 'KVMESH_ERR_TRANSPORT_CLOSED')
    ) {
      this.#components.membership?.reportUnreachable?.(member.id);
    }
  }

  #count(operation: KvOperation, outcome: KvOutcome): void {
    this.#stats.operations[operation][outcome]++;
  }

  #checkRunning(): void {
    if (this.#state !== 'running') {
      throw new KvError(
        'KVMESH_ERR_KERNEL_STATE',
        this.#state === 'created' ? 'the KV service is not started yet' : 'the KV service is stopped',
      );
    }
    if (this.#held !== undefined) throw notJoined(this.#held);
  }
}

function notJoined(held: string): KvError {
  return new KvError(
    'KVMESH_ERR_KV_NOT_JOINED',
    `this node is ${held} and coordinates no reads or writes before it has; use another node, or retry once GET /v1/ready answers 200`,
  );
}

/**
 * The component definition the host passes to `createNode({ extras })`:
 * name `kv`, token TOKENS.kv, built from KV_SERVICE_NEEDS (and membership when the node has one).
 */
export function kvServiceDefinition(): ComponentDefinition<CoordinatorKvService> {
  return {
    name: 'kv',
    token: TOKENS.kv,
    label: 'kv',
    needs: KV_SERVICE_NEEDS,
    optionalNeeds: KV_SERVICE_OPTIONAL_NEEDS,
    build: (c) => new CoordinatorKvService(c as unknown as KvServiceComponents),
  };
}

function aborted(what: string): KvError {
  return new KvError('KVMESH_ERR_RPC_ABORTED', `the ${what} was cancelled by its caller`);
}
