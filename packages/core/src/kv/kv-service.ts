import type { DeleteResult, KvService, PutResult, WriteConditions } from '../contracts/kv.js';
import type { Lifecycle } from '../contracts/lifecycle.js';
import type { Logger } from '../contracts/logger.js';
import type { Member } from '../contracts/membership.js';
import type { ReplicaSet } from '../contracts/placement.js';
import type { StoredRecord } from '../contracts/storage.js';
import { KvError } from '../errors.js';
import type { ComponentDefinition } from '../kernel/graph.js';
import type { Components } from '../plugin.js';
import { TOKENS } from '../tokens.js';
import { HybridLogicalClock, compareVersions, formatVersion } from './hlc.js';
import { KeyLocks } from './key-locks.js';
import { readKvSettings } from './kv-config.js';
import type { KvSettings } from './kv-config.js';
import { defineKvMessages } from './kv-messages.js';
import { createKvServiceStats, failureOutcome } from './kv-stats.js';
import type { KvOperation, KvOutcome, KvServiceStats } from './kv-stats.js';
import { checkConditions, checkContentType, checkKey, checkValue, quoteKey } from './limits.js';
import { LocalReplica } from './local-replica.js';
import type { KnownRecord, WriteAck } from './local-replica.js';
import { gather, quorumError } from './quorum.js';
import type { Answer } from './quorum.js';
import { ReplicaClient } from './replica-client.js';
import { TombstoneCollector } from './tombstone-collector.js';

/** The components the KV service is built from. */
export type KvServiceComponents = Pick<
  Components,
  'node' | 'config' | 'clock' | 'storage' | 'placement' | 'rpc' | 'messages' | 'logger'
>;

/** Names of the components `kvServiceDefinition` needs. */
export const KV_SERVICE_NEEDS = [
  'node',
  'config',
  'clock',
  'storage',
  'placement',
  'rpc',
  'messages',
  'logger',
] as const;

const EMPTY = new Uint8Array(0);

/** What a quorum read found: the newest record, and this node's own one when it answered. */
interface ReadResult {
  readonly newest: StoredRecord | undefined;
  readonly local: KnownRecord | undefined;
}

/**
 * The KV service: every client operation asks placement for the key's
 * replica set, then reads or writes those replicas (local storage for this
 * node, `kvmesh.kv.*` requests for the others) and applies the version rule.
 *
 * - Writes get a new hybrid-logical-clock version and go to every replica
 *   at once; they resolve when `writeQuorum` replicas stored them.
 * - Reads ask `readQuorum` replicas (this node first), asking the next one
 *   for each that fails, answer with the newest version, and write it back
 *   to the replicas that answered with an older one (read repair).
 * - Every write through this node holds the key's lock from its read to its
 *   quorum, so a conditional write's check and write are atomic against the
 *   other writes this node coordinates.
 * - Key, value and arguments are checked before any work: a refused
 *   operation reads and writes nothing.
 */
export class CoordinatorKvService implements KvService, Lifecycle {
  readonly hlc: HybridLogicalClock;
  readonly settings: KvSettings;
  readonly #components: KvServiceComponents;
  readonly #logger: Logger;
  readonly #stats = createKvServiceStats();
  readonly #locks = new KeyLocks();
  readonly #local: LocalReplica;
  readonly #replicas: ReplicaClient;
  readonly #collector: TombstoneCollector;
  readonly #background = new Set<Promise<unknown>>();
  readonly #lifetime = new AbortController();
  #state: 'created' | 'running' | 'stopped' = 'created';

