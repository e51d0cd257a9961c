import { LRUCache } from 'lru-cache';
import type { Logger } from '../contracts/logger.js';
import type { Message } from '../contracts/codec.js';
import type { Placement } from '../contracts/placement.js';
import type { Rpc } from '../contracts/rpc.js';
import type { Storage, StoredRecord, Version } from '../contracts/storage.js';
import { KvError } from '../errors.js';
import { compareRecords, compareVersions, formatVersion } from './hlc.js';
import type { HybridLogicalClock } from './hlc.js';
import { refusal } from './admission.js';
import { KV_MESSAGES } from './kv-messages.js';
import type {
  Expectation,
  GetReplyPayload,
  PutPayload,
  PutReplyPayload,
  RetractPayload,
  WritePayload,
} from './kv-messages.js';
import { KeyLocks } from './key-locks.js';
import { checkContentType, checkKey, checkValue } from './limits.js';
import type { KvLimits } from './limits.js';

/**
 * How many of its latest conditional writes a replica remembers what they
 * replaced, so one can be taken back (`retract`) if it lost a race: its
 * primary asks within one request deadline of storing it. A count, not a
 * time, so simulated runs replay exactly.
 */
const UNDO_MAX = 10_000;

/** What a replica answers to a write. */
export interface WriteAck {
  /** True when the record was written; false when an equal or newer version was there. */
  readonly written: boolean;
  /** Version the replica held before; undefined when it held nothing. */
  readonly previous: Version | undefined;
  /** True when that earlier record was a tombstone. */
  readonly previousTombstone: boolean;
  /** True when a conditional write's expectation did not hold here: nothing was stored. */
  readonly conflict?: boolean;
}

/** The record a caller already read from local storage (under the key's lock), so a write need not read it again. */
export interface KnownRecord {
  readonly record: StoredRecord | undefined;
}

/**
 * Records of `key` held by the nodes a move to this node comes from, while
 * the move is not complete; undefined (synchronously, the common case) when
 * no move to this node covers the key.
 */
export type ReadThrough = (key: string) => Promise<readonly (StoredRecord | undefined)[]> | undefined;

/** Runs a client write forwarded to this node as the key's primary. */
export type WriteHandler = (payload: WritePayload) => Promise<Message>;

export interface LocalReplicaOptions {
  readonly storage: Storage;
  readonly hlc: HybridLogicalClock;
  readonly limits: KvLimits;
  readonly logger: Logger;
  readonly placement: Placement;
}

/**
 * This node's own replica of every key it holds: local Storage, and the
 * `kvmesh.kv.Put` / `Get` / `Write` handlers through which other
 * coordinators reach it. Every remote request is admitted by placement first
 * (the key must be this node's at its epoch), else answered `Refused`.
 */
export class LocalReplica {
  readonly #storage: Storage;
  readonly #hlc: HybridLogicalClock;
  readonly #limits: KvLimits;
  readonly #logger: Logger;
  readonly #placement: Placement;
  #readThrough: ReadThrough = () => undefined;
  #writeHandler: WriteHandler | undefined;
  /** Conditional writes check and store under this replica's own lock on the key (never held across a request). */
  readonly #conditional = new KeyLocks();
  /** `key \n version` of a conditional write stored here → the record it replaced (null: none). */
  readonly #undo = new LRUCache<string, { readonly previous: StoredRecord | null }>({ max: UNDO_MAX });

  constructor(options: LocalReplicaOptions) {
    this.#storage = options.storage;
    this.#hlc = options.hlc;
    this.#limits = options.limits;
    this.#logger = options.logger;
    this.#placement = options.placement;
  }

  /** Where reads look too while a move to this node is in progress. */
  set readThrough(readThrough: ReadThrough) {
    this.#readThrough = readThrough;
  }

  /** Who runs forwarded client writes (the write path). */
  set writeHandler(handler: WriteHandler) {
    this.#writeHandler = handler;
  }

  /**
   * The newest record for `key` this replica knows, tombstones included: its
   * own, or one still held by a node the key is moving here from.
   */
  read(key: string): Promise<StoredRecord | undefined> {
    const through = this.#readThrough(key);
    if (through === undefined) return this.#storage.get(key);
    return this.#readBoth(key, through);
  }

  /** The record in this node's own storage only. */
  readOwn(key: string): Promise<StoredRecord | undefined> {
    return this.#storage.get(key);
  }

