import type { MembershipBounds } from '../contracts/membership.js';
import type { PluginRegistry } from '../kernel/registry.js';
import type { MembershipSimulation } from '../plugin.js';
import { SimCluster } from './cluster.js';
import type { SimNodeSpec } from './cluster.js';
import { SIM_DEFAULT_FRAME_LIMITS } from './frame-profiles.js';
import type { LinkProfile } from './link-profile.js';
import type { SimTransportOptions } from './sim-transport.js';

/**
 * What to simulate. `crashes`, `transport`, `configure` and `essential`, when
 * left out, come from the plugin manifest's `simulation` hint (roles, per-node
 * options, essential members, whether it detects failures, frame limits), so a
 * strategy runs as it is deployed without the caller knowing it.
 */
export interface MembershipSimOptions {
  /** Holds the membership plugin and the codec the nodes use. */
  readonly registry: PluginRegistry;
  /** Membership plugin name. */
  readonly plugin: string;
  /** Its options on every node. */
  readonly options?: Record<string, unknown>;
  /** Cluster size N. */
  readonly nodes: number;
  /** Packet loss (0..1) on every link during the measured run (the cluster converges without loss first). Default 0. */
  readonly loss?: number;
  /** Seed of every random draw; the same seed replays the same run. Default 1. */
  readonly seed?: number;
  /** Length of the measured run in protocol periods (longer when the crashes need it). Default 100. */
  readonly periods?: number;
  /**
   * Members crashed (no goodbye) one after another during the run. Default
   * min(10, N / 4), at least 1 when N >= 3; 0 when the hint says the plugin detects no failure.
   */
  readonly crashes?: number;
  /** Codec plugin of every node. Default: the config default. */
  readonly codec?: string;
  /** Frame limits of every endpoint. Default: the hint's, else SIM_DEFAULT_FRAME_LIMITS (1192-byte one-way messages, 64 KiB requests). */
  readonly transport?: SimTransportOptions;
  /** Link profile (latency...) of every link. Default LINK_PROFILES.lan. */
  readonly link?: Partial<LinkProfile>;
  /** Extra raw config sections per node (a role, a configured view), as in the conformance suite. Default: from the hint. */
  readonly configure?: (spec: SimNodeSpec, all: readonly SimNodeSpec[]) => Record<string, unknown>;
  /** Transport URIs every node joins through. Default: the first node's. */
  readonly seeds?: (all: readonly SimNodeSpec[]) => readonly string[];
  /** Nodes never crashed (one that keeps the list). Default: the hint's `essential`. */
  readonly essential?: (spec: SimNodeSpec, all: readonly SimNodeSpec[]) => boolean;
  /** Nodes that appear in member lists. Default: all. */
  readonly listed?: (spec: SimNodeSpec) => boolean;
  /** Longest virtual time to converge before the run. Default 300 protocol periods. */
  readonly convergeLimitMs?: number;
}

/** When the members noticed one crash, in ms after it; null for what nobody had done when the run ended. */
export interface CrashTiming {
  /** The crashed member's id. */
  readonly member: string;
  /** Virtual ms from the start of the measured run to the crash. */
  readonly crashedAtMs: number;
  /**
   * Until the first live member held it suspect, or dead for a strategy
   * with no suspect state: the first detection of the SWIM paper (section
   * 3.1). A suspicion that began before the crash (under loss) is not
   * counted; the first one after it is.
   */
  readonly firstSuspicionMs: number | null;
  /** Until the first live member held it dead. */
  readonly firstDeathMs: number | null;
  /** Until every live member held it dead (the figure of `detections`). */
  readonly everyoneMs: number | null;
}

