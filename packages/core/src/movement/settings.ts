import { KvError } from '../errors.js';
import type { JsonSchema } from '../plugin.js';

/** Default of `kv.batchSize`: records per scan page and per PutBatch. */
export const DEFAULT_BATCH_SIZE = 500;
/** Default of `kv.moveDebounceMs`: events that change no data member are planned together within it. */
export const DEFAULT_MOVE_DEBOUNCE_MS = 200;
/** Default of `kv.moveRetryMs`: first wait before a failed or refused move is tried again (doubles up to 30 s). */
export const DEFAULT_MOVE_RETRY_MS = 500;
/** Default of `kv.moveQueryIntervalMs`. */
export const DEFAULT_MOVE_QUERY_INTERVAL_MS = 2000;
/** Default of `kv.movePendingTimeoutMs`: ten minutes. */
export const DEFAULT_MOVE_PENDING_TIMEOUT_MS = 600_000;
/** Default of `kv.batchTimeoutMs`. */
export const DEFAULT_BATCH_TIMEOUT_MS = 10_000;
/** Default of `kv.hintReplayIntervalMs`. */
export const DEFAULT_HINT_REPLAY_INTERVAL_MS = 1000;
/** Default of `kv.antiEntropyIntervalMs`: 30 s. */
export const DEFAULT_ANTI_ENTROPY_INTERVAL_MS = 30_000;
/** Default of `kv.antiEntropyBuckets`. */
export const DEFAULT_ANTI_ENTROPY_BUCKETS = 256;

/** Largest `kv.batchSize`: a page of this many 1 MiB values is already larger than any frame a transport takes. */
export const MAX_BATCH_SIZE = 10_000;
/** Largest `kv.antiEntropyBuckets` (a digest reply carries 12 bytes per bucket). */
export const MAX_ANTI_ENTROPY_BUCKETS = 65_536;

/**
 * JSON Schema properties of the data-movement options. They live in the
 * config's `kv` section: `kvConfigSchema` spreads them into its properties.
 */
export const movementConfigProperties: Readonly<Record<string, JsonSchema>> = {
  batchSize: {
    type: 'integer',
    minimum: 1,
    maximum: MAX_BATCH_SIZE,
    default: DEFAULT_BATCH_SIZE,
    description:
      'Records per page when data moves between nodes (rebalancing, hint replay, anti-entropy repair): one storage scan page, sent in PutBatch requests of at most limits.maxValueBytes each (one request for a page of small values). Larger pages move faster. Default 500.',
  },
  batchTimeoutMs: {
    type: 'integer',
    minimum: 1,
    default: DEFAULT_BATCH_TIMEOUT_MS,
    description:
      'How long a PutBatch request may take before the page counts as failed and is sent again later. Default 10000.',
  },
  rebalanceMaxKeysPerSecond: {
    type: 'integer',
    minimum: 0,
    default: 0,
    description:
      'Upper bound on records per second this node sends while rebalancing, so a membership change does not starve client traffic. 0 sends as fast as the receivers store. Default 0.',
  },
  moveDebounceMs: {
    type: 'integer',
    minimum: 0,
    default: DEFAULT_MOVE_DEBOUNCE_MS,
    description:
      'A membership event that changes the members placement sees is planned at once (ranges moving here are read through their old owners from that moment); other events within this many ms of the last plan are planned together when it ends. Default 200.',
  },
  moveRetryMs: {
    type: 'integer',
    minimum: 1,
    default: DEFAULT_MOVE_RETRY_MS,
    description:
      'First wait before a move whose page failed or was refused (the receiver did not own the keys yet) is tried again; it doubles on every failure up to 30 s. Default 500.',
  },
  moveQueryIntervalMs: {
    type: 'integer',
    minimum: 1,
    default: DEFAULT_MOVE_QUERY_INTERVAL_MS,
    description:
      'While a move to this node is pending, how often it asks each old owner whether the move is still running (in case its completion message was lost or never due). Default 2000.',
  },
  movePendingTimeoutMs: {
    type: 'integer',
    minimum: 0,
    default: DEFAULT_MOVE_PENDING_TIMEOUT_MS,
    description:
      'Longest time a move to this node stays pending (reads consult the old owners, the node is not settled); after it the node stops waiting and logs a warning, and anti-entropy repairs what is left. 0 waits forever. Default 600000 (ten minutes).',
  },
  hintReplayIntervalMs: {
    type: 'integer',
    minimum: 1,
    default: DEFAULT_HINT_REPLAY_INTERVAL_MS,
    description:
      'How often this node sends the hints it holds to their members when they are alive (also right away when a member comes back). Default 1000.',
  },
  antiEntropyIntervalMs: {
    type: 'integer',
    minimum: 0,
    default: DEFAULT_ANTI_ENTROPY_INTERVAL_MS,
    description:
      'How often this node compares the digests of the keys it shares with one random peer and exchanges the records that differ. 0 disables anti-entropy. Default 30000.',
  },
  antiEntropyBuckets: {
    type: 'integer',
    minimum: 1,
    maximum: MAX_ANTI_ENTROPY_BUCKETS,
    default: DEFAULT_ANTI_ENTROPY_BUCKETS,
    description:
      'Hash buckets an anti-entropy digest has; a difference sends only the records of the buckets that differ, so more buckets send less after a few missed writes. Default 256.',
  },
};

