import { KvError } from '@kvmesh/core';
import type {
  Clock,
  Codec,
  Logger,
  Member,
  Membership,
  MembershipBounds,
  MembershipListener,
  MemberState,
  MessageRegistry,
  NodeInfo,
  Random,
  Rpc,
  RpcContext,
  Timer,
  Transport,
} from '@kvmesh/core';
import { Awareness } from './awareness.js';
import { Dissemination } from './dissemination.js';
import { MemberList, isLive } from './member-list.js';
import type { MemberRecord } from './member-list.js';
import { MemberSync } from './member-sync.js';
import { RefusedClaims, judgeClaim, judgeClaimAboutSelf } from './claims.js';
import type { Via } from './member-sync.js';
import { FROM_WIRE, SWIM_MESSAGES, swimProtoSource, unflattenMeta } from './messages.js';
import type { AckMessage, GossipMessage, PingMessage, WireUpdate } from './messages.js';
import type { SwimOptions } from './options.js';
import { Prober } from './prober.js';
import { Suspicion } from './suspicion.js';

export interface SwimComponents {
  readonly node: NodeInfo;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly messages: MessageRegistry;
  readonly rpc: Rpc;
  readonly codec: Codec;
  readonly transport: Transport;
}

/**
 * Protocol periods a detection takes beyond the suspicion timeout: the first
 * probe of the crashed member (e/(e-1) periods on average, section 3.1 of
 * the paper, with a long tail), its indirect probes, the confirmations
 * Lifeguard waits for, and slack for the last members to hear of it.
 */
const DETECTION_EXTRA_PERIODS = 8;
/** Packet loss at which simulateMembership saw no false positive over 1,000 periods at N = 100, with and without Lifeguard. */
const TOLERATED_LOSS_LIFEGUARD = 0.05;
const TOLERATED_LOSS_PLAIN = 0.01;
/** Most newer facts sent back to a member that told us stale ones, per message (one datagram holds them). */
const MAX_CORRECTIONS = 4;
/** How many members a leaving member tells directly, beyond piggybacking. */
const LEAVE_FANOUT_EXTRA = 1;

/**
 * SWIM membership (Das, Gupta, Motivala 2002) with the Lifeguard
 * refinements (Dadgar, Phillips, Currey 2018), after hashicorp/memberlist.
 *
 * Failure detection is the Prober's; this class keeps the member table and
 * its rules: incarnation numbers order the facts about a member, only the
 * member raises its own incarnation (to refute a suspicion or to announce a
 * restart), suspicions run a Suspicion timer, and every accepted change is
 * queued for infection-style dissemination on the next probes.
 *
 * The incarnation starts at the start time in whole seconds, so a restarted
 * member announces itself above anything its previous run said, even where
 * the others already forgot it.
 */
export class SwimMembership implements Membership {
  readonly name = 'swim';
  /** Facts refused since start because no honest member sends them (an absurd incarnation). */
  get refusedClaims(): number {
    return this.#refused.count;
  }

  readonly #options: SwimOptions;
  readonly #c: SwimComponents;
  readonly #log: Logger;
  readonly #list: MemberList;
  readonly #awareness: Awareness;
  readonly #prober: Prober;
  readonly #listeners = new Set<MembershipListener>();
  readonly #gossip: Dissemination;
  #self: Member;
  #running = false;
  #leaving = false;
  #unsubscribe: Array<() => void> = [];
  readonly #sync: MemberSync;
  readonly #refused: RefusedClaims;
  #timers: Timer[] = [];

