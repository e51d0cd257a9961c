import type { Logger } from '../contracts/logger.js';
import type { Member } from '../contracts/membership.js';
import type { Rpc } from '../contracts/rpc.js';
import type { StoredRecord, Version } from '../contracts/storage.js';
import { KvError } from '../errors.js';
import type { HybridLogicalClock } from './hlc.js';
import { isVersion } from './hlc.js';
import { RefusedError, admissionOf } from './admission.js';
import { KV_MESSAGES } from './kv-messages.js';
import type {
  Expectation,
  GetReplyPayload,
  PutPayload,
  PutReplyPayload,
  RefusedPayload,
  RetractPayload,
  RetractReplyPayload,
} from './kv-messages.js';
import type { KnownRecord, LocalReplica, WriteAck } from './local-replica.js';

export interface ReplicaClientOptions {
  /** This node's id: a member with this id is served from local storage. */
  readonly selfId: string;
  readonly local: LocalReplica;
  readonly rpc: Rpc;
  readonly hlc: HybridLogicalClock;
  readonly logger: Logger;
  /** Deadline of each remote request. */
  readonly timeoutMs: number;
}

/**
 * Reads and writes one replica of a key, local or remote, with one interface.
 * Versions seen in remote answers advance this node's hybrid logical clock.
 */
export class ReplicaClient {
  readonly #options: ReplicaClientOptions;

  constructor(options: ReplicaClientOptions) {
    this.#options = options;
  }

  isLocal(member: Member): boolean {
    return member.id === this.#options.selfId;
  }

  /**
   * The replica's record for `key`, tombstones included. `epoch`: the view
   * the key was located at. `handoff`: read the replica's local copy even if
   * it no longer owns the key (a read-through during a move).
   * @throws RefusedError when the replica's placement does not admit the read.
   */
  async read(
    member: Member,
    key: string,
    epoch: number,
    signal?: AbortSignal,
    handoff = false,
  ): Promise<StoredRecord | undefined> {
    if (this.isLocal(member)) return handoff ? this.#options.local.readOwn(key) : this.#options.local.read(key);
    const reply = await this.#options.rpc.request<GetReplyPayload | RefusedPayload>(
      member.address,
      KV_MESSAGES.get,
      { key, epoch, handoff },
      this.#callOptions(signal),
    );
    const payload = this.#accepted<GetReplyPayload>(reply, member, key);
    const record = payload.record;
    if (record === null) return undefined;
    if (record.key !== key || !isVersion(record.version)) {
      throw new KvError(
        'KVMESH_ERR_MESSAGE_INVALID',
        `replica ${member.id} answered a read of one key with another record`,
      );
    }
    this.#observe(record.version, member);
    return record;
  }

  /**
   * Stores `record` on the replica if newer. `known`: the local record, when already read.
   * @throws RefusedError when the replica's placement does not admit the write.
   */
  async write(
    member: Member,
    record: StoredRecord,
    epoch: number,
    known?: KnownRecord,
    signal?: AbortSignal,
    expect?: Expectation,
  ): Promise<WriteAck> {
    if (this.isLocal(member)) return this.#options.local.write(record, known, expect);
    const payload: PutPayload = { record, epoch, expect: expect ?? null };
    const reply = await this.#options.rpc.request<PutReplyPayload | RefusedPayload>(
      member.address,
      KV_MESSAGES.put,
      payload,
      this.#callOptions(signal),
    );
    const { written, previous, previousTombstone, conflict } = this.#accepted<PutReplyPayload>(
      reply,
      member,
      record.key,
    );
    if (previous !== null) this.#observe(previous, member);
    return { written, previous: previous ?? undefined, previousTombstone, ...(conflict ? { conflict } : {}) };
  }

  /** Removes `version` of `key` from the replica if it still holds exactly that; resolves true when removed. */
  async retract(member: Member, key: string, version: Version, signal?: AbortSignal): Promise<boolean> {
    if (this.isLocal(member)) return this.#options.local.retract(key, version);
    const payload: RetractPayload = { key, version };
    const reply = await this.#options.rpc.request<RetractReplyPayload>(
      member.address,
      KV_MESSAGES.retract,
      payload,
      this.#callOptions(signal),
    );
    return reply.payload.removed;
  }

  /** The reply's payload, or a RefusedError when the replica refused. */
  #accepted<T>(reply: { type: string; payload: unknown }, member: Member, key: string): T {
    if (reply.type === KV_MESSAGES.refused) {
      throw new RefusedError(admissionOf(reply.payload as RefusedPayload), `replica ${member.id}`, key);
    }
    return reply.payload as T;
  }

  #callOptions(signal: AbortSignal | undefined): { timeoutMs: number; signal?: AbortSignal } {
    return signal === undefined
      ? { timeoutMs: this.#options.timeoutMs }
      : { timeoutMs: this.#options.timeoutMs, signal };
  }

  // A version from a drifting clock is still a valid answer; it just must not drag this clock along.
  #observe(version: Version, member: Member): void {
    try {
      this.#options.hlc.observe(version);
    } catch (err) {
      this.#options.logger.warn({ replica: member.id, err: (err as Error).message }, 'not following a remote version');
    }
  }
}
