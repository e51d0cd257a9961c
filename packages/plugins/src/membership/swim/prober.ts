import type { Clock, Member, Random, Timer } from '@kvmesh/core';
import type { Awareness } from './awareness.js';
import type { MemberList, MemberRecord } from './member-list.js';
import { SWIM_MESSAGES } from './messages.js';
import type { AckMessage, NackMessage, PingMessage, PingReqMessage, WireUpdate } from './messages.js';
import type { SwimOptions } from './options.js';
import { scheduledRound } from './schedule.js';

/** What the probe loop needs from its membership. */
export interface ProbeHost {
  readonly selfId: string;
  /** Sends a one-way message with piggybacked updates, `first` ahead of the queued ones. */
  transmit(to: string, type: string, base: Record<string, unknown>, first?: readonly WireUpdate[]): void;
  /** The update to hand a member whose state we doubt (Lifeguard's buddy system), if any. */
  doubtAbout(id: string): WireUpdate | undefined;
  /** The probe of `target`, whose ping left at `sentAt`, got no ack, direct or indirect, within the protocol period. */
  probeFailed(target: Member, sentAt: number): void;
}

/**
 * A relay sends its nack after this fraction of probeTimeoutMs (Lifeguard,
 * section IV-A, uses 80%): the ping-req leaves one probe timeout into the
 * period, so a nack sent after a whole one would reach the requester just
 * after its period ended, count as missing, and raise its local health
 * multiplier for every probe of a member that really is dead.
 */
const NACK_AFTER = 0.8;

interface Probe {
  readonly seq: number;
  readonly target: Member;
  readonly sentAt: number;
  acked: boolean;
  /** Acked within probeTimeoutMs (a healthy round trip). */
  prompt: boolean;
  nacks: number;
  expectedNacks: number;
  timer: Timer | undefined;
}

interface Relay {
  readonly requester: string;
  readonly seq: number;
  readonly timer: Timer;
}

/**
 * The failure detector of SWIM (section 3.1): once per protocol period, ping
 * the next member of the round-robin order (or, in a scheduled round, this
 * member's successor on the ring all members share: schedule.ts); without an ack within
 * probeTimeoutMs, ask `indirectProbes` random members to ping it for us
 * (ping-req); without any ack by the end of the period, hand it to the
 * suspicion mechanism. Also relays other members' ping-reqs.
 *
 * With Lifeguard the period stretches by the local health multiplier, and a
 * failed probe raises it only by the nacks that did not come back: if the
 * relays answered "no ack from the target", our own links are fine.
 */
export class Prober {
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #options: SwimOptions;
  readonly #list: MemberList;
  readonly #awareness: Awareness;
  readonly #host: ProbeHost;
  readonly #relays = new Map<number, Relay>();
  #seq: number;
  #current: Probe | undefined;
  #tick: Timer | undefined;

  constructor(
    clock: Clock,
    random: Random,
    options: SwimOptions,
    list: MemberList,
    awareness: Awareness,
    host: ProbeHost,
  ) {
    this.#clock = clock;
    this.#random = random;
    this.#options = options;
    this.#list = list;
    this.#awareness = awareness;
    this.#host = host;
    this.#seq = random.int(0x7fffffff);
  }

  get running(): boolean {
    return this.#tick !== undefined;
  }