/** The figures of one run; plain JSON (no Infinity, no NaN: `null` where a figure does not exist). */
export interface MembershipSimResult {
  readonly plugin: string;
  readonly nodes: number;
  readonly loss: number;
  readonly seed: number;
  /** Measured run length in protocol periods. */
  readonly periods: number;
  readonly crashes: number;
  readonly protocolPeriodMs: number;
  /** The plugin's suspicion timeout at this N, or null when it has none. */
  readonly suspicionTimeoutMs: number | null;
  /** `bounds.detectionMs` the plugin declares at this N. */
  readonly detectionBoundMs: number;
  /** `bounds.toleratedLoss` the plugin declares. */
  readonly toleratedLoss: number;
  /** Percentiles (nearest rank) of the time from a crash until every live member sees the member dead. */
  readonly detectionMsP50: number | null;
  readonly detectionMsP99: number | null;
  readonly detectionMsMax: number | null;
  /** Every detection time, sorted. */
  readonly detections: readonly number[];
  /** Every crash in the order they happened, with when it was first suspected, first held dead and held dead by all. */
  readonly crashTimings: readonly CrashTiming[];
  /** Mean of `firstSuspicionMs` over the crashes somebody suspected, in protocol periods (3 decimals); null for none. */
  readonly firstSuspicionPeriodsMean: number | null;
  /** Largest `firstSuspicionMs`; null for none. */
  readonly firstSuspicionMsMax: number | null;
  /** Mean of `firstDeathMs` over the crashes somebody held dead, in protocol periods (3 decimals); null for none. */
  readonly firstDeathPeriodsMean: number | null;
  /** Crashes that some live member had not seen dead when the run ended. */
  readonly undetected: number;
  /** Times a live member was declared dead (or left): distinct (member, incarnation) pairs. */
  readonly falsePositives: number;
  /** The same counted per observer: how many member lists showed a live member dead. */
  readonly falsePositiveEvents: number;
  /** Packets sent (requests, responses, one-way messages) per live member per protocol period during the run. */
  readonly messagesPerMemberPerPeriod: number;
  /** Largest one-way message (frame bytes) sent during the whole simulation, join included. */
  readonly largestMessageBytes: number;
  /** Largest request or response frame sent during the whole simulation. */
  readonly largestFrameBytes: number;
  /** Virtual ms from start until every member saw every other alive. */
  readonly convergeMs: number;
  /** Virtual ms of the measured run. */
  readonly virtualMs: number;
  /** Wall-clock ms of the whole simulation. */
  readonly wallMs: number;
}

const DEFAULT_PERIODS = 100;
const DEFAULT_CONVERGE_PERIODS = 300;

interface PendingCrash {
  readonly victim: string;
  readonly crashedAt: number;
  readonly seen: Set<string>;
  detectedAfter: number | undefined;
  firstSuspicionAfter: number | undefined;
  firstDeathAfter: number | undefined;
}

/** The value at percentile `p` (0..100) of sorted `values`, nearest rank; null for none. */
function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/**
 * Runs a membership plugin on N simulated nodes and measures it: start and
 * join through the seeds, converge without loss, then for `periods`
 * protocol periods at `loss` packet loss crash `crashes` members one after
 * another and record how long until the first live member suspects each,
 * the first holds it dead and every live member sees it dead, how
 * often a live member is declared dead, and how many packets the protocol
 * sends. Everything runs on virtual time from one seed, so a run replays
 * exactly. This backs `kvmesh sim membership`.
 * @throws Error naming the seed when the cluster does not converge.
 */
export async function simulateMembership(options: MembershipSimOptions): Promise<MembershipSimResult> {
  const wallStart = performance.now();
  const seed = options.seed ?? 1;
  const loss = options.loss ?? 0;
  const hinted = withHint(options);
  const essential = hinted.essential ?? (() => false);
  const listed = options.listed ?? (() => true);
  const largest = { message: 0, frame: 0 };
  const cluster = await SimCluster.create({
    trace: (event) => {
      if (event.type !== 'send') return;
      if (event.kind === 'message') largest.message = Math.max(largest.message, event.bytes);
      else largest.frame = Math.max(largest.frame, event.bytes);
    },
    registry: options.registry,
    nodes: options.nodes,
    seed,
    transport: hinted.transport ?? SIM_DEFAULT_FRAME_LIMITS,
    ...(options.link ? { link: options.link } : {}),
    config: (spec, all) => {
      const extra = hinted.configure?.(spec, all) ?? {};
      return {
        ...(options.codec ? { codec: { name: options.codec } } : {}),
        membership: { name: options.plugin, options: options.options ?? {} },
        ...extra,
        node: { ...(extra['node'] as object | undefined) },
      };
    },
  });
  try {
    return await run(cluster, hinted, { seed, loss, essential, listed, wallStart, largest });
  } finally {
    await cluster.dispose();
  }
}

