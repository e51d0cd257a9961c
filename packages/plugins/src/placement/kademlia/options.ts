import type { JsonSchema } from '@kvmesh/core';
import { quorumSchema } from '../support/quorum.js';
import type { QuorumOption } from '../support/quorum.js';

/** k = 20 and alpha = 3: the paper's system-wide parameters (Maymounkov & Mazières §2.2, §2.3). */
export const DEFAULT_K = 20;
export const DEFAULT_ALPHA = 3;
/** KeyShift freezes a shifting key for 5 seconds (seed 000, "Function"). */
export const DEFAULT_FREEZE_MS = 5_000;
/** The paper refreshes buckets and republishes every hour, and expires values after 24 hours (§2.3, §2.5). */
export const DEFAULT_REFRESH_INTERVAL_MS = 3_600_000;
export const DEFAULT_REPUBLISH_INTERVAL_MS = 3_600_000;
export const DEFAULT_EXPIRY_MS = 86_400_000;

export interface MulticastOptions {
  readonly enabled: boolean;
  readonly group: string;
  readonly port: number;
  readonly interface: string;
  readonly ttl: number;
  readonly intervalMs: number;
  readonly cluster: string;
  readonly loopback: boolean;
}

export interface KademliaOptions {
  readonly mode: 'shift' | 'replicate';
  readonly k: number;
  readonly alpha: number;
  readonly replicas: number;
  readonly writeQuorum: QuorumOption;
  readonly readQuorum: QuorumOption;
  readonly seeds: readonly string[] | string;
  readonly freezeMs: number;
  readonly shiftAfterAccesses: number;
  readonly forwardTtlMs: number;
  readonly forwardMaxKeys: number;
  readonly requestTimeoutMs: number;
  readonly bootstrapRetryMs: number;
  readonly refreshIntervalMs: number;
  readonly republishIntervalMs: number;
  readonly expiryMs: number;
  readonly persistOwnership: boolean;
  readonly multicast: MulticastOptions;
}

const positive = (defaultValue: number, description: string, minimum = 1): JsonSchema => ({
  type: 'integer',
  minimum,
  default: defaultValue,
  description,
});

export const MULTICAST_DEFAULTS: MulticastOptions = {
  enabled: false,
  group: '239.255.77.77',
  port: 7799,
  interface: '',
  ttl: 1,
  intervalMs: 5_000,
  cluster: 'kvmesh',
  loopback: true,
};

export const KADEMLIA_OPTIONS_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    mode: {
      enum: ['shift', 'replicate'],
      default: 'shift',
      description:
        'shift (KeyShift): every key has one owner, the node that used it last; the DHT holds an entry per key naming the owner, and a node that reads or writes a key another node owns takes it over (freeze, copy, publish, release). replicate: a classic DHT: a key lives on the `replicas` closest live nodes by XOR distance.',
    },
    k: positive(
      DEFAULT_K,
      'Bucket size and replication parameter: contacts per k-bucket, and the nodes that hold each ownership entry.',
    ),
    alpha: positive(DEFAULT_ALPHA, 'Parallel requests per round of an iterative lookup.'),
    replicas: positive(
      DEFAULT_K,
      'Mode replicate: copies of each KV record, on the closest live nodes to the key (at most k; the classic DHT stores on all k).',
    ),
    writeQuorum: quorumSchema('majority', 'Mode replicate: replica acknowledgements a write needs.'),
    readQuorum: quorumSchema('majority', 'Mode replicate: replicas a read consults.'),
    seeds: {
      oneOf: [{ type: 'array', items: { type: 'string' } }, { type: 'string' }],
      default: [],
      description:
        'Nodes to bootstrap through: host:port (reached with this node\'s transport scheme) or transport URIs, as a list or one comma-separated string (e.g. "${KVMESH_SEEDS:-}"). This node\'s own address is skipped.',
    },
    freezeMs: positive(
      DEFAULT_FREEZE_MS,
      'Mode shift: how long an owner keeps a key frozen for the node taking it over; past it the owner keeps the key (the taker died or stalled).',
    ),
    shiftAfterAccesses: positive(
      1,
      'Mode shift: accesses in a row from the same node (no other node accessing the key in between) after which the key moves there; before that the node uses it at its owner. 1 moves a key on its first access.',
    ),
    forwardTtlMs: positive(
      60_000,
      'Mode shift: how long an old owner forwards requests for a key it gave up to its new owner.',
    ),
    forwardMaxKeys: positive(100_000, 'Mode shift: forward pointers kept at most (least recently used dropped first).'),
    requestTimeoutMs: positive(1_000, 'Deadline of one PING, FIND_NODE, FIND_VALUE or STORE request.'),
    bootstrapRetryMs: positive(
      1_000,
      'While no seed has answered (and no other node is known), try the seeds again after this long.',
    ),
    refreshIntervalMs: positive(
      DEFAULT_REFRESH_INTERVAL_MS,
      'A bucket no lookup went through for this long is refreshed with a lookup of a random id in its range.',
    ),
    republishIntervalMs: positive(
      DEFAULT_REPUBLISH_INTERVAL_MS,
      'Mode shift: owners publish their entries again, and holders the entries no STORE refreshed, this often.',
    ),
    expiryMs: positive(
      DEFAULT_EXPIRY_MS,
      'Mode shift: a held entry expires this long after its owner last published it. Keep it well above republishIntervalMs.',
    ),
    persistOwnership: {
      type: 'boolean',
      default: true,
      description:
        'Mode shift: keep the keys this node owns, and those it gave up, in a journal in the data directory, so a restarted node still answers for them.',
    },
    multicast: {
      type: 'object',
      additionalProperties: false,
      default: MULTICAST_DEFAULTS,
      description:
        'UDP multicast discovery on the local network: announce this node on a group and bootstrap from the nodes that answer.',
      properties: {
        enabled: { type: 'boolean', default: false, description: 'Announce and listen on the group.' },
        group: { type: 'string', default: MULTICAST_DEFAULTS.group, description: 'IPv4 multicast group address.' },
        port: {
          type: 'integer',
          minimum: 1,
          maximum: 65535,
          default: MULTICAST_DEFAULTS.port,
          description: 'UDP port of the group.',
        },
        interface: {
          type: 'string',
          default: '',
          description: "Address of the local interface to join and send on; empty: this node's own host.",
        },
        ttl: {
          type: 'integer',
          minimum: 0,
          maximum: 255,
          default: 1,
          description: 'Multicast TTL (1: this network only).',
        },
        intervalMs: positive(
          MULTICAST_DEFAULTS.intervalMs,
          'How often to announce while fewer than k contacts are known.',
        ),
        cluster: {
          type: 'string',
          minLength: 1,
          default: MULTICAST_DEFAULTS.cluster,
          description: 'Only announcements naming this cluster are answered.',
        },
        loopback: {
          type: 'boolean',
          default: true,
          description: "Receive the group's datagrams sent from this host too (nodes on one machine).",
        },
      },
    },
  },
};

/** The seeds option as a list of non-empty entries. */
export function seedList(seeds: readonly string[] | string): string[] {
  const list = typeof seeds === 'string' ? seeds.split(',') : [...seeds];
  return list.map((s) => s.trim()).filter((s) => s !== '');
}

/** A seed as a transport URI: host:port gets the scheme of `ownAddress`. */
export function seedAddress(seed: string, ownAddress: string): string {
  if (seed.includes('://')) return seed;
  const scheme = ownAddress.slice(0, ownAddress.indexOf('://'));
  return `${scheme}://${seed}`;
}
