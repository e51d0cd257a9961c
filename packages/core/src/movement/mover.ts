import type { Message } from '../contracts/codec.js';
import type { Logger } from '../contracts/logger.js';
import type { Member } from '../contracts/membership.js';
import type { Placement } from '../contracts/placement.js';
import type { Rpc } from '../contracts/rpc.js';
import type { HintStore, ScanOptions, Storage, StoredRecord, Version } from '../contracts/storage.js';
import { KvError } from '../errors.js';
import { CORE_MESSAGES } from '../rpc/core-messages.js';
import { MOVEMENT_MESSAGES } from './movement-messages.js';
import type { BatchPurpose, PutBatchPayload, PutBatchReplyPayload, PutOutcome } from './movement-messages.js';
import type { Throttle } from './throttle.js';

/** Pages of one copy on their way at once (sent, not yet stored and purged). */
export const PAGES_IN_FLIGHT = 4;
/** Past this many bytes on their way, a copy sends one page at a time (values of up to 1 MiB make big pages). */
export const BYTES_IN_FLIGHT = 16 * 1024 * 1024;

export interface DataMoverOptions {
  /** This node's member id (the `source` of its batches). */
  readonly selfId: string;
  readonly storage: Storage;
  readonly placement: Placement;
  readonly rpc: Rpc;
  readonly logger: Logger;
  /** Records per scan page and per PutBatch. */
  readonly batchSize: number;
  /**
   * Largest PutBatch, in bytes of keys, values and content types plus
   * RECORD_OVERHEAD_BYTES per record: a page of large values is sent in
   * several batches, each a frame the transport carries (a node's
   * `limits.maxValueBytes`, which its transport is checked to carry). One
   * record larger than this still travels, alone. Default: no limit.
   */
  readonly maxBatchBytes?: number;
  /** Deadline of one PutBatch request. */
  readonly batchTimeoutMs: number;
  /**
   * Called with the version of every record this node is about to store
   * from a batch; throwing refuses the record. The KV service passes its
   * hybrid logical clock's `observe`, so later local writes win over what
   * arrived, and a version far ahead of this node's clock is refused.
   */
  readonly observe?: ((version: Version) => unknown) | undefined;
}

/** What one copy (`DataMover.copy`) did; the counters sum over targets where it says so. */
export interface CopyResult {
  /** Records the scan found in the range. */
  scanned: number;
  /** Records sent (those `select` kept), counted once however many targets. */
  sent: number;
  /** Per target: records it stored. */
  written: number;
  /** Per target: records it already held at an equal or newer version. */
  alreadyNewer: number;
  /** Keys at least one target refused (it did not own them at the batch's epoch): send them again later. */
  readonly refused: Set<string>;
  /** Records removed here after every target stored them. */
  purged: number;
  /** Records every target stored but that were not purged, because a newer write landed here meanwhile. */
  kept: number;
}

/** One stream of records from local storage to some members. */
export interface CopyJob {
  /** The keys to copy (a placement range): passed to `Storage.scan` as its filter. */
  readonly filter: (key: string) => boolean;
  /** Members to copy to; this node must not be one of them. */
  readonly targets: readonly Member[];
  /**
   * Remove each copied record from local storage (up to its copied version)
   * once every target stored it: the node no longer owns the range.
   */
  readonly purge: boolean;
  readonly purpose: BatchPurpose;
  /** Narrows a page further (e.g. only recent versions, or only keys a peer should hold); may be async. */
  readonly select?: (record: StoredRecord) => boolean | Promise<boolean>;
  /** Paces the records sent. */
  readonly throttle?: Throttle | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Called after every page with the result so far (for live progress counters). */
  readonly onPage?: (result: Readonly<CopyResult>, page: PageResult) => void;
}

/** What one page of a copy did. */
export interface PageResult {
  readonly sent: number;
  readonly written: number;
  readonly purged: number;
}

