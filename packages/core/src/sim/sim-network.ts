import { silentLogger, type Logger } from '../contracts/logger.js';
import type { Random } from '../contracts/random.js';
import { KvError } from '../errors.js';
import { LINK_PROFILES, resolveLinkProfile, type LinkProfile } from './link-profile.js';
import {
  SIM_FAILURE,
  SimTransport,
  simAddress,
  type SimPacket,
  type SimPacketKind,
  type SimPort,
  type SimTransportOptions,
} from './sim-transport.js';
import type { VirtualClock } from './virtual-clock.js';

export type SimDropReason = 'loss' | 'partition' | 'unreachable';

/** One step in the life of a packet, for comparing runs. */
export interface SimTraceEvent {
  /** Virtual time in ms. */
  readonly at: number;
  /** `send` when put on the link, `duplicate` when a second copy is scheduled, then `deliver` or `drop` per copy. */
  readonly type: 'send' | 'duplicate' | 'deliver' | 'drop';
  /** Network-wide sequence number of the transmission; both copies of a duplicate share it. */
  readonly packet: number;
  readonly kind: SimPacketKind;
  readonly from: string;
  readonly to: string;
  /** Request id (0 for one-way messages). */
  readonly id: number;
  readonly bytes: number;
  /** FNV-1a 32-bit hash of the frame, so traces also compare contents. */
  readonly hash: number;
  /** Set on `drop`. */
  readonly reason?: SimDropReason;
}

type PerKind = Record<SimPacketKind, number>;

/** Counters since construction (or `resetStats()`). */
export interface SimNetworkStats {
  readonly sent: PerKind;
  readonly delivered: PerKind;
  readonly dropped: PerKind;
  readonly duplicated: PerKind;
  readonly dropReasons: Record<SimDropReason, number>;
}

export interface SimNetworkOptions {
  /** Drives every delay and deadline. */
  clock: VirtualClock;
  /** Draws every loss, delay, duplicate and reorder decision (a SeededRandom, so runs replay). */
  random: Random;
  /** Profile of every link without its own `setLink`, over LINK_PROFILES.lan. */
  defaults?: Partial<LinkProfile>;
  /** Called for every trace event, synchronously. */
  trace?: (event: SimTraceEvent) => void;
  /** Where the endpoints report failing handlers. Default: silent. */
  logger?: Logger;
}

const perKind = (): PerKind => ({ request: 0, response: 0, message: 0, failure: 0 });
const freshStats = (): SimNetworkStats => ({
  sent: perKind(),
  delivered: perKind(),
  dropped: perKind(),
  duplicated: perKind(),
  dropReasons: { loss: 0, partition: 0, unreachable: 0 },
});

/**
 * An in-memory network of SimTransport endpoints, in the spirit of
 * memberlist's mock transport. Every delay, loss, duplicate and reorder comes
 * from the injected VirtualClock and Random only, so the same seed and the
 * same script give the same run, bit for bit, and thousands of nodes fit in
 * one process.
 *
 * Links are directional: `setLink(a, b, …)` shapes traffic from a to b only.
 * A partition is checked when a packet is sent and again when it would be
 * delivered, so it also cuts packets already in flight.
 */
export class SimNetwork {
  readonly clock: VirtualClock;
  readonly random: Random;
  private defaults: LinkProfile;
  private readonly links = new Map<string, LinkProfile>();
  private readonly partitions: Array<readonly [ReadonlySet<string>, ReadonlySet<string>]> = [];
  private readonly listeners = new Map<string, (packet: SimPacket) => void>();
  private readonly trace: ((event: SimTraceEvent) => void) | undefined;
  private counters = freshStats();
  private packetSeq = 0;
  private requestSeq = 0;
  private readonly port: SimPort;

  constructor(options: SimNetworkOptions) {
    this.clock = options.clock;
    this.random = options.random;
    this.defaults = resolveLinkProfile(LINK_PROFILES.lan, options.defaults);
    this.trace = options.trace;
    const logger = options.logger ?? silentLogger;
    this.port = {
      clock: this.clock,
      logger,
      nextRequestId: () => ++this.requestSeq,
      listen: (address, receive) => {
        if (this.listeners.has(address)) {
          throw new KvError('KVMESH_ERR_TRANSPORT_LISTEN', `another simulated endpoint already listens at ${address}`);
        }
        this.listeners.set(address, receive);
      },
      unlisten: (address, receive) => {
        if (this.listeners.get(address) === receive) this.listeners.delete(address);
      },
      transmit: (packet) => this.transmit(packet),
    };
  }

  /** A new endpoint at `sim://name` (or `name`), not started. Several may exist per address; one listens at a time. */
  endpoint(address: string, options?: SimTransportOptions): SimTransport {
    return new SimTransport(address, this.port, options);
  }

  /** Addresses where an endpoint is started, sorted. */
  listening(): string[] {
    return [...this.listeners.keys()].sort();
  }