  /** Starts probing after a random part of one period, so members that start together do not probe in step. */
  start(): void {
    if (this.#tick !== undefined) return;
    this.#tick = this.#clock.setTimeout(() => this.#onTick(), this.#random.int(this.#options.probeIntervalMs) + 1);
  }

  stop(): void {
    this.#tick?.cancel();
    this.#tick = undefined;
    this.#current?.timer?.cancel();
    this.#current = undefined;
    for (const relay of this.#relays.values()) relay.timer.cancel();
    this.#relays.clear();
  }

  onPing(ping: PingMessage, from: string): void {
    if (ping.target !== this.#host.selfId) return;
    const doubt = ping.source === '' ? undefined : this.#host.doubtAbout(ping.source);
    this.#host.transmit(
      from,
      SWIM_MESSAGES.ack,
      { seq: ping.seq, members: this.#list.liveCount },
      doubt ? [doubt] : [],
    );
  }

  onAck(ack: AckMessage): void {
    const relay = this.#relays.get(ack.seq);
    if (relay !== undefined) {
      relay.timer.cancel();
      this.#relays.delete(ack.seq);
      this.#host.transmit(relay.requester, SWIM_MESSAGES.ack, { seq: relay.seq, members: this.#list.liveCount });
      return;
    }
    const probe = this.#current;
    if (probe === undefined || probe.seq !== ack.seq || probe.acked) return;
    probe.acked = true;
    probe.prompt = this.#clock.now() - probe.sentAt <= this.#options.probeTimeoutMs;
    probe.timer?.cancel();
    probe.timer = undefined;
  }

  onNack(nack: NackMessage): void {
    const probe = this.#current;
    if (probe !== undefined && probe.seq === nack.seq) probe.nacks++;
  }

  /** Pings `target` on behalf of `requester`; relays the ack, or a nack when none came in time. */
  onPingReq(request: PingReqMessage, requester: string): void {
    if (request.target === this.#host.selfId) {
      this.#host.transmit(requester, SWIM_MESSAGES.ack, { seq: request.seq, members: this.#list.liveCount });
      return;
    }
    const seq = this.#nextSeq();
    const timer = this.#clock.setTimeout(
      () => {
        this.#relays.delete(seq);
        this.#host.transmit(requester, SWIM_MESSAGES.nack, { seq: request.seq });
      },
      Math.floor(NACK_AFTER * this.#options.probeTimeoutMs),
    );
    this.#relays.set(seq, { requester, seq: request.seq, timer });
    this.#host.transmit(request.targetAddress, SWIM_MESSAGES.ping, {
      seq,
      target: request.target,
      source: this.#host.selfId,
      members: this.#list.liveCount,
    });
  }

  #onTick(): void {
    this.#finish();
    this.#probe();
    this.#tick = this.#clock.setTimeout(() => this.#onTick(), this.#awareness.scale(this.#options.probeIntervalMs));
  }

  /** Settles the probe of the period that just ended. */
  #finish(): void {
    const probe = this.#current;
    if (probe === undefined) return;
    this.#current = undefined;
    probe.timer?.cancel();
    if (probe.acked) {
      if (probe.prompt) this.#awareness.applyDelta(-1);
      return;
    }
    if (this.#options.lifeguard) {
      this.#awareness.applyDelta(
        probe.expectedNacks > 0 ? probe.expectedNacks - Math.min(probe.nacks, probe.expectedNacks) : 1,
      );
    }
    this.#host.probeFailed(probe.target, probe.sentAt);
  }

  #probe(): void {
    const record = this.#scheduledTarget() ?? this.#list.nextProbeTarget();
    if (record === undefined) return;
    const target = record.member;
    const probe: Probe = {
      seq: this.#nextSeq(),
      target,
      sentAt: this.#clock.now(),
      acked: false,
      prompt: false,
      nacks: 0,
      expectedNacks: 0,
      timer: undefined,
    };
    this.#current = probe;
    probe.timer = this.#clock.setTimeout(() => this.#indirect(probe), this.#options.probeTimeoutMs);
    // Lifeguard's buddy system: a suspect learns of its suspicion from the first member that probes it.
    const doubt = target.state === 'suspect' ? this.#host.doubtAbout(target.id) : undefined;
    this.#host.transmit(
      target.address,
      SWIM_MESSAGES.ping,
      { seq: probe.seq, target: target.id, source: this.#host.selfId, members: this.#list.liveCount },
      doubt ? [doubt] : [],
    );
  }

  /** In a scheduled round (schedule.ts), this member's successor on the shared ring; else undefined. */
  #scheduledTarget(): MemberRecord | undefined {
    const { probeIntervalMs, scheduledRoundEvery } = this.#options;
    const at = scheduledRound(this.#clock.now(), probeIntervalMs, scheduledRoundEvery);
    return at === undefined ? undefined : this.#list.scheduledProbeTarget(at);
  }

  #indirect(probe: Probe): void {
    probe.timer = undefined;
    if (probe.acked || this.#current !== probe) return;
    const relays = this.#list.randomAlive(this.#options.indirectProbes, probe.target.id);
    probe.expectedNacks = relays.length;
    for (const relay of relays) {
      this.#host.transmit(relay.member.address, SWIM_MESSAGES.pingReq, {
        seq: probe.seq,
        target: probe.target.id,
        targetAddress: probe.target.address,
        source: this.#host.selfId,
      });
    }
  }

  #nextSeq(): number {
    this.#seq = (this.#seq + 1) >>> 0;
    return this.#seq;
  }
}