  async #readBoth(
    key: string,
    through: Promise<readonly (StoredRecord | undefined)[]>,
  ): Promise<StoredRecord | undefined> {
    const [own, others] = await Promise.all([this.#storage.get(key), through]);
    let newest = own;
    for (const record of others) {
      if (record !== undefined && (newest === undefined || compareRecords(record, newest) > 0)) {
        newest = record;
      }
    }
    return newest;
  }

  /**
   * Stores `record` if newer; `known` skips reading the previous record
   * again. With `expect` (a conditional write), the record is stored only
   * if what this replica holds meets it, checked and stored under the
   * replica's lock on the key: of two conditional writes made from the same
   * version, each replica stores the first to arrive and answers `conflict`
   * to the other, so two primaries that both passed the condition cannot
   * both reach a write quorum that intersects.
   */
  write(record: StoredRecord, known?: KnownRecord, expect?: Expectation): Promise<WriteAck> {
    if (expect !== undefined) return this.#conditional.run(record.key, () => this.#writeExpecting(record, expect));
    return this.#write(record, known);
  }

  async #write(record: StoredRecord, known: KnownRecord | undefined): Promise<WriteAck> {
    const previous = known === undefined ? await this.#storage.get(record.key) : known.record;
    const written = await this.#storage.put(record);
    return { written, previous: previous?.version, previousTombstone: previous?.tombstone ?? false };
  }

  /**
   * Takes back a conditional write that lost its race: if this replica's
   * record of `key` is still exactly `version`, puts back the record that
   * write replaced (or none). Resolves true when taken back; false when
   * another record is there now, or the replaced one is no longer known
   * (UNDO_MAX conditional writes ago, or this node restarted): the write then stays,
   * as a write whose outcome the client was told is unknown may.
   */
  retract(key: string, version: Version): Promise<boolean> {
    return this.#conditional.run(key, async () => {
      const id = undoId(key, version);
      const undo = this.#undo.get(id);
      const current = await this.#storage.get(key);
      if (undo === undefined || current === undefined || compareVersions(current.version, version) !== 0) return false;
      this.#undo.delete(id);
      if (!(await this.#storage.purge(key, version))) return false;
      if (undo.previous !== null) await this.#storage.put(undo.previous);
      return true;
    });
  }

  async #writeExpecting(record: StoredRecord, expect: Expectation): Promise<WriteAck> {
    const current = await this.#storage.get(record.key);
    const same = current !== undefined && compareVersions(current.version, record.version) === 0;
    if (current !== undefined && !same && !meets(current, expect)) {
      return { written: false, previous: current.version, previousTombstone: current.tombstone, conflict: true };
    }
    const ack = await this.#write(record, { record: current });
    if (ack.written) this.#undo.set(undoId(record.key, record.version), { previous: current ?? null });
    return ack;
  }

  /** Registers the replica's request handlers. Call once. */
  serve(rpc: Rpc): void {
    rpc.handle(KV_MESSAGES.put, (payload: PutPayload) => this.#onPut(payload));
    rpc.handle(KV_MESSAGES.get, (payload: { key: string; epoch: number; handoff: boolean }) => this.#onGet(payload));
    rpc.handle(KV_MESSAGES.write, (payload: WritePayload) => this.#onWrite(payload));
    rpc.handle(KV_MESSAGES.retract, (payload: RetractPayload) => this.#onRetract(payload));
  }

  async #onWrite(payload: WritePayload): Promise<Message> {
    checkKey(payload.key, this.#limits);
    if (!payload.tombstone) {
      checkValue(payload.value, this.#limits);
      checkContentType(payload.contentType);
    }
    const refused = refusal(this.#placement, payload.key, 'write', payload.epoch);
    if (refused !== undefined) return refused;
    if (this.#writeHandler === undefined) {
      throw new KvError('KVMESH_ERR_KERNEL_STATE', 'this node does not coordinate writes yet');
    }
    return this.#writeHandler(payload);
  }

  async #onRetract({ key, version }: RetractPayload): Promise<Message> {
    checkKey(key, this.#limits);
    if (version === null) {
      throw new KvError(
        'KVMESH_ERR_VERSION_INVALID',
        `${KV_MESSAGES.retract} for key ${JSON.stringify(key)} has no version`,
      );
    }
    // Not admitted by placement: a record this node stored is taken back whoever owns the key now.
    const removed = await this.retract(key, version);
    return { type: KV_MESSAGES.retractReply, payload: { removed } };
  }

  async #onPut({ record, epoch, expect }: PutPayload): Promise<Message> {
    if (record === null) throw new KvError('KVMESH_ERR_MESSAGE_INVALID', `${KV_MESSAGES.put} carries no record`);
    // This node's own limits hold for what it stores, whoever coordinates.
    checkKey(record.key, this.#limits);
    checkValue(record.value, this.#limits);
    if (!record.tombstone) checkContentType(record.contentType);
    if (record.version === null) {
      throw new KvError(
        'KVMESH_ERR_VERSION_INVALID',
        `${KV_MESSAGES.put} for key ${JSON.stringify(record.key)} has no version`,
      );
    }
    const refused = refusal(this.#placement, record.key, 'write', epoch);
    if (refused !== undefined) return refused;
    // Refuses (VERSION_DRIFT) a version from a node whose clock runs far ahead,
    // which would otherwise win over every later write.
    this.#hlc.observe(record.version);
    if (expect !== null && expect !== undefined && !expect.absent && expect.atMost === null) {
      throw new KvError('KVMESH_ERR_MESSAGE_INVALID', `${KV_MESSAGES.put} expects a version but names none`);
    }
    const ack = await this.write(record, undefined, expect ?? undefined);
    if (ack.conflict === true) this.#logger.debug({ key: record.key }, 'a conditional write met a newer record');
    else if (!ack.written) this.#logger.debug({ key: record.key }, 'replica already held an equal or newer version');
    const payload: PutReplyPayload = {
      written: ack.written,
      previous: ack.previous ?? null,
      previousTombstone: ack.previousTombstone,
      conflict: ack.conflict === true,
    };
    return { type: KV_MESSAGES.putReply, payload };
  }

  async #onGet({ key, epoch, handoff }: { key: string; epoch: number; handoff: boolean }): Promise<Message> {
    checkKey(key, this.#limits);
    if (handoff) {
      const own = await this.#storage.get(key);
      return { type: KV_MESSAGES.getReply, payload: { record: own ?? null } satisfies GetReplyPayload };
    }
    const refused = refusal(this.#placement, key, 'read', epoch);
    if (refused !== undefined) return refused;
    const record = await this.read(key);
    return { type: KV_MESSAGES.getReply, payload: { record: record ?? null } };
  }
}

/** `current` (what a replica holds) meets a conditional write's expectation. */
function meets(current: StoredRecord, expect: Expectation): boolean {
  if (expect.absent) return current.tombstone;
  return expect.atMost !== null && compareVersions(current.version, expect.atMost) <= 0;
}

function undoId(key: string, version: Version): string {
  return `${key}\n${formatVersion(version)}`;
}