  constructor(components: KvServiceComponents) {
    this.#components = components;
    this.#logger = components.logger;
    this.settings = readKvSettings(components.config);
    this.hlc = new HybridLogicalClock(components.clock, components.node.id);
    defineKvMessages(components.messages);
    this.#local = new LocalReplica(components.storage, this.hlc, this.settings, this.#logger);
    this.#replicas = new ReplicaClient({
      selfId: components.node.id,
      local: this.#local,
      rpc: components.rpc,
      hlc: this.hlc,
      logger: this.#logger,
      timeoutMs: this.settings.timeoutMs,
    });
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

  /** Removes tombstones older than `kv.tombstoneGraceMs` now, as the periodic run does. */
  collectTombstones(): Promise<number> {
    return this.#collector.collect();
  }

  start(): void {
    if (this.#state !== 'created') return;
    this.#local.serve(this.#components.rpc);
    this.#collector.start();
    this.#state = 'running';
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    this.#lifetime.abort(new KvError('KVMESH_ERR_RPC_ABORTED', 'the KV service is stopping'));
    await this.#collector.stop();
    await Promise.allSettled([...this.#background]);
  }

  async get(key: string, options?: { signal?: AbortSignal }): Promise<StoredRecord | undefined> {
    const signal = options?.signal;
    try {
      checkKey(key, this.settings);
      this.#checkRunning();
      if (signal?.aborted) throw aborted();
      const set = await this.#components.placement.locate(
        key,
        signal === undefined ? { intent: 'read' } : { intent: 'read', signal },
      );
      const newest = this.#localOnly(set) ? await this.#local.read(key) : (await this.#read(key, set, signal)).newest;
      const live = newest !== undefined && !newest.tombstone ? newest : undefined;
      this.#count('get', live === undefined ? 'not_found' : 'found');
      return live;
    } catch (err) {
      // A cancelled read fails its replica requests; say why instead of blaming the quorum.
      const failure = signal?.aborted && failureOutcome(err) !== 'invalid' ? aborted() : err;
      this.#count('get', failureOutcome(failure));
      throw failure;
    }
  }

  async put(key: string, value: Uint8Array, contentType: string, conditions?: WriteConditions): Promise<PutResult> {
    try {
      checkKey(key, this.settings);
      checkValue(value, this.settings);
      checkContentType(contentType);
      const checked = checkConditions(conditions);
      this.#checkRunning();
      const set = await this.#components.placement.locate(key, { intent: 'write' });
      const result = await this.#locks.run(key, () => this.#put(set, key, value, contentType, checked));
      this.#count('put', result.created ? 'created' : 'replaced');
      return result;
    } catch (err) {
      this.#count('put', failureOutcome(err));
      throw err;
    }
  }

  async delete(key: string, conditions?: WriteConditions): Promise<DeleteResult> {
    try {
      checkKey(key, this.settings);
      const checked = checkConditions(conditions);
      this.#checkRunning();
      const set = await this.#components.placement.locate(key, { intent: 'write' });
      const result = await this.#locks.run(key, () => this.#delete(set, key, checked));
      this.#count('delete', result.existed ? 'deleted' : 'not_found');
      return result;
    } catch (err) {
      this.#count('delete', failureOutcome(err));
      throw err;
    }
  }

  async #put(
    set: ReplicaSet,
    key: string,
    value: Uint8Array,
    contentType: string,
    conditions: WriteConditions | undefined,
  ): Promise<PutResult> {
    let current: ReadResult | undefined;
    let local: KnownRecord | undefined;
    if (conditions?.ifMatch !== undefined || conditions?.ifNoneMatch !== undefined) {
      current = await this.#read(key, set);
      checkPreconditions(key, current.newest, conditions);
      local = current.local;
      if (current.newest !== undefined) this.hlc.observe(current.newest.version);
    } else if (set.replicas.some((m) => this.#replicas.isLocal(m))) {
      // The local record's version may come from before a restart; the new one must beat it.
      local = { record: await this.#local.read(key) };
      if (local.record !== undefined) this.hlc.observe(local.record.version);
    }
    const record: StoredRecord = { key, value, contentType, version: this.hlc.now(), tombstone: false };
    const acks = await this.#write(set, record, local);
    const created =
      current !== undefined
        ? !isLive(current.newest)
        : !acks.some((ack) => ack.previous !== undefined && !ack.previousTombstone);
    return { created, version: record.version };
  }

  async #delete(set: ReplicaSet, key: string, conditions: WriteConditions | undefined): Promise<DeleteResult> {
    const current = await this.#read(key, set);
    if (conditions !== undefined) checkPreconditions(key, current.newest, conditions);
    if (!isLive(current.newest)) return { existed: false };
    this.hlc.observe(current.newest.version);
    const tombstone: StoredRecord = { key, value: EMPTY, contentType: '', version: this.hlc.now(), tombstone: true };
    await this.#write(set, tombstone, current.local);
    return { existed: true, version: tombstone.version };
  }

  /** The newest record among `readQuorum` replicas, tombstones included. */
  async #read(key: string, set: ReplicaSet, signal?: AbortSignal): Promise<ReadResult> {
    if (this.#localOnly(set)) {
      const record = await this.#local.read(key);
      return { newest: record, local: { record } };
    }
    const needed = Math.max(1, set.readQuorum);
    const candidates = this.#readOrder(set.replicas);
    const answers = await gather({
      candidates,
      needed,
      parallel: needed,
      task: (member) => this.#replicas.read(member, key, this.#signal(signal)),
      what: `read of key ${quoteKey(key)}`,
      onFailure: (member, err) => this.#replicaFailed(member, err, 'read'),
    });
    let newest: StoredRecord | undefined;
    let local: KnownRecord | undefined;
    for (const { member, value } of answers) {
      if (value !== undefined && (newest === undefined || compareVersions(value.version, newest.version) > 0)) {
        newest = value;
      }
      if (this.#replicas.isLocal(member)) local = { record: value };
    }
    if (newest !== undefined && this.settings.readRepair) this.#repair(answers, newest);
    return { newest, local };
  }

  /** Writes `record` to every replica that may be up; resolves with `writeQuorum` acknowledgements. */
  async #write(set: ReplicaSet, record: StoredRecord, local: KnownRecord | undefined): Promise<WriteAck[]> {
    const needed = Math.max(1, set.writeQuorum);
    const only = set.replicas.length === 1 ? set.replicas[0] : undefined;
    if (needed === 1 && only !== undefined && this.#replicas.isLocal(only)) {
      return [await this.#local.write(record, local)];
    }
    const what = `write of key ${quoteKey(record.key)}`;
    // A replica placement already knows to be down would only fail after a
    // deadline; when too few are left, refuse before anything is written.
    const targets = set.replicas.filter((m) => this.#replicas.isLocal(m) || isReachable(m));
    if (targets.length < needed) {
      throw quorumError(what, needed, 0, [], `only ${targets.length} of ${set.replicas.length} replicas are up`);
    }
    const answers = await gather({
      candidates: targets,
      needed,
      parallel: targets.length,
      task: (member) =>
        this.#track(
          this.#replicas.write(
            member,
            record,
            this.#replicas.isLocal(member) ? local : undefined,
            this.#lifetime.signal,
          ),
        ),
      what,
      onFailure: (member, err) => this.#replicaFailed(member, err, 'write'),
    });
    return answers.map((a) => a.value);
  }

  /** Writes `newest` back, in the background, to the replicas that answered with something older. */
  #repair(answers: readonly Answer<StoredRecord | undefined>[], newest: StoredRecord): void {
    for (const { member, value } of answers) {
      const stale = value === undefined ? !newest.tombstone : compareVersions(value.version, newest.version) < 0;
      if (!stale) continue;
      const repair = this.#replicas.write(member, newest, undefined, this.#lifetime.signal).then(
        () => void this.#stats.readRepairs++,
        (err: unknown) => this.#replicaFailed(member, err, 'read repair'),
      );
      void this.#track(repair);
    }
  }

  /** One replica, this node, read quorum 1 (single-node deployments): reads need no quorum bookkeeping. */
  #localOnly(set: ReplicaSet): boolean {
    const replicas = set.replicas;
    return replicas.length === 1 && set.readQuorum <= 1 && this.#replicas.isLocal(replicas[0]!);
  }

  /** Local replica first (cheapest), then placement's order, replicas known to be down last. */
  #readOrder(replicas: readonly Member[]): Member[] {
    const local: Member[] = [];
    const up: Member[] = [];
    const down: Member[] = [];
    for (const m of replicas) {
      if (this.#replicas.isLocal(m)) local.push(m);
      else if (isReachable(m)) up.push(m);
      else down.push(m);
    }
    return [...local, ...up, ...down];
  }

  #signal(signal: AbortSignal | undefined): AbortSignal {
    return signal === undefined ? this.#lifetime.signal : AbortSignal.any([signal, this.#lifetime.signal]);
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
  }
}

/**
 * The component definition the host passes to `createNode({ extras })`:
 * name `kv`, token TOKENS.kv, built from KV_SERVICE_NEEDS.
 */
export function kvServiceDefinition(): ComponentDefinition<CoordinatorKvService> {
  return {
    name: 'kv',
    token: TOKENS.kv,
    label: 'kv',
    needs: KV_SERVICE_NEEDS,
    build: (c) => new CoordinatorKvService(c as unknown as KvServiceComponents),
  };
}

/**
 * @throws KvError KVMESH_ERR_KV_PRECONDITION_FAILED when `conditions` do not
 *   hold for `current` (the newest record, tombstones included).
 */
function checkPreconditions(key: string, current: StoredRecord | undefined, conditions: WriteConditions): void {
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

function isLive(record: StoredRecord | undefined): record is StoredRecord {
  return record !== undefined && !record.tombstone;
}

/** Not known to be down: dead and left members are asked last or not at all. */
function isReachable(member: Member): boolean {
  return member.state === 'alive' || member.state === 'suspect';
}

function aborted(): KvError {
  return new KvError('KVMESH_ERR_RPC_ABORTED', 'the read was cancelled by its caller');
}