  /** Replaces the profile of links without their own. */
  setDefaults(profile: Partial<LinkProfile>): void {
    this.defaults = resolveLinkProfile(this.defaults, profile);
  }

  /** Shapes traffic from `from` to `to` (one direction), over the current defaults. */
  setLink(from: string, to: string, profile: Partial<LinkProfile>): void {
    this.links.set(linkKey(simAddress(from), simAddress(to)), resolveLinkProfile(this.defaults, profile));
  }

  /** Drops every `setLink` override. */
  clearLinks(): void {
    this.links.clear();
  }

  /** The profile traffic from `from` to `to` gets. */
  link(from: string, to: string): LinkProfile {
    return this.links.get(linkKey(simAddress(from), simAddress(to))) ?? this.defaults;
  }

  /** Drops every packet between a member of `groupA` and a member of `groupB`, both ways, until `heal()`. Cumulative. */
  partition(groupA: readonly string[], groupB: readonly string[]): void {
    this.partitions.push([new Set(groupA.map(simAddress)), new Set(groupB.map(simAddress))]);
  }

  /** Removes every partition. */
  heal(): void {
    this.partitions.length = 0;
  }

  /** True when a partition separates `from` and `to`. */
  isPartitioned(from: string, to: string): boolean {
    return this.cut(simAddress(from), simAddress(to));
  }

  stats(): SimNetworkStats {
    const c = this.counters;
    return {
      sent: { ...c.sent },
      delivered: { ...c.delivered },
      dropped: { ...c.dropped },
      duplicated: { ...c.duplicated },
      dropReasons: { ...c.dropReasons },
    };
  }

  resetStats(): void {
    this.counters = freshStats();
  }

  private cut(from: string, to: string): boolean {
    for (const [a, b] of this.partitions) {
      if ((a.has(from) && b.has(to)) || (b.has(from) && a.has(to))) return true;
    }
    return false;
  }

  private transmit(packet: SimPacket): void {
    const seq = ++this.packetSeq;
    this.counters.sent[packet.kind]++;
    this.emit('send', seq, packet);
    if (this.cut(packet.from, packet.to)) {
      this.drop(seq, packet, 'partition');
      return;
    }
    const profile =
      (this.links.size > 0 ? this.links.get(linkKey(packet.from, packet.to)) : undefined) ?? this.defaults;
    if (profile.loss > 0 && this.random.next() < profile.loss) {
      this.drop(seq, packet, 'loss');
      return;
    }
    this.schedule(seq, packet, profile);
    if (profile.duplicate > 0 && this.random.next() < profile.duplicate) {
      this.counters.duplicated[packet.kind]++;
      this.emit('duplicate', seq, packet);
      // Marked before either copy arrives (delivery is a later timer), so the receiver remembers whichever comes first.
      packet.duplicated = true;
      this.schedule(seq, { ...packet, frame: packet.frame.slice() }, profile);
    }
  }

  private schedule(seq: number, packet: SimPacket, profile: LinkProfile): void {
    const { min, max } = profile.latencyMs;
    let delay = max > min ? min + this.random.int(max - min + 1) : min;
    if (profile.reorder > 0 && this.random.next() < profile.reorder)
      delay += 1 + this.random.int(profile.reorderDelayMs);
    this.clock.setTimeout(() => this.deliver(seq, packet), delay);
  }

  private deliver(seq: number, packet: SimPacket): void {
    if (this.cut(packet.from, packet.to)) {
      this.drop(seq, packet, 'partition');
      return;
    }
    const receive = this.listeners.get(packet.to);
    if (receive === undefined) {
      this.drop(seq, packet, 'unreachable');
      if (packet.kind === 'request') {
        this.transmit({
          kind: 'failure',
          from: packet.to,
          to: packet.from,
          id: packet.id,
          frame: Uint8Array.of(SIM_FAILURE.notListening),
        });
      }
      return;
    }
    this.counters.delivered[packet.kind]++;
    this.emit('deliver', seq, packet);
    receive(packet);
  }

  private drop(seq: number, packet: SimPacket, reason: SimDropReason): void {
    this.counters.dropped[packet.kind]++;
    this.counters.dropReasons[reason]++;
    this.emit('drop', seq, packet, reason);
  }

  private emit(type: SimTraceEvent['type'], seq: number, packet: SimPacket, reason?: SimDropReason): void {
    if (this.trace === undefined) return;
    const event: SimTraceEvent = {
      at: this.clock.now(),
      type,
      packet: seq,
      kind: packet.kind,
      from: packet.from,
      to: packet.to,
      id: packet.id,
      bytes: packet.frame.length,
      hash: fnv1a(packet.frame),
      ...(reason === undefined ? {} : { reason }),
    };
    this.trace(event);
  }
}

function linkKey(from: string, to: string): string {
  return `${from} ${to}`;
}

function fnv1a(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193);
  return hash >>> 0;
}