async function run(
  cluster: SimCluster,
  options: MembershipSimOptions,
  context: {
    seed: number;
    loss: number;
    essential: (spec: SimNodeSpec, all: readonly SimNodeSpec[]) => boolean;
    listed: (spec: SimNodeSpec) => boolean;
    wallStart: number;
    largest: { readonly message: number; readonly frame: number };
  },
): Promise<MembershipSimResult> {
  const { seed, loss, essential, listed } = context;
  const { clock } = cluster;
  const listedIds = new Set(cluster.specs.filter(listed).map((s) => s.id));
  // Each observer's count of other listed members it sees alive, kept from events (polling N lists would be O(N^2)).
  const aliveSeen = new Map<string, Set<string>>(cluster.ids.map((id) => [id, new Set<string>()]));
  const pending = new Map<string, PendingCrash>();
  const detections: number[] = [];
  const falseEpisodes = new Set<string>();
  let falsePositiveEvents = 0;
  let measuring = false;

  let running = cluster.size;
  const checkDetected = (crash: PendingCrash): void => {
    if (crash.detectedAfter !== undefined || crash.seen.size < running) return;
    if (cluster.runningIds().every((id) => crash.seen.has(id))) {
      crash.detectedAfter = clock.now() - crash.crashedAt;
      detections.push(crash.detectedAfter);
    }
  };

  cluster.watch((observer, { member }) => {
    if (member.id !== observer.id && listedIds.has(member.id)) {
      const seen = aliveSeen.get(observer.id)!;
      if (member.state === 'alive') seen.add(member.id);
      else seen.delete(member.id);
    }
    if (!measuring) return;
    const crash = pending.get(member.id);
    if (crash !== undefined && cluster.isRunning(observer.id)) {
      const after = clock.now() - crash.crashedAt;
      if (member.state === 'suspect' || member.state === 'dead') crash.firstSuspicionAfter ??= after;
      if (member.state === 'dead') crash.firstDeathAfter ??= after;
    }
    if (member.state !== 'dead' && member.state !== 'left') return;
    if (crash !== undefined) {
      if (member.state === 'dead' && cluster.isRunning(observer.id)) {
        crash.seen.add(observer.id);
        checkDetected(crash);
      }
    } else if (cluster.isRunning(member.id)) {
      falsePositiveEvents++;
      falseEpisodes.add(`${member.id}@${member.incarnation}`);
    }
  });

  const convergeStart = clock.now();
  await cluster.start();
  await cluster.join(undefined, options.seeds?.(cluster.specs) ?? [cluster.specs[0]!.address]);
  const bounds: MembershipBounds = cluster.membership(cluster.ids[0]!).bounds;
  const period = bounds.periodMs;
  const converged = (): boolean =>
    cluster.runningIds().every((id) => aliveSeen.get(id)!.size === listedIds.size - (listedIds.has(id) ? 1 : 0));
  try {
    await cluster.waitFor(converged, options.convergeLimitMs ?? DEFAULT_CONVERGE_PERIODS * period, period);
  } catch (err) {
    throw new Error(
      `${options.plugin} at N = ${options.nodes} did not converge (seed ${seed}): ${(err as Error).message}`,
      { cause: err },
    );
  }
  const convergeMs = clock.now() - convergeStart;

  const measured = cluster.membership(cluster.ids[0]!).bounds;
  const candidates = cluster.specs.filter((s) => !essential(s, cluster.specs) && listed(s));
  const crashes = Math.min(
    options.crashes ?? (options.nodes >= 3 ? Math.max(1, Math.min(10, Math.floor(options.nodes / 4))) : 0),
    Math.max(0, candidates.length - 2),
  );
  const victims = cluster.random.shuffle(candidates).slice(0, crashes);
  const periods = options.periods ?? DEFAULT_PERIODS;
  // Crashes spread over the first half of the run, so the last has time to be detected.
  const spacing = Math.max(period, Math.floor((periods * period) / Math.max(1, 2 * crashes)));
  // Without crashes the detection bound does not matter (it is Infinity for a strategy without failure detection).
  const runMs = Math.max(periods * period, crashes > 0 ? crashes * spacing + measured.detectionMs : 0);

  cluster.network.setDefaults({ loss });
  cluster.network.resetStats();
  measuring = true;
  const runStart = clock.now();
  let memberMs = 0;
  let last = runStart;
  const account = (): void => {
    memberMs += cluster.runningIds().length * (clock.now() - last);
    last = clock.now();
  };
  for (let i = 0; i < victims.length; i++) {
    await cluster.advance(runStart + (i + 1) * spacing - clock.now());
    account();
    const victim = victims[i]!.id;
    pending.set(victim, {
      victim,
      crashedAt: clock.now(),
      seen: new Set(),
      detectedAfter: undefined,
      firstSuspicionAfter: undefined,
      firstDeathAfter: undefined,
    });
    await cluster.crash(victim);
    running = cluster.runningIds().length;
    for (const crash of pending.values()) checkDetected(crash);
  }
  await cluster.advance(Math.max(0, runStart + runMs - clock.now()));
  account();
  measuring = false;

  const stats = cluster.network.stats();
  const packets = stats.sent.request + stats.sent.response + stats.sent.message + stats.sent.failure;
  detections.sort((a, b) => a - b);
  const crashTimings: CrashTiming[] = [...pending.values()].map((crash) => ({
    member: crash.victim,
    crashedAtMs: crash.crashedAt - runStart,
    firstSuspicionMs: crash.firstSuspicionAfter ?? null,
    firstDeathMs: crash.firstDeathAfter ?? null,
    everyoneMs: crash.detectedAfter ?? null,
  }));
  const firstSuspicions = crashTimings.flatMap((c) => (c.firstSuspicionMs === null ? [] : [c.firstSuspicionMs]));
  const firstDeaths = crashTimings.flatMap((c) => (c.firstDeathMs === null ? [] : [c.firstDeathMs]));
  return {
    plugin: options.plugin,
    nodes: options.nodes,
    loss,
    seed,
    periods: Math.round(runMs / period),
    crashes: victims.length,
    protocolPeriodMs: period,
    suspicionTimeoutMs: measured.suspicionTimeoutMs ?? null,
    detectionBoundMs: measured.detectionMs,
    toleratedLoss: measured.toleratedLoss,
    detectionMsP50: percentile(detections, 50),
    detectionMsP99: percentile(detections, 99),
    detectionMsMax: detections.length > 0 ? detections[detections.length - 1]! : null,
    detections,
    crashTimings,
    firstSuspicionPeriodsMean: meanPeriods(firstSuspicions, period),
    firstSuspicionMsMax: firstSuspicions.length > 0 ? Math.max(...firstSuspicions) : null,
    firstDeathPeriodsMean: meanPeriods(firstDeaths, period),
    undetected: victims.length - detections.length,
    falsePositives: falseEpisodes.size,
    falsePositiveEvents,
    messagesPerMemberPerPeriod: memberMs > 0 ? round(packets / (memberMs / period), 3) : 0,
    largestMessageBytes: context.largest.message,
    largestFrameBytes: context.largest.frame,
    convergeMs,
    virtualMs: runMs,
    wallMs: Math.round(performance.now() - context.wallStart),
  };
}

