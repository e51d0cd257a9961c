import type { Logger } from '../contracts/logger.js';
import type { Message } from '../contracts/codec.js';
import type { Rpc } from '../contracts/rpc.js';
import type { Storage, StoredRecord, Version } from '../contracts/storage.js';
import { KvError } from '../errors.js';
import type { HybridLogicalClock } from './hlc.js';
import { KV_MESSAGES } from './kv-messages.js';
import type { GetReplyPayload, PutReplyPayload } from './kv-messages.js';
import { checkKey, checkValue } from './limits.js';
import type { KvLimits } from './limits.js';

/** What a replica answers to a write. */
export interface WriteAck {
  /** True when the record was written; false when an equal or newer version was there. */
  readonly written: boolean;
  /** Version the replica held before; undefined when it held nothing. */
  readonly previous: Version | undefined;
  /** True when that earlier record was a tombstone. */
  readonly previousTombstone: boolean;
}

/** The record a caller already read from local storage (under the key's lock), so a write need not read it again. */
export interface KnownRecord {
  readonly record: StoredRecord | undefined;
}

/**
 * This node's own replica of every key it holds: local Storage, and the
 * `kvmesh.kv.Put` / `kvmesh.kv.Get` handlers through which other
 * coordinators reach it.
 */
export class LocalReplica {
  readonly #storage: Storage;
  readonly #hlc: HybridLogicalClock;
  readonly #limits: KvLimits;
  readonly #logger: Logger;

  constructor(storage: Storage, hlc: HybridLogicalClock, limits: KvLimits, logger: Logger) {
    this.#storage = storage;
    this.#hlc = hlc;
    this.#limits = limits;
    this.#logger = logger;
  }

  /** The stored record for `key`, tombstones included. */
  read(key: string): Promise<StoredRecord | undefined> {
    return this.#storage.get(key);
  }

  /** Stores `record` if newer; `known` skips reading the previous record again. */
  async write(record: StoredRecord, known?: KnownRecord): Promise<WriteAck> {
    const previous = known === undefined ? await this.#storage.get(record.key) : known.record;
    const written = await this.#storage.put(record);
    return { written, previous: previous?.version, previousTombstone: previous?.tombstone ?? false };
  }

  /** Registers the replica's request handlers. Call once. */
  serve(rpc: Rpc): void {
    rpc.handle(KV_MESSAGES.put, (payload: { record: StoredRecord | null }) => this.#onPut(payload));
    rpc.handle(KV_MESSAGES.get, (payload: { key: string }) => this.#onGet(payload));
  }

  async #onPut({ record }: { record: StoredRecord | null }): Promise<Message<PutReplyPayload>> {
    if (record === null) throw new KvError('KVMESH_ERR_MESSAGE_INVALID', `${KV_MESSAGES.put} carries no record`);
    // This node's own limits hold for what it stores, whoever coordinates.
    checkKey(record.key, this.#limits);
    checkValue(record.value, this.#limits);
    if (record.version === null) {
      throw new KvError(
        'KVMESH_ERR_VERSION_INVALID',
        `${KV_MESSAGES.put} for key ${JSON.stringify(record.key)} has no version`,
      );
    }
    // Refuses (VERSION_DRIFT) a version from a node whose clock runs far ahead,
    // which would otherwise win over every later write.
    this.#hlc.observe(record.version);
    const ack = await this.write(record);
    if (!ack.written) this.#logger.debug({ key: record.key }, 'replica already held an equal or newer version');
    return {
      type: KV_MESSAGES.putReply,
      payload: { written: ack.written, previous: ack.previous ?? null, previousTombstone: ack.previousTombstone },
    };
  }

  async #onGet({ key }: { key: string }): Promise<Message<GetReplyPayload>> {
    checkKey(key, this.#limits);
    const record = await this.#storage.get(key);
    return { type: KV_MESSAGES.getReply, payload: { record: record ?? null } };
  }
}
