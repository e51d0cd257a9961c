import { KvError, type JsonSchema } from '@kvmesh/core';
import { quorumProblems, quorumSchema, type QuorumOption } from '../support/quorum.js';
import { METRIC_NAMES, type MetricName } from './metric.js';

export interface ChordOptions {
  readonly metric: MetricName;
  /** This node's position; '' derives it from the node id. */
  readonly identifier: string;
  readonly successors: number;
  readonly backups: number;
  readonly heartbeatMs: number;
  readonly requestTimeoutMs: number;
  readonly writeQuorum: QuorumOption;
  readonly readQuorum: QuorumOption;
  readonly seeds: readonly string[];
  readonly routeCacheSize: number;
}

export const CHORD_DEFAULTS = Object.freeze({
  metric: 'md5',
  identifier: '',
  // Chord's r: the paper's experiments keep 2·log2 N; 8 survives 20% of nodes failing at once with
  // probability 1 - 0.2^8 per node.
  successors: 8,
  // The seed keeps one backup at the successor; two keep every acknowledged write through one crash
  // plus one more before the count is restored.
  backups: 2,
  // dyschord's `heartbeat`: how often the mesh is checked.
  heartbeatMs: 1000,
  requestTimeoutMs: 1000,
  writeQuorum: 'majority',
  readQuorum: 'majority',
  seeds: [] as string[],
  routeCacheSize: 256,
} satisfies ChordOptions);

export const CHORD_OPTIONS_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    metric: {
      enum: [...METRIC_NAMES],
      default: CHORD_DEFAULTS.metric,
      description:
        'Identifier metric (dyschord): md5 places keys and nodes by the MD5 of their name on a 128-bit circle; trivial places integer keys at their value mod 16 and nodes at the integer their id ends with, a 16-place circle for debugging by hand. A node refuses to join a ring of another metric.',
    },
    identifier: {
      type: 'string',
      default: CHORD_DEFAULTS.identifier,
      description:
        "This node's position on the circle: a hex number below 2^128 (md5) or an integer 0..15 (trivial). Empty: the metric of the node id.",
    },
    successors: {
      type: 'integer',
      minimum: 2,
      maximum: 64,
      default: CHORD_DEFAULTS.successors,
      description:
        'Length of the successor list (Chord r): how many failures in a row the ring survives. At least backups + 1.',
    },
    backups: {
      type: 'integer',
      minimum: 0,
      maximum: 16,
      default: CHORD_DEFAULTS.backups,
      description:
        "Copies of each key on the successors after its owner (the key's successor), so a key has backups + 1 replicas. dyschord keeps 1.",
    },
    heartbeatMs: {
      type: 'integer',
      minimum: 10,
      default: CHORD_DEFAULTS.heartbeatMs,
      description:
        'Every this many ms a node stabilizes with its successor (notify), checks its predecessor and refreshes one finger.',
    },
    requestTimeoutMs: {
      type: 'integer',
      minimum: 1,
      default: CHORD_DEFAULTS.requestTimeoutMs,
      description:
        'Deadline of one chord request (a lookup step, stabilize, a predecessor check); a node that does not answer in time counts as failed.',
    },
    writeQuorum: quorumSchema(CHORD_DEFAULTS.writeQuorum, 'Replica acknowledgements a write needs.'),
    readQuorum: quorumSchema(CHORD_DEFAULTS.readQuorum, 'Replicas a read consults.'),
    seeds: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      default: CHORD_DEFAULTS.seeds,
      description:
        "Nodes to join the ring through (host:port or transport URIs). Empty: the config's join list. A node with no seed but itself starts a new ring; the first node listed starts one when no other seed answers.",
    },
    routeCacheSize: {
      type: 'integer',
      minimum: 0,
      default: CHORD_DEFAULTS.routeCacheSize,
      description:
        'Arcs whose replicas a node remembers from its lookups, so repeated keys skip the routing; an entry is dropped when a replica refuses (NOT_OWNER), when one of its replicas is found failed, and after 3 heartbeats. 0 disables it.',
    },
  },
};

/** @throws KvError KVMESH_ERR_CONFIG_INVALID when the options contradict each other. */
export function checkChordOptions(options: ChordOptions): void {
  const problems = [
    ...(options.successors < options.backups + 1
      ? [`successors (${options.successors}) must be at least backups + 1 (${options.backups + 1})`]
      : []),
    ...quorumProblems('writeQuorum', options.writeQuorum, options.backups + 1),
    ...quorumProblems('readQuorum', options.readQuorum, options.backups + 1),
  ];
  if (problems.length > 0) {
    throw new KvError('KVMESH_ERR_CONFIG_INVALID', `placement 'chord': ${problems.join('; ')}`);
  }
}