/** `options` with what it leaves out filled from the plugin manifest's `simulation` hint. */
function withHint(options: MembershipSimOptions): MembershipSimOptions {
  const registry = options.registry;
  // An unknown name is left for config validation to report, with the names that exist.
  const hint: MembershipSimulation | undefined = registry.has('membership', options.plugin)
    ? (registry.get('membership', options.plugin).simulation as MembershipSimulation | undefined)
    : undefined;
  if (hint === undefined) return options;
  const { role, options: optionsFor, essential } = hint;
  const given = options.options ?? {};
  const configure =
    role || optionsFor
      ? (spec: SimNodeSpec, all: readonly SimNodeSpec[]): Record<string, unknown> => ({
          ...(role ? { node: { role: role(spec, all) } } : {}),
          ...(optionsFor ? { membership: { name: options.plugin, options: optionsFor(spec, all, given) } } : {}),
        })
      : undefined;
  return {
    ...options,
    ...(options.configure === undefined && configure ? { configure } : {}),
    ...(options.essential === undefined && essential ? { essential } : {}),
    ...(options.crashes === undefined && hint.detectsFailures === false ? { crashes: 0 } : {}),
    ...(options.transport === undefined && hint.frameLimits ? { transport: { ...hint.frameLimits } } : {}),
  };
}

/** Mean of `values` (ms) in periods of `periodMs`, 3 decimals; null for none. */
function meanPeriods(values: readonly number[], periodMs: number): number | null {
  if (values.length === 0) return null;
  return round(values.reduce((a, b) => a + b, 0) / values.length / periodMs, 3);
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
