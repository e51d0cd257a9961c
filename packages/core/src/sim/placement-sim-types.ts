import type { Logger } from '../contracts/logger.js';
import type { PluginRegistry } from '../kernel/registry.js';
import type { LinkProfile } from './link-profile.js';
import type { PlacementCodecFigures } from './placement-codec.js';
import type { SimTransportOptions } from './sim-transport.js';

/**
 * What to simulate: N instances of a placement plugin that finds its peers
 * itself (a routed placement), each with only the components it needs, on
 * one simulated network, virtual clock and seed.
 */
export interface PlacementSimOptions {
  /** Holds the placement plugin and the codecs. */
  readonly registry: PluginRegistry;
  /** Placement plugin name. */
  readonly plugin: string;
  /** Its options on every node (the manifest's `simulation.options` adds per-node ones, such as whom to join through). */
  readonly options?: Record<string, unknown>;
  /** Nodes N. */
  readonly nodes: number;
  /** Seed of every random draw; the same seed replays the same run. Default 1. */
  readonly seed?: number;
  /** Fraction of the nodes (0..1) that fail at once after the steady-state measurement. Default 0: none. */
  readonly churn?: number;
  /** Lookups per measurement (steady state, right after the failures, after the repair). Default 2000. */
  readonly lookups?: number;
  /** Lookups per progress sample while the nodes settle or repair. Default 200. */
  readonly probeLookups?: number;
  /** Keys whose copies are followed through the failures (churn runs only). Default 1000. */
  readonly keys?: number;
  /** Codec plugin of every node. Default: protobuf when registered, else the config default. */
  readonly codec?: string;
  /**
   * Every message through the codec. Default false: each type's first
   * messages and a sample after go through it, checked, and the others travel
   * in canonical form (PlacementCodec). Always true on a link that duplicates.
   */
  readonly everyMessageThroughCodec?: boolean;
  /** Profile of every link. Default LINK_PROFILES.lan (1-5 ms, no loss). */
  readonly link?: Partial<LinkProfile>;
  /** Frame limits of every endpoint. Default: the simulated transport's (16 MiB requests). */
  readonly transport?: SimTransportOptions;
  /** Longest settling, and longest repair, in maintenance periods. Default 40 + 4·log2 N. */
  readonly maxPeriods?: number;
  /** Logger of every node. Default: silent. */
  readonly logger?: Logger;
}

/** Lookup figures of one measurement. */
export interface LookupFigures {
  readonly lookups: number;
  /** Lookups whose named primary, asked `admit(key, 'read')`, answered own. */
  readonly successRate: number;
  /** Routing hops (`ReplicaSet.hops`) of the successful lookups. */
  readonly hopsMean: number;
  readonly hopsP50: number;
  readonly hopsP99: number;
  readonly hopsMax: number;
  /** Network packets (requests, responses, one-way messages) the lookups themselves sent, per lookup. */
  readonly messagesPerLookup: number;
}

/** What a churn run adds: the failures, their effect and the repair. */
export interface ChurnFigures {
  /** Nodes that failed at once (no goodbye). */
  readonly nodesFailed: number;
  /** Fraction of lookups that failed right after the failures, before any repair. */
  readonly lookupsFailedAfterCrash: number;
  /** Virtual ms from the failures until a whole probe of lookups succeeded again; null when it never did. */
  readonly repairMs: number | null;
  /** The lookups after the repair. */
  readonly afterRepair: LookupFigures;
  /**
   * Keys followed: each written, before the failures, to the replicas its
   * primary names that admit it, and acknowledged (a write quorum of them).
   */
  readonly keys: number;
  /** Keys none of whose copies survived (every holder failed before handing it on). */
  readonly keysLost: number;
  /**
   * Keys all of whose replicas were among the failed nodes: lost whatever the
   * placement does. `keysLost` above this counts keys the placement lost.
   */
  readonly keysWithEveryReplicaFailed: number;
  /**
   * Keys, not lost, whose current replicas (as the key's primary names them,
   * where writes and repairs run) do not all hold a copy when the run ends.
   */
  readonly keysUnderReplicated: number;
  /** Virtual ms from the failures until every surviving key was on all its current replicas; null when it never was. */
  readonly replicationRepairMs: number | null;
}

/** The figures of one run; plain JSON. */
export interface PlacementSimResult extends LookupFigures {
  readonly plugin: string;
  readonly nodes: number;
  readonly seed: number;
  readonly churn: number;
  /** The plugin's maintenance period (manifest hint). */
  readonly periodMs: number;
  /** Virtual ms from the first start until the nodes settled (every probe lookup succeeds and hops stopped falling). */
  readonly settleMs: number;
  /** Only for churn runs. */
  readonly failure: ChurnFigures | null;
  /** Virtual ms of the whole run. */
  readonly virtualMs: number;
  /** Wall-clock ms of the whole run. */
  readonly wallMs: number;
  /** CPU ms (user + system) of the process during the run. */
  readonly cpuMs: number;
  /** How the messages travelled: through the configured codec, or in canonical form. */
  readonly codec: PlacementCodecFigures;
}
