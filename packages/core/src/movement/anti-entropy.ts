import { setMaxListeners } from 'node:events';
import type { Clock, Timer } from '../contracts/clock.js';
import type { Logger } from '../contracts/logger.js';
import type { Member, Membership } from '../contracts/membership.js';
import type { Placement } from '../contracts/placement.js';
import type { Random } from '../contracts/random.js';
import type { Rpc, RpcContext } from '../contracts/rpc.js';
import type { Storage, StoredRecord } from '../contracts/storage.js';
import { KvError } from '../errors.js';
import { fnv1a32 } from './hash.js';
import { MOVEMENT_MESSAGES } from './movement-messages.js';
import type {
  DigestReplyPayload,
  DigestRequestPayload,
  RepairReplyPayload,
  RepairRequestPayload,
} from './movement-messages.js';
import type { DataMover } from './mover.js';
import { MAX_ANTI_ENTROPY_BUCKETS } from './settings.js';
import type { MovementSettings } from './settings.js';
import type { MovementCounters } from './stats.js';

export interface AntiEntropyOptions {
  readonly selfId: string;
  readonly storage: Storage;
  readonly placement: Placement;
  readonly membership?: Membership | undefined;
  /**
   * The members to compare with on a node without a membership: those a
   * routed placement named in its ownership changes (its neighbours, the
   * nodes it shares replicas with). Ignored when there is a membership.
   */
  readonly peers?: () => readonly Member[];
  readonly rpc: Rpc;
  readonly mover: DataMover;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly settings: MovementSettings;
  readonly counters: MovementCounters;
  readonly onError: (err: unknown, context: string) => void;
}

/** Digests of the records two nodes share, one entry per hash bucket. */
export interface Digest {
  readonly sums: Uint32Array;
  readonly xors: Uint32Array;
  readonly counts: Uint32Array;
}

/** What one anti-entropy pass found and did. */
export interface AntiEntropyPass {
  readonly peer: string;
  /** Buckets whose digests differed. */
  readonly differing: number;
  /** Records sent to the peer, and of them stored there. */
  readonly sent: number;
  readonly written: number;
  /** Records the peer sent here, and of them stored here. */
  readonly received: number;
  readonly receivedWritten: number;
}

/** The bucket of `key` among `buckets`. Identical on every node. */
export function bucketOf(key: string, buckets: number): number {
  return fnv1a32(key) % buckets;
}

/** Hash of what identifies a record's content: key, version, tombstone (equal versions carry equal values). */
export function recordHash(record: StoredRecord): number {
  const v = record.version;
  return fnv1a32(`${record.key}\u0000${v.wallMs}:${v.logical}:${v.node}:${record.tombstone ? 1 : 0}`);
}

/**
 * Anti-entropy: every `antiEntropyIntervalMs` this node picks one alive
 * peer (injected Random; preferring peers that shared keys in an earlier
 * pass) and both compute a digest of the records they should both hold —
 * the keys whose read replica set (`placement.locate`, intent read) holds
 * both — in `antiEntropyBuckets` hash buckets: per bucket the count and an
 * order-independent sum and xor of record hashes. Only the buckets that
 * differ are exchanged, both ways, as PutBatch pages; put-if-newer makes a
 * repeated or crossing repair harmless.
 *
 * A digest costs one scan of local storage and one `locate` per record on
 * each side, so the interval should be long against the data size.
 */
export class AntiEntropy {
  readonly #o: AntiEntropyOptions;
  readonly #lifetime = new AbortController();
  /** Peers that held keys with this node in the last digests computed here. */
  #sharing = new Set<string>();
  #timer: Timer | undefined;
  #running: Promise<unknown> | undefined;
  readonly #serving = new Set<Promise<unknown>>();
  #stopped = false;