/** The data-movement options as the Movement component reads them. */
export interface MovementSettings {
  readonly batchSize: number;
  readonly batchTimeoutMs: number;
  readonly rebalanceMaxKeysPerSecond: number;
  readonly moveDebounceMs: number;
  readonly moveRetryMs: number;
  readonly moveQueryIntervalMs: number;
  readonly movePendingTimeoutMs: number;
  readonly hintReplayIntervalMs: number;
  readonly antiEntropyIntervalMs: number;
  readonly antiEntropyBuckets: number;
}

/**
 * The movement options of a node config's `kv` section, defaults filled for
 * those it lacks (tests pass configs that were not validated).
 * @throws KvError KVMESH_ERR_CONFIG_INVALID naming a present but malformed value.
 */
export function readMovementSettings(config: Readonly<Record<string, unknown>>): MovementSettings {
  const raw = config['kv'];
  if (raw !== undefined && (typeof raw !== 'object' || raw === null || Array.isArray(raw))) {
    throw invalid('/kv', 'an object', raw);
  }
  const kv = (raw ?? {}) as Readonly<Record<string, unknown>>;
  const read = (key: keyof MovementSettings): number => {
    const schema = movementConfigProperties[key] as { minimum: number; maximum?: number; default: number };
    const value = kv[key];
    if (value === undefined) return schema.default;
    const max = schema.maximum ?? Number.MAX_SAFE_INTEGER;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < schema.minimum || value > max) {
      throw invalid(`/kv/${key}`, `an integer from ${schema.minimum} to ${max}`, value);
    }
    return value;
  };
  return Object.freeze({
    batchSize: read('batchSize'),
    batchTimeoutMs: read('batchTimeoutMs'),
    rebalanceMaxKeysPerSecond: read('rebalanceMaxKeysPerSecond'),
    moveDebounceMs: read('moveDebounceMs'),
    moveRetryMs: read('moveRetryMs'),
    moveQueryIntervalMs: read('moveQueryIntervalMs'),
    movePendingTimeoutMs: read('movePendingTimeoutMs'),
    hintReplayIntervalMs: read('hintReplayIntervalMs'),
    antiEntropyIntervalMs: read('antiEntropyIntervalMs'),
    antiEntropyBuckets: read('antiEntropyBuckets'),
  });
}

function invalid(path: string, expected: string, found: unknown): KvError {
  return new KvError('KVMESH_ERR_CONFIG_INVALID', `${path} must be ${expected} (found ${JSON.stringify(found)})`, {
    details: { path },
  });
}
