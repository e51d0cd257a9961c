import { FRAME_HEADER_BYTES, KvError, isKvError } from '@kvmesh/core';
import type { Clock, Logger, Member, Message, Rpc, RpcContext, Transport } from '@kvmesh/core';
import type { MemberList } from './member-list.js';
import { SWIM_MESSAGES } from './messages.js';
import type { SyncRequestMessage, SyncResponseMessage, WireUpdate } from './messages.js';
import type { SwimOptions } from './options.js';

/** How a fact reached us: piggybacked gossip, a sync page, or a member announcing itself. */
export type Via = 'gossip' | 'sync' | 'direct';

/** A wire update with an upper bound of its encoded size. */
export interface SizedUpdate {
  readonly update: WireUpdate;
  readonly bytes: number;
}

/** What the syncing needs from its membership. */
export interface SyncHost {
  running(): boolean;
  leaving(): boolean;
  /** This member's own alive fact. */
  self(): WireUpdate;
  /** A member announces itself (the `self` of a sync request). */
  announce(update: WireUpdate): void;
  /** Applies facts from a sync page or push, answering stale ones to `from`. */
  applyAll(updates: readonly WireUpdate[], from: string): void;
  sized(member: Member): SizedUpdate;
}

export interface SyncComponents {
  readonly rpc: Rpc;
  readonly clock: Clock;
  readonly transport: Transport;
  readonly logger: Logger;
}

/** Attempts per page of a join before trying the next seed. */
const SYNC_ATTEMPTS = 3;
/** Room kept free in a sync message for its own fields. */
const SYNC_RESERVE_BYTES = 64;
/** Room kept free in a push-pull request for the sender's own fact and the request's fields. */
const PUSH_RESERVE_BYTES = 320;
/** Members sampled for one anti-entropy exchange (more than fit one datagram; the page cuts). */
const SAMPLE_MEMBERS = 32;
/** Protocol periods between two catch-up syncs of one member; doubled after each that taught nothing. */
const CATCH_UP_COOLDOWN_PERIODS = 5;
const CATCH_UP_MAX_COOLDOWN_PERIODS = 320;
/** Protocol periods a peer must keep knowing more live members than we do before we copy its list. */
const CATCH_UP_AFTER_PERIODS = 5;
/** A peer that knows this fraction more live members (and at least 2 more) is copied at once. */
const CATCH_UP_FRACTION = 1 / 32;

/**
 * Join and anti-entropy, over requests with deadlines whose frames fit one
 * datagram: copying a member's list page by page (its member log, in the
 * order it learnt of members, so members that join during the copy are
 * still seen), catching up with a peer that knows more members, the
 * periodic push-pull of a random sample (memberlist's push/pull state
 * sync, bounded to one page so its cost does not grow with N), and serving
 * all of these.
 */
export class MemberSync {
  #toTheDead = false;
  readonly #c: SyncComponents;
  readonly #options: SwimOptions;
  readonly #list: MemberList;
  readonly #host: SyncHost;
  #catchingUp = false;
  #caughtUpAt = -Infinity;
  #viewSize = 0;
  #behindSince: number | undefined;
  #cooldownPeriods = CATCH_UP_COOLDOWN_PERIODS;
  /** Where the last copy of a member log stopped, to continue from there. */
  #mark: { readonly address: string; readonly cursor: number; readonly fruitful: boolean } | undefined;

  constructor(components: SyncComponents, options: SwimOptions, list: MemberList, host: SyncHost) {
    this.#c = components;
    this.#options = options;
    this.#list = list;
    this.#host = host;
    components.rpc.handle(SWIM_MESSAGES.syncRequest, (request: SyncRequestMessage, context) =>
      this.#serve(request, context),
    );
  }

