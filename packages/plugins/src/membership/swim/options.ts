import type { JsonSchema } from '@kvmesh/core';

export interface SwimOptions {
  /** Protocol period: one member probed per period. */
  readonly probeIntervalMs: number;
  /** How long a direct ping waits for its ack before indirect probes start. */
  readonly probeTimeoutMs: number;
  /** Members asked to probe a target that missed its direct ack (k in the paper). */
  readonly indirectProbes: number;
  /** Each update is piggybacked retransmitMult * ceil(log10(N + 1)) times (lambda log N). */
  readonly retransmitMult: number;
  /** Suspicion timeout = suspicionMult * max(1, log10(N)) * probeIntervalMs. */
  readonly suspicionMult: number;
  /** Lifeguard: a suspicion without confirmations lasts this many times the suspicion timeout. */
  readonly suspicionMaxTimeoutMult: number;
  /** Lifeguard: the local health multiplier stretches probe periods up to this factor. */
  readonly awarenessMaxMultiplier: number;
  /** Lifeguard's local health awareness, suspicion confirmations and nacks. */
  readonly lifeguard: boolean;
  /**
   * Every this many protocol periods (period index mod this = 0, on the
   * clock) every member probes its successor on one ring shared by all,
   * instead of its round-robin order; 0 turns scheduled rounds off.
   */
  readonly scheduledRoundEvery: number;
  /** Largest probe datagram; the transport's own limit applies too. */
  readonly maxMessageBytes: number;
  /** Period of the anti-entropy exchange with one random member; 0 turns it off. */
  readonly pushPullIntervalMs: number;
  /** How long dead and left members stay listed before they are forgotten. */
  readonly deadRetentionMs: number;
}

/**
 * Defaults from hashicorp/memberlist's DefaultLANConfig where it has the
 * option (ProbeInterval 1 s, ProbeTimeout 500 ms, IndirectChecks 3,
 * RetransmitMult 4, SuspicionMult 4, SuspicionMaxTimeoutMult 6,
 * AwarenessMaxMultiplier 8, PushPullInterval 30 s). scheduledRoundEvery is
 * kvmesh's own (schedule.ts); 4 bounds the wait for the first ping of a
 * crashed member to 4 periods while keeping its mean, counted as the paper
 * counts, within 11 % of e/(e-1) (docs/membership.md).
 */
export const SWIM_DEFAULTS: SwimOptions = Object.freeze({
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectProbes: 3,
  retransmitMult: 4,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  awarenessMaxMultiplier: 8,
  lifeguard: true,
  scheduledRoundEvery: 4,
  maxMessageBytes: 1192,
  pushPullIntervalMs: 30_000,
  deadRetentionMs: 300_000,
});

const integer = (minimum: number, key: keyof SwimOptions, description: string): JsonSchema => ({
  type: 'integer',
  minimum,
  default: SWIM_DEFAULTS[key],
  description,
});

export const SWIM_OPTIONS_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    probeIntervalMs: integer(
      10,
      'probeIntervalMs',
      'Protocol period in ms: each member probes one other per period, in randomized round-robin order (memberlist ProbeInterval).',
    ),
    probeTimeoutMs: integer(
      1,
      'probeTimeoutMs',
      'How long a direct ping waits for its ack before asking others to probe, in ms; below probeIntervalMs (memberlist ProbeTimeout).',
    ),
    indirectProbes: integer(
      0,
      'indirectProbes',
      'Members asked to ping a target that missed its direct ack (k of the SWIM paper, memberlist IndirectChecks).',
    ),
    retransmitMult: integer(
      1,
      'retransmitMult',
      'Each membership update is piggybacked retransmitMult * ceil(log10(N + 1)) times (memberlist RetransmitMult).',
    ),
    suspicionMult: integer(
      1,
      'suspicionMult',
      'A suspect is declared dead after suspicionMult * max(1, log10(N)) protocol periods unless it refutes (memberlist SuspicionMult).',
    ),
    suspicionMaxTimeoutMult: integer(
      1,
      'suspicionMaxTimeoutMult',
      'Lifeguard: a suspicion nobody else confirms lasts up to this many suspicion timeouts; confirmations shorten it (memberlist SuspicionMaxTimeoutMult).',
    ),
    awarenessMaxMultiplier: integer(
      1,
      'awarenessMaxMultiplier',
      'Lifeguard: a member that misses acks and nacks stretches its probe period up to this factor (memberlist AwarenessMaxMultiplier).',
    ),
    lifeguard: {
      type: 'boolean',
      default: SWIM_DEFAULTS.lifeguard,
      description:
        'Lifeguard (Dadgar et al. 2018): local health multiplier, nacks from indirect probes, and suspicion timeouts that shrink with independent confirmations. false gives plain SWIM.',
    },
    scheduledRoundEvery: integer(
      0,
      'scheduledRoundEvery',
      'Every this many protocol periods (counted on the clock: period index mod this = 0) is a scheduled round: each member probes its successor on a ring of the live members that every member derives alike from its list and the period index, so while lists and clocks agree every member is probed at least once every this many periods (the wait for the first ping of a crashed member is bounded); the other rounds follow the randomized round-robin order. Same message count. 0: every round is round-robin, SWIM as published.',
    ),
    maxMessageBytes: integer(
      64,
      'maxMessageBytes',
      'Largest probe message in bytes, frame header included; piggybacked updates are cut to fit. The transport limit applies too (udp: 1192).',
    ),
    pushPullIntervalMs: integer(
      0,
      'pushPullIntervalMs',
      'Every this many ms, exchange one page of member state with a random member (anti-entropy); 0 turns it off (memberlist PushPullInterval).',
    ),
    deadRetentionMs: integer(
      0,
      'deadRetentionMs',
      'How long dead and left members stay in the member list before they are forgotten, in ms.',
    ),
  },
};