  constructor(options: AntiEntropyOptions) {
    this.#o = options;
    // A digest locates a page of keys at once, each request listening to it.
    setMaxListeners(0, this.#lifetime.signal);
  }

  start(): void {
    const intervalMs = this.#o.settings.antiEntropyIntervalMs;
    if (intervalMs === 0) return;
    this.#timer = this.#o.clock.setInterval(() => {
      if (this.#running !== undefined) return;
      this.#running = this.runOnce()
        .catch((err: unknown) => {
          if (!this.#stopped) this.#o.onError(err, 'anti-entropy');
        })
        .finally(() => (this.#running = undefined));
    }, intervalMs);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#lifetime.abort(new KvError('KVMESH_ERR_RPC_ABORTED', 'anti-entropy is stopping'));
    await Promise.allSettled([this.#running, ...this.#serving]);
  }

  /**
   * One pass with `peer` (default: a random alive peer). Resolves to what
   * it did, or undefined when there was no peer to compare with.
   */
  async runOnce(peer?: Member): Promise<AntiEntropyPass | undefined> {
    const chosen = peer ?? this.#pickPeer();
    if (chosen === undefined) return undefined;
    const buckets = this.#o.settings.antiEntropyBuckets;
    const signal = this.#lifetime.signal;
    const [local, reply] = await Promise.all([
      this.digest(chosen.id, buckets),
      this.#o.rpc.request<DigestReplyPayload>(
        chosen.address,
        MOVEMENT_MESSAGES.digest,
        { peer: this.#o.selfId, buckets } satisfies DigestRequestPayload,
        { timeoutMs: this.#o.settings.batchTimeoutMs, signal },
      ),
    ]);
    const remote = reply.payload;
    if (reply.type !== MOVEMENT_MESSAGES.digestReply || remote.counts.length !== buckets) {
      throw new KvError(
        'KVMESH_ERR_CODEC_DECODE',
        `member '${chosen.id}' answered a digest request with ${reply.type}`,
      );
    }
    const differing: number[] = [];
    for (let b = 0; b < buckets; b++) {
      if (
        local.sums[b] !== remote.sums[b] ||
        local.xors[b] !== remote.xors[b] ||
        local.counts[b] !== remote.counts[b]
      ) {
        differing.push(b);
      }
    }
    let pass: AntiEntropyPass = { peer: chosen.id, differing: 0, sent: 0, written: 0, received: 0, receivedWritten: 0 };
    this.#o.counters.antiEntropyDiffering += differing.length;
    if (differing.length > 0) {
      const [pushed, pulled] = await Promise.all([
        this.#push(chosen, buckets, differing, signal),
        this.#o.rpc.request<RepairReplyPayload>(
          chosen.address,
          MOVEMENT_MESSAGES.repair,
          { peer: this.#o.selfId, buckets, differing } satisfies RepairRequestPayload,
          // The peer streams its side before it answers.
          { timeoutMs: this.#o.settings.batchTimeoutMs * 10, signal },
        ),
      ]);
      pass = {
        peer: chosen.id,
        differing: differing.length,
        sent: pushed.sent,
        written: pushed.written,
        received: pulled.payload.sent,
        receivedWritten: pulled.payload.written,
      };
      this.#o.counters.antiEntropyRepaired += pushed.written + pulled.payload.written;
      this.#o.logger.debug({ ...pass }, 'anti-entropy repaired differing buckets');
    }
    this.#o.counters.antiEntropyPasses++;
    return pass;
  }

  /** The digest of the local records that this node and `peer` should both hold. */
  async digest(peer: string, buckets: number): Promise<Digest> {
    const digest: Digest = {
      sums: new Uint32Array(buckets),
      xors: new Uint32Array(buckets),
      counts: new Uint32Array(buckets),
    };
    const sharing = new Set<string>();
    let after: string | undefined;
    for (;;) {
      const limit = this.#o.mover.batchSize;
      const page = await this.#o.storage.scan(
        after === undefined ? { limit, tombstones: true } : { limit, tombstones: true, after },
      );
      const shared = await Promise.all(page.records.map((r) => this.#shares(r.key, peer, sharing)));
      for (let i = 0; i < page.records.length; i++) {
        if (!shared[i]) continue;
        const record = page.records[i]!;
        const b = bucketOf(record.key, buckets);
        const h = recordHash(record);
        digest.sums[b] = (digest.sums[b]! + h) >>> 0;
        digest.xors[b] = (digest.xors[b]! ^ h) >>> 0;
        digest.counts[b]!++;
      }
      if (page.next === undefined) break;
      after = page.next;
    }
    sharing.delete(this.#o.selfId);
    this.#sharing = sharing;
    return digest;
  }

  /** Serves `kvmesh.movement.DigestRequest`. */
  async onDigest(payload: DigestRequestPayload): Promise<DigestReplyPayload> {
    const buckets = checkBuckets(payload.buckets);
    const digest = await this.#serve(this.digest(payload.peer, buckets));
    return { sums: [...digest.sums], xors: [...digest.xors], counts: [...digest.counts] };
  }

  /** Serves `kvmesh.movement.RepairRequest`: streams this node's records of the differing buckets to the asker. */
  async onRepair(payload: RepairRequestPayload, context: RpcContext): Promise<RepairReplyPayload> {
    const buckets = checkBuckets(payload.buckets);
    const known = this.#members().find((m) => m.id === payload.peer);
    // The membership's address is the one the peer listens on; the sender's may be an outgoing port.
    const peer: Member = known ?? { id: payload.peer, address: context.from, state: 'alive', incarnation: 0, meta: {} };
    // Stopping this node ends the stream as well as the caller giving up does.
    const signal = AbortSignal.any([context.signal, this.#lifetime.signal]);
    const pushed = await this.#serve(this.#push(peer, buckets, payload.differing, signal));
    return { sent: pushed.sent, written: pushed.written };
  }

  async #push(
    peer: Member,
    buckets: number,
    differing: readonly number[],
    signal: AbortSignal,
  ): Promise<{ sent: number; written: number }> {
    const wanted = new Set(differing);
    const sharing = new Set<string>();
    const result = await this.#o.mover.copy({
      filter: (key) => wanted.has(bucketOf(key, buckets)),
      select: (record) => this.#shares(record.key, peer.id, sharing),
      targets: [peer],
      purge: false,
      purpose: 'PURPOSE_REPAIR',
      signal,
    });
    return { sent: result.sent, written: result.written };
  }

  /** Whether this node and `peer` are both read replicas of `key`; notes every replica met in `sharing`. */
  async #shares(key: string, peer: string, sharing: Set<string>): Promise<boolean> {
    let replicas: readonly Member[];
    try {
      replicas = (await this.#o.placement.locate(key, { intent: 'read', signal: this.#lifetime.signal })).replicas;
    } catch {
      return false;
    }
    let self = false;
    let other = false;
    for (const r of replicas) {
      sharing.add(r.id);
      if (r.id === this.#o.selfId) self = true;
      else if (r.id === peer) other = true;
    }
    return self && other;
  }

  #pickPeer(): Member | undefined {
    const alive = this.#members().filter((m) => m.state === 'alive' && m.id !== this.#o.selfId);
    if (alive.length === 0) return undefined;
    const preferred = alive.filter((m) => this.#sharing.has(m.id));
    const from = preferred.length > 0 ? preferred : alive;
    return from[this.#o.random.int(from.length)];
  }

  /** The membership's members, or without one the peers routed placement named. */
  #members(): readonly Member[] {
    return this.#o.membership?.members() ?? this.#o.peers?.() ?? [];
  }

  #serve<T>(work: Promise<T>): Promise<T> {
    this.#serving.add(work);
    void work.then(
      () => this.#serving.delete(work),
      () => this.#serving.delete(work),
    );
    return work;
  }
}

function checkBuckets(buckets: number): number {
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > MAX_ANTI_ENTROPY_BUCKETS) {
    throw new KvError(
      'KVMESH_ERR_MESSAGE_INVALID',
      `an anti-entropy request must name 1..${MAX_ANTI_ENTROPY_BUCKETS} buckets (found ${buckets})`,
    );
  }
  return buckets;
}