  /**
   * Copies the list of the first of `seeds` that answers, all of them tried at once.
   * @throws KvError with the code of the first failure when none answered.
   */
  async join(seeds: readonly string[]): Promise<void> {
    const errors: unknown[] = [];
    let answered = false;
    // A join copies a whole list; comparing views on the way would only copy it again.
    this.#catchingUp = true;
    const joined = new Promise<void>((resolve, reject) => {
      for (const seed of seeds) {
        this.#syncAll(seed).then(
          ({ cursor }) => {
            if (!answered) this.#mark = { address: seed, cursor, fruitful: true };
            answered = true;
            resolve();
          },
          (err: unknown) => {
            errors.push(err);
            if (errors.length === seeds.length) reject(noSeedAnswered(seeds, errors[0]));
          },
        );
      }
    });
    try {
      await joined;
    } finally {
      this.#catchingUp = false;
    }
  }

  /**
   * Members that joined through a seed whose list was still short (many
   * nodes starting at once) would wait long for gossip to name everyone, and
   * news whose retransmissions ran out before it reached us never comes
   * again. So pings and acks carry how many live members their sender
   * knows, and we copy the list of a peer that knows clearly more (at once),
   * or more for a while (a gap that gossip does not close), at most once
   * per cooldown.
   */
  compareViews(peer: string, theirs: number): void {
    const ours = this.#list.liveCount;
    if (ours !== this.#viewSize) {
      this.#viewSize = ours;
      this.#behindSince = undefined;
    }
    if (theirs <= ours) {
      this.#behindSince = undefined;
      return;
    }
    const now = this.#c.clock.now();
    const period = this.#options.probeIntervalMs;
    this.#behindSince ??= now;
    const far = theirs > ours + Math.max(1, Math.floor(ours * CATCH_UP_FRACTION));
    const lasting = now - this.#behindSince >= CATCH_UP_AFTER_PERIODS * period;
    if ((!far && !lasting) || this.#catchingUp || this.#host.leaving()) return;
    if (now - this.#caughtUpAt < this.#cooldownPeriods * period) return;
    // Continue the log of the member we copied last, from where we stopped (cheap: only what joined since),
    // unless that taught us nothing last time; then copy the whole list of the peer that knows more.
    const mark = this.#mark;
    const resume = mark !== undefined && mark.fruitful;
    const target = resume ? mark.address : peer;
    this.#catchingUp = true;
    this.#syncAll(target, resume ? mark.cursor : 0)
      .then(
        ({ cursor, learned }) => {
          this.#mark = { address: target, cursor, fruitful: learned > 0 || !resume };
          this.#cooldownPeriods =
            learned > 0
              ? CATCH_UP_COOLDOWN_PERIODS
              : Math.min(2 * this.#cooldownPeriods, CATCH_UP_MAX_COOLDOWN_PERIODS);
        },
        (err: unknown) => {
          if (resume) this.#mark = { ...mark, fruitful: false };
          this.#c.logger.debug({ peer: target, err: (err as Error).message }, 'swim: catch-up sync failed');
        },
      )
      .finally(() => {
        this.#catchingUp = false;
        this.#caughtUpAt = this.#c.clock.now();
        this.#behindSince = undefined;
      });
  }

  /**
   * Pushes this member's own fact (its goodbye, while leaving) to `peers`
   * as requests and resolves once one of them answered, all failed, or
   * `timeoutMs` passed. An answer proves the fact arrived, which a datagram
   * cannot; the peer that has it spreads it by gossip.
   * @returns whether a peer acknowledged it.
   */
  tell(peers: readonly string[], timeoutMs: number): Promise<boolean> {
    if (peers.length === 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      let failed = 0;
      for (const peer of peers) {
        this.#request(peer, { cursor: 0, full: false, updates: [] }, timeoutMs).then(
          () => resolve(true),
          (err: unknown) => {
            this.#c.logger.debug({ peer, err: (err as Error).message }, 'swim: a member did not acknowledge');
            if (++failed === peers.length) resolve(false);
          },
        );
      }
    });
  }

  /**
   * One anti-entropy exchange with a random alive member: a page of random
   * facts each way. Every other exchange goes to a member held dead, when
   * one is still remembered (memberlist gossips to the dead for a while,
   * too): one that is in fact alive learns it is held dead and refutes, so
   * a split whose sides declared each other dead heals within two
   * `pushPullIntervalMs` of the link coming back, if it lasted less than
   * `deadRetentionMs`.
   */
  pushPull(): void {
    this.#toTheDead = !this.#toTheDead;
    const peer = (this.#toTheDead ? this.#list.randomDead() : undefined) ?? this.#list.randomAlive(1, '')[0];
    if (peer === undefined || this.#host.leaving()) return;
    const push = page(this.#sample(), this.#c.transport.maxFrameBytes - PUSH_RESERVE_BYTES).map((s) => s.update);
    this.#request(peer.member.address, { cursor: 0, full: false, updates: push }).then(
      (response) => {
        if (this.#host.running()) this.#host.applyAll(response.payload.members, peer.member.address);
      },
      (err: unknown) =>
        this.#c.logger.debug({ peer: peer.member.id, err: (err as Error).message }, 'swim: push-pull failed'),
    );
  }

  /**
   * Copies `peer`'s member log from `cursor` to its end, page by page.
   * @returns the cursor after the last page and how many members were new here.
   */
  async #syncAll(peer: string, cursor = 0): Promise<{ cursor: number; learned: number }> {
    const before = this.#list.logLength;
    for (;;) {
      const response = await this.#page(peer, cursor);
      const done = !response.more || response.next <= cursor || !this.#host.running();
      cursor = response.next;
      if (done) return { cursor, learned: this.#list.logLength - before };
    }
  }

  async #page(peer: string, cursor: number): Promise<SyncResponseMessage> {
    let failure: unknown;
    for (let attempt = 0; attempt < SYNC_ATTEMPTS; attempt++) {
      try {
        const response = await this.#request(peer, { cursor, full: true, updates: [] });
        if (this.#host.running()) this.#host.applyAll(response.payload.members, peer);
        return response.payload;
      } catch (err) {
        failure = err;
        if (!this.#host.running()) break;
      }
    }
    throw failure;
  }

  #request(
    peer: string,
    fields: Pick<SyncRequestMessage, 'cursor' | 'full' | 'updates'>,
    timeoutMs?: number,
  ): Promise<Message<SyncResponseMessage>> {
    return this.#c.rpc.request<SyncResponseMessage>(
      peer,
      SWIM_MESSAGES.syncRequest,
      { self: this.#host.self(), maxBytes: this.#c.transport.maxFrameBytes, ...fields },
      timeoutMs === undefined ? {} : { timeoutMs },
    );
  }

  #serve(request: SyncRequestMessage, context: RpcContext): Message<SyncResponseMessage> {
    if (!this.#host.running()) throw new KvError('KVMESH_ERR_TRANSPORT_CLOSED', 'swim: this member is not running');
    this.#host.announce(request.self);
    this.#host.applyAll(request.updates, context.from);
    const budget =
      Math.min(request.maxBytes > 0 ? request.maxBytes : Infinity, this.#c.transport.maxFrameBytes) -
      FRAME_HEADER_BYTES -
      SYNC_RESERVE_BYTES;
    let members: SizedUpdate[];
    let next = 0;
    let more = false;
    if (request.full) {
      members = [];
      let left = budget;
      const end = this.#list.logLength;
      for (next = request.cursor; next < end; next++) {
        const record = this.#list.atLog(next);
        if (record === undefined) continue;
        const sized = this.#host.sized(record.member);
        if (sized.bytes > left && members.length > 0) break;
        left -= sized.bytes;
        members.push(sized);
      }
      more = next < end;
    } else {
      // The requester's own record first: it learns at once what we believe about it.
      const theirs = this.#list.get(request.self.id);
      const first = theirs ? [this.#host.sized(theirs.member)] : [];
      members = page([...first, ...this.#sample()], budget);
    }
    return { type: SWIM_MESSAGES.syncResponse, payload: { members: members.map((s) => s.update), next, more } };
  }

  #sample(): SizedUpdate[] {
    return this.#list.randomAlive(SAMPLE_MEMBERS, '').map((r) => this.#host.sized(r.member));
  }
}

/** The leading updates of `candidates` that fit in `budget` bytes. */
function page(candidates: readonly SizedUpdate[], budget: number): SizedUpdate[] {
  const out: SizedUpdate[] = [];
  for (const candidate of candidates) {
    if (candidate.bytes > budget) break;
    budget -= candidate.bytes;
    out.push(candidate);
  }
  return out;
}

function noSeedAnswered(seeds: readonly string[], first: unknown): KvError {
  return new KvError(
    isKvError(first) ? first.code : 'KVMESH_ERR_TRANSPORT_UNREACHABLE',
    `swim: none of the seeds ${seeds.join(', ')} answered: ${first instanceof Error ? first.message : String(first)}`,
    { cause: first },
  );
}