  constructor(options: SwimOptions, components: SwimComponents) {
    if (options.probeTimeoutMs >= options.probeIntervalMs) {
      throw new KvError(
        'KVMESH_ERR_CONFIG_INVALID',
        `swim: probeTimeoutMs (${options.probeTimeoutMs}) must be below probeIntervalMs (${options.probeIntervalMs})`,
      );
    }
    this.#options = options;
    this.#c = components;
    this.#log = components.logger;
    this.#refused = new RefusedClaims(components.clock, components.logger);
    components.messages.define(swimProtoSource());
    const { node, clock, random } = components;
    this.#self = Object.freeze({
      id: node.id,
      address: components.rpc.address,
      state: 'alive',
      incarnation: Math.max(0, Math.floor(clock.now() / 1000)),
      meta: Object.freeze({ api: `http://${node.address}`, role: node.role }),
    });
    this.#list = new MemberList(node.id, random);
    this.#gossip = new Dissemination(components, options, this.#list, node.id);
    this.#list.set({ member: this.#self, changedAt: clock.now(), suspicion: undefined });
    this.#awareness = new Awareness(options.lifeguard ? options.awarenessMaxMultiplier : 1);
    this.#prober = new Prober(clock, random.fork(), options, this.#list, this.#awareness, {
      selfId: node.id,
      transmit: (to, type, base, first) => this.#transmit(to, type, base, first),
      doubtAbout: (id) => this.#doubtAbout(id),
      probeFailed: (target, sentAt) => this.#probeFailed(target, sentAt),
    });
    this.#sync = new MemberSync(components, options, this.#list, {
      running: () => this.#running,
      leaving: () => this.#leaving,
      self: () => this.#gossip.wire(this.#self),
      announce: (update) => this.#apply(update, 'direct'),
      applyAll: (updates, from) => this.#applyAll(updates, 'sync', from),
      sized: (member) => this.#gossip.sized(member),
    });
  }

  get self(): Member {
    return this.#self;
  }

  get bounds(): MembershipBounds {
    const periodMs = this.#options.probeIntervalMs;
    const suspicionTimeoutMs = this.#suspicionTimeoutMs();
    return {
      detectionMs: suspicionTimeoutMs + DETECTION_EXTRA_PERIODS * periodMs,
      toleratedLoss: this.#options.lifeguard ? TOLERATED_LOSS_LIFEGUARD : TOLERATED_LOSS_PLAIN,
      periodMs,
      suspicionTimeoutMs,
      // Every other push-pull goes to a member held dead: two intervals, then the refutation's gossip.
      healMs:
        this.#options.pushPullIntervalMs > 0
          ? 2 * this.#options.pushPullIntervalMs + suspicionTimeoutMs + DETECTION_EXTRA_PERIODS * periodMs
          : Infinity,
    };
  }

  /** Local health multiplier score (0 = healthy), for metrics and tests. */
  get awareness(): number {
    return this.#awareness.score;
  }

  members(): readonly Member[] {
    return this.#list.members();
  }

  on(listener: MembershipListener): () => void {
    const wrapped: MembershipListener = (event) => listener(event);
    this.#listeners.add(wrapped);
    return () => {
      this.#listeners.delete(wrapped);
    };
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    const { rpc, clock, random } = this.#c;
    if (this.#self.address !== rpc.address) this.#setSelf({ ...this.#self, address: rpc.address });
    this.#unsubscribe = [
      rpc.on(SWIM_MESSAGES.ping, (m: PingMessage, ctx: RpcContext) => {
        this.#receive(m.updates, ctx.from, () => this.#prober.onPing(m, ctx.from));
        this.#sync.compareViews(ctx.from, m.members);
      }),
      rpc.on(SWIM_MESSAGES.ack, (m: AckMessage, ctx: RpcContext) => {
        this.#receive(m.updates, ctx.from, () => this.#prober.onAck(m));
        this.#sync.compareViews(ctx.from, m.members);
      }),
      rpc.on(SWIM_MESSAGES.nack, (m) => this.#prober.onNack(m)),
      rpc.on(SWIM_MESSAGES.pingReq, (m, ctx: RpcContext) =>
        this.#receive(m.updates, ctx.from, () => this.#prober.onPingReq(m, ctx.from)),
      ),
      rpc.on(SWIM_MESSAGES.gossip, (m: GossipMessage, ctx: RpcContext) =>
        this.#receive(m.updates, ctx.from, () => undefined),
      ),
    ];
    if (!this.#leaving) this.#prober.start();
    const { pushPullIntervalMs, deadRetentionMs } = this.#options;
    if (pushPullIntervalMs > 0) {
      this.#timers.push(
        clock.setTimeout(
          () => {
            this.#sync.pushPull();
            this.#timers.push(clock.setInterval(() => this.#sync.pushPull(), pushPullIntervalMs));
          },
          random.int(pushPullIntervalMs) + 1,
        ),
      );
    }
    const reapEveryMs = Math.max(this.#options.probeIntervalMs, Math.floor(deadRetentionMs / 10));
    this.#timers.push(clock.setInterval(() => this.#reap(), reapEveryMs));
  }

  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    this.#unsubscribe = [];
    for (const timer of this.#timers) timer.cancel();
    this.#timers = [];
    this.#prober.stop();
    for (const record of this.#list.values()) {
      record.suspicion?.cancel();
      record.suspicion = undefined;
    }
    this.#gossip.clear();
  }

  /**
   * Announces this member and copies the member list of the first seed that
   * answers, page by page (each page fits one datagram). Seeds are tried at
   * once. Members learnt this way are not re-gossiped (the others know
   * them); the news of the join is this member's own alive update, which it
   * piggybacks on its probes.
   * @throws KvError with the code of the first failure when no seed answered.
   */
  async join(seeds: readonly string[]): Promise<void> {
    if (!this.#running) throw new KvError('KVMESH_ERR_KERNEL_STATE', 'swim: join() needs a started membership');
    const targets = [...new Set(seeds)].filter((s) => s !== this.#self.address);
    if (targets.length === 0) return;
    this.#gossip.enqueue(this.#gossip.wire(this.#self));
    await this.#sync.join(targets);
  }

  /**
   * Marks this member left, stops probing and tells a few members directly
   * (as requests: a goodbye in a datagram may be lost, or cut off by the
   * transport stopping right after). Resolves once one of them acknowledged
   * it, or after one protocol period; stop() follows.
   */
  async leave(): Promise<void> {
    if (!this.#running || this.#leaving) return;
    this.#leaving = true;
    this.#prober.stop();
    this.#setSelf({ ...this.#self, state: 'left' });
    this.#gossip.enqueue(this.#gossip.wire(this.#self));
    const fanout = this.#options.indirectProbes + LEAVE_FANOUT_EXTRA;
    const peers = this.#list.randomAlive(fanout, this.#self.id).map((r) => r.member.address);
    const told = await this.#sync.tell(peers, this.#options.probeIntervalMs);
    if (!told && peers.length > 0) {
      this.#log.info({ peers: peers.length }, 'swim: no member acknowledged the leave; it will be seen as a failure');
    }
  }

  // ---- the member table's rules --------------------------------------------------------------

  #receive(updates: readonly WireUpdate[], from: string, then: () => void): void {
    if (!this.#running) return;
    this.#applyAll(updates, 'gossip', from);
    then();
  }

  /**
   * Applies facts that came from `from`, and answers stale ones: when a
   * fact is about an older incarnation than we know (a suspicion of us or of
   * another member that was refuted since), `from` gets our newer facts at
   * once. A member that missed a refutation would otherwise keep the old
   * suspicion and declare a live member dead when it times out, since the
   * refutation's own retransmissions may have run out.
   */
  #applyAll(updates: readonly WireUpdate[], via: Via, from: string): void {
    let corrections: WireUpdate[] | undefined;
    for (const update of updates) {
      if (update.id === this.#self.id) {
        if (this.#aboutSelf(update, from)) (corrections ??= []).push(this.#gossip.wire(this.#self));
        continue;
      }
      const known = this.#list.get(update.id)?.member;
      if (known !== undefined && update.incarnation < known.incarnation) {
        (corrections ??= []).push(this.#gossip.wire(known));
        continue;
      }
      this.#apply(update, via, from);
    }
    if (corrections !== undefined && !this.#leaving) {
      this.#gossip.send(from, SWIM_MESSAGES.gossip, { updates: corrections.slice(0, MAX_CORRECTIONS) });
    }
  }

  /** Applies one fact; `via` says how it came (sync-learnt new members are not re-gossiped). */
  #apply(claim: WireUpdate, via: Via, from = ''): void {
    if (claim.id === this.#self.id) {
      this.#aboutSelf(claim, from);
      return;
    }
    const record = this.#list.get(claim.id);
    const verdict = judgeClaim(claim, record?.member, this.#c.clock.now());
    if (verdict.kind === 'refuse') {
      this.#refused.refused(claim, from, verdict.reason);
      return;
    }
    const u = verdict.update;
    switch (FROM_WIRE[u.state]) {
      case 'alive':
        if (record !== undefined && u.incarnation <= record.member.incarnation) return;
        if (u.address === '') return;
        this.#change(
          {
            id: u.id,
            address: u.address,
            state: 'alive',
            incarnation: u.incarnation,
            meta: unflattenMeta(u.meta),
          },
          record,
          via === 'gossip' || record !== undefined,
        );
        return;
      case 'suspect':
        this.#suspect(u, record);
        return;
      case 'dead':
        if (record === undefined || u.incarnation < record.member.incarnation || !isLive(record.member)) return;
        // A death learnt by anti-entropy only becomes a suspicion here, so the member can still refute it.
        if (via === 'sync') {
          this.#suspect({ ...u, state: 'SUSPECT', ageMs: 0 }, record);
          return;
        }
        this.#change({ ...record.member, state: 'dead', incarnation: u.incarnation }, record, true);
        return;
      case 'left':
        if (record === undefined || u.incarnation < record.member.incarnation || record.member.state === 'left') return;
        this.#change({ ...record.member, state: 'left', incarnation: u.incarnation }, record, true);
        return;
    }
  }

  #suspect(u: WireUpdate, record: MemberRecord | undefined): void {
    if (record === undefined || u.incarnation < record.member.incarnation) return;
    const now = this.#c.clock.now();
    // A suspicion that reaches us only after half its timeout is likely one we missed the refutation of:
    // count at most that much of its age, so the member still has time to tell us.
    const since = now - Math.min(u.ageMs, Math.floor(this.#suspicionTimeoutMs() / 2));
    if (record.member.state === 'suspect' && record.suspicion !== undefined) {
      record.suspicion.startedAt(since);
      if (record.suspicion.confirm(u.from, u.confirmations)) {
        this.#gossip.enqueue({ ...this.#gossip.wire(record.member), from: u.from }, record.suspicion.since);
      }
      return;
    }
    if (record.member.state !== 'alive') return;
    const member: Member = { ...record.member, state: 'suspect', incarnation: u.incarnation };
    const next = this.#change(member, record, false);
    next.suspicion = this.#newSuspicion(member, u.from, since);
    next.suspicion.confirm(u.from, u.confirmations);
    this.#gossip.enqueue({ ...this.#gossip.wire(member), from: u.from }, since);
  }

  #newSuspicion(member: Member, from: string, since: number): Suspicion {
    const { lifeguard, suspicionMult, suspicionMaxTimeoutMult } = this.#options;
    const minMs = this.#suspicionTimeoutMs();
    let k = lifeguard ? suspicionMult - 2 : 0;
    // Without enough other members to confirm, wait for none (memberlist's rule: n - 2 < k).
    if (this.#list.liveCount - 2 < k) k = 0;
    return new Suspicion(this.#c.clock, {
      from,
      self: this.#self.id,
      k,
      minMs,
      maxMs: lifeguard ? suspicionMaxTimeoutMult * minMs : minMs,
      since,
      onTimeout: () => {
        const current = this.#list.get(member.id);
        if (current?.member.state !== 'suspect' || current.member.incarnation !== member.incarnation) return;
        this.#log.info(
          { member: member.id, incarnation: member.incarnation, confirmations: current.suspicion?.confirmations },
          'swim: suspect declared dead',
        );
        const dead: Member = { ...current.member, state: 'dead' };
        this.#change(dead, current, false);
        this.#gossip.enqueue({ ...this.#gossip.wire(dead), from: this.#self.id });
      },
    });
  }

  /**
   * Somebody said something about us: refute anything that would take us
   * down, and anything newer than us.
   * @returns true when the fact doubted us (suspect, dead or left), refuted now or earlier.
   */
  #aboutSelf(u: WireUpdate, from: string): boolean {
    const state = FROM_WIRE[u.state];
    if (this.#leaving) return false;
    const verdict = judgeClaimAboutSelf(u, this.#self);
    if (verdict.kind === 'refuse') {
      this.#refused.refused(u, from, verdict.reason);
      return false;
    }
    if (u.incarnation < this.#self.incarnation) return state !== 'alive';
    if (state === 'alive' && u.incarnation === this.#self.incarnation) return false;
    if (state !== 'alive') this.#awareness.applyDelta(1);
    this.#log.debug({ state, incarnation: u.incarnation }, 'swim: refuting a fact about this member');
    this.#setSelf({ ...this.#self, state: 'alive', incarnation: u.incarnation + 1 });
    this.#gossip.enqueue(this.#gossip.wire(this.#self));
    return state !== 'alive';
  }

  /** Our own suspicion: it began when the unanswered ping left, the last moment the member could have answered. */
  #probeFailed(target: Member, sentAt: number): void {
    const record = this.#list.get(target.id);
    if (record === undefined || !isLive(record.member) || this.#leaving) return;
    const ageMs = Math.max(0, this.#c.clock.now() - sentAt);
    this.#suspect({ ...this.#gossip.wire(record.member), state: 'SUSPECT', from: this.#self.id, ageMs }, record);
  }

  /** Replaces a member's record, emits the event and, when `gossip`, queues the fact. */
  #change(member: Member, old: MemberRecord | undefined, gossip: boolean): MemberRecord {
    old?.suspicion?.cancel();
    const frozen = Object.freeze(member);
    const previous = old?.member.state;
    const changedAt = previous === frozen.state && old !== undefined ? old.changedAt : this.#c.clock.now();
    const record: MemberRecord = { member: frozen, changedAt, suspicion: undefined };
    this.#list.set(record);
    if (gossip) this.#gossip.enqueue(this.#gossip.wire(frozen));
    this.#emit(frozen, previous);
    return record;
  }

  #setSelf(member: Member): void {
    const previous = this.#self.state;
    this.#self = Object.freeze(member);
    this.#list.set({ member: this.#self, changedAt: this.#c.clock.now(), suspicion: undefined });
    this.#emit(this.#self, previous);
  }

  #emit(member: Member, previous: MemberState | undefined): void {
    for (const listener of this.#listeners) {
      try {
        listener({ member, previous });
      } catch (err) {
        this.#log.error({ err: (err as Error).message }, 'swim: a membership listener threw');
      }
    }
  }

  #reap(): void {
    const horizon = this.#c.clock.now() - this.#options.deadRetentionMs;
    for (const record of [...this.#list.values()]) {
      if (!isLive(record.member) && record.changedAt <= horizon && record.member.id !== this.#self.id) {
        this.#list.delete(record.member.id);
      }
    }
  }

  #doubtAbout(id: string): WireUpdate | undefined {
    const record = this.#list.get(id);
    if (record === undefined || record.member.state === 'alive') return undefined;
    return this.#gossip.wire(record.member);
  }

  #transmit(to: string, type: string, base: Record<string, unknown>, first?: readonly WireUpdate[]): void {
    if (this.#running) this.#gossip.transmit(to, type, base, first);
  }

  #suspicionTimeoutMs(): number {
    const n = Math.max(1, this.#list.liveCount);
    return Math.round(this.#options.suspicionMult * Math.max(1, Math.log10(n)) * this.#options.probeIntervalMs);
  }
}