/** A page every target answered: how many were sent and written, and which records every target stored. */
interface SentPage {
  readonly sent: number;
  readonly written: number;
  readonly stored: readonly StoredRecord[];
}

export function emptyCopyResult(): CopyResult {
  return { scanned: 0, sent: 0, written: 0, alreadyNewer: 0, refused: new Set(), purged: 0, kept: 0 };
}

/**
 * The one data mover of core: streams local records (scan with a filter,
 * tombstones included, pages of `batchSize`) to other members as
 * `kvmesh.movement.PutBatch` requests, and removes each copied record from
 * local storage, up to the version copied, only after every target stored
 * it. It also answers the PutBatch requests of other nodes (`receive`).
 * Rebalancing, hint replay and anti-entropy are its users.
 *
 * A copy is idempotent (every receiver puts if newer), so a failed copy is
 * simply run again; pages already purged are not scanned again.
 */
export class DataMover {
  readonly #options: DataMoverOptions;

  constructor(options: DataMoverOptions) {
    this.#options = options;
  }

  get batchSize(): number {
    return this.#options.batchSize;
  }

  /**
   * Copies every local record `job.filter` accepts to every target.
   * Resolves when the scan reached the end of storage.
   * @throws KvError of the first failed request (the caller retries the copy later),
   *   or the signal's reason when aborted.
   */
  async copy(job: CopyJob): Promise<CopyResult> {
    const result = emptyCopyResult();
    if (job.targets.length === 0) return result;
    const { storage, batchSize } = this.#options;
    const options = (after: string | undefined): ScanOptions =>
      after === undefined
        ? { filter: job.filter, limit: batchSize, tombstones: true }
        : { filter: job.filter, limit: batchSize, tombstones: true, after };
    // Pages travel and are purged while the next ones are read and sent: up to
    // PAGES_IN_FLIGHT at once, and one at a time once BYTES_IN_FLIGHT are on
    // their way, so the receivers' commits, this node's purges and the scan
    // overlap instead of taking turns. Each page is purged once its own
    // copies are stored: pages hold distinct keys, so their order is free.
    const inFlight = new Set<Promise<void>>();
    let bytesInFlight = 0;
    let failure: { readonly err: unknown } | undefined;
    let next = storage.scan(options(undefined));
    try {
      for (;;) {
        throwIfAborted(job.signal);
        const page = await next;
        // The next page is read while this one travels.
        if (page.next !== undefined) {
          next = storage.scan(options(page.next));
          next.catch(() => undefined);
        }
        result.scanned += page.records.length;
        const records = job.select === undefined ? page.records : await selectRecords(page.records, job.select);
        if (records.length > 0) {
          const bytes = pageBytes(records);
          bytesInFlight += bytes;
          const task: Promise<void> = this.#sendPage(records, job, result)
            .then((sent) => this.#purgePage(sent, job, result))
            .catch((err: unknown) => void (failure ??= { err }))
            .finally(() => {
              bytesInFlight -= bytes;
              inFlight.delete(task);
            });
          inFlight.add(task);
          while (
            failure === undefined &&
            (inFlight.size >= PAGES_IN_FLIGHT || (bytesInFlight >= BYTES_IN_FLIGHT && inFlight.size > 0))
          ) {
            await Promise.race(inFlight);
          }
          if (failure !== undefined) throw failure.err;
        }
        if (page.next === undefined) break;
      }
      while (inFlight.size > 0) await Promise.race(inFlight);
      if (failure !== undefined) throw failure.err;
      return result;
    } finally {
      // Nothing of this copy runs on after it returned or failed.
      while (inFlight.size > 0) await Promise.race(inFlight);
    }
  }

  /**
   * Sends `records` to `target` in one PutBatch and resolves with its
   * outcome for each, in order. A target that is this node stores them
   * locally through `receive`.
   */
  async send(
    target: Member,
    records: readonly StoredRecord[],
    purpose: BatchPurpose,
    signal?: AbortSignal,
  ): Promise<readonly PutOutcome[]> {
    const batches = splitByBytes(records, this.#options.maxBatchBytes ?? Infinity);
    if (batches.length === 1) return this.#sendBatch(target, records, purpose, signal);
    const outcomes: PutOutcome[] = [];
    for (const batch of batches) outcomes.push(...(await this.#sendBatch(target, batch, purpose, signal)));
    return outcomes;
  }

  async #sendBatch(
    target: Member,
    records: readonly StoredRecord[],
    purpose: BatchPurpose,
    signal: AbortSignal | undefined,
  ): Promise<readonly PutOutcome[]> {
    const { rpc, placement, selfId, batchTimeoutMs } = this.#options;
    const payload: PutBatchPayload = { records, epoch: placement.epoch, source: selfId, purpose };
    if (target.id === selfId) return (await this.receive(payload)).outcomes;
    const reply = await rpc.request<PutBatchReplyPayload>(
      target.address,
      MOVEMENT_MESSAGES.putBatch,
      payload,
      signal === undefined ? { timeoutMs: batchTimeoutMs } : { timeoutMs: batchTimeoutMs, signal },
    );
    if (reply.type !== MOVEMENT_MESSAGES.putBatchReply || reply.payload.outcomes.length !== records.length) {
      throw new KvError(
        'KVMESH_ERR_CODEC_DECODE',
        `member '${target.id}' answered a batch of ${records.length} records with ${reply.type} ` +
          `(${reply.payload?.outcomes?.length ?? 0} outcomes)`,
      );
    }
    return reply.payload.outcomes;
  }

  /**
   * Serves one PutBatch: every record whose key this node owns at the
   * batch's epoch is stored if newer (in one `putBatch`); the others are
   * refused, for the sender to try again later.
   * @throws KvError KVMESH_ERR_MOVEMENT_UNSUPPORTED when the storage has no putBatch,
   *   KVMESH_ERR_MESSAGE_INVALID for a record without a version.
   */
  async receive(payload: PutBatchPayload): Promise<PutBatchReplyPayload> {
    const { storage, placement, observe } = this.#options;
    const putBatch = requirePutBatch(storage);
    const outcomes = new Array<PutOutcome>(payload.records.length).fill('PUT_REFUSED');
    const accepted: StoredRecord[] = [];
    const at: number[] = [];
    for (let i = 0; i < payload.records.length; i++) {
      const record = payload.records[i]!;
      if (record.version === null) {
        throw new KvError(
          'KVMESH_ERR_MESSAGE_INVALID',
          `${MOVEMENT_MESSAGES.putBatch} from '${payload.source}' has a record without a version (key ${JSON.stringify(record.key)})`,
        );
      }
      if (placement.admit(record.key, 'write', payload.epoch).kind !== 'own') continue;
      if (observe !== undefined) {
        try {
          observe(record.version);
        } catch {
          continue;
        }
      }
      accepted.push(record as StoredRecord);
      at.push(i);
    }
    if (accepted.length > 0) {
      const written = await putBatch(accepted);
      for (let j = 0; j < at.length; j++) outcomes[at[j]!] = written[j] ? 'PUT_WRITTEN' : 'PUT_ALREADY_NEWER';
    }
    return { outcomes };
  }

  /** Sends one page to every target and counts the answers; resolves with the records every target stored. */
  async #sendPage(records: readonly StoredRecord[], job: CopyJob, result: CopyResult): Promise<SentPage> {
    await job.throttle?.take(records.length, job.signal);
    throwIfAborted(job.signal);
    const replies = await Promise.all(job.targets.map((t) => this.send(t, records, job.purpose, job.signal)));
    let written = 0;
    const stored: StoredRecord[] = [];
    for (let i = 0; i < records.length; i++) {
      let everywhere = true;
      for (const outcomes of replies) {
        const outcome = outcomes[i];
        if (outcome === 'PUT_WRITTEN') written++;
        else if (outcome === 'PUT_ALREADY_NEWER') result.alreadyNewer++;
        else everywhere = false;
      }
      if (everywhere) stored.push(records[i]!);
      else result.refused.add(records[i]!.key);
    }
    result.sent += records.length;
    result.written += written;
    return { sent: records.length, written, stored };
  }

  /** Removes a sent page's records stored everywhere (when the job purges), then reports the page. */
  async #purgePage(page: SentPage, job: CopyJob, result: CopyResult): Promise<void> {
    let purged = 0;
    if (job.purge && page.stored.length > 0) {
      const { storage } = this.#options;
      // Up to the copied version: a write that landed here meanwhile is newer and stays.
      const removed =
        storage.purgeBatch !== undefined
          ? await storage.purgeBatch(page.stored.map((r) => ({ key: r.key, upTo: r.version })))
          : await Promise.all(page.stored.map((r) => storage.purge(r.key, r.version)));
      for (const r of removed) {
        if (r === false) result.kept++;
        else purged++;
      }
      result.purged += purged;
    }
    job.onPage?.(result, { sent: page.sent, written: page.written, purged });
  }
}

/** The storage's `putBatch`, bound. @throws KvError KVMESH_ERR_MOVEMENT_UNSUPPORTED when it has none. */
export function requirePutBatch(storage: Storage): (records: readonly StoredRecord[]) => Promise<boolean[]> {
  if (typeof storage.putBatch !== 'function') {
    throw new KvError(
      'KVMESH_ERR_MOVEMENT_UNSUPPORTED',
      `storage '${storage.name}' has no putBatch, which data movement needs to receive records; use a storage that implements it (memory, lmdb)`,
    );
  }
  return storage.putBatch.bind(storage);
}

/** The storage's hint store. @throws KvError KVMESH_ERR_MOVEMENT_UNSUPPORTED when it has none. */
export function requireHints(storage: Storage): HintStore {
  if (storage.hints === undefined) {
    throw new KvError(
      'KVMESH_ERR_MOVEMENT_UNSUPPORTED',
      `storage '${storage.name}' keeps no hints, which hinted hand-off needs; use a storage that implements them (memory, lmdb)`,
    );
  }
  return storage.hints;
}

async function selectRecords(
  records: readonly StoredRecord[],
  select: (record: StoredRecord) => boolean | Promise<boolean>,
): Promise<StoredRecord[]> {
  const keep = await Promise.all(records.map(select));
  return records.filter((_, i) => keep[i]);
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
}

/** The answer of the movement requests that carry nothing back (MoveDone, Hint). */
export const EMPTY_REPLY: Message = { type: CORE_MESSAGES.empty, payload: {} };

/** What a record costs in a batch besides its key, value and content type: version, flags, field names, framing. */
export const RECORD_OVERHEAD_BYTES = 256;

/** `records` in order, cut into runs of at most `maxBytes` each (a record larger than that alone). */
/** A page's size in a batch, as splitByBytes counts it. */
function pageBytes(records: readonly StoredRecord[]): number {
  let bytes = 0;
  for (const record of records) bytes += recordBytes(record);
  return bytes;
}

function recordBytes(record: StoredRecord): number {
  return record.key.length * 3 + record.value.byteLength + record.contentType.length * 3 + RECORD_OVERHEAD_BYTES;
}

export function splitByBytes(records: readonly StoredRecord[], maxBytes: number): (readonly StoredRecord[])[] {
  if (!Number.isFinite(maxBytes)) return [records];
  const batches: StoredRecord[][] = [];
  let current: StoredRecord[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = recordBytes(record);
    if (current.length > 0 && bytes + size > maxBytes) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(record);
    bytes += size;
  }
  if (current.length > 0 || batches.length === 0) batches.push(current);
  return batches;
}
