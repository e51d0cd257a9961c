import type { Clock } from '../contracts/clock.js';
import type { Version } from '../contracts/storage.js';
import { KvError } from '../errors.js';

/** Largest logical counter a Version may carry (the contract's 16-bit range). */
export const MAX_LOGICAL = 0xffff;

/**
 * Largest wallMs a Version may carry: 2^48 - 1 ms (year 10889), so it fits the
 * 12 hex digits of `formatVersion` and 6 bytes in storage encodings.
 */
export const MAX_WALL_MS = 2 ** 48 - 1;

/** Default bound on how far ahead of the local clock a remote version may be. */
export const DEFAULT_MAX_DRIFT_MS = 60_000;

// In `u` mode this matches only unpaired surrogates, which UTF-8 cannot encode.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** True when `value` is a well-formed Version (integers in range, non-empty well-formed node id). */
export function isVersion(value: unknown): value is Version {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<Version>;
  return (
    Number.isInteger(v.wallMs) &&
    (v.wallMs as number) >= 0 &&
    (v.wallMs as number) <= MAX_WALL_MS &&
    Number.isInteger(v.logical) &&
    (v.logical as number) >= 0 &&
    (v.logical as number) <= MAX_LOGICAL &&
    typeof v.node === 'string' &&
    v.node !== '' &&
    !LONE_SURROGATE.test(v.node)
  );
}

/**
 * Total order on versions alone: wallMs, then logical, then node id (plain
 * UTF-16 string comparison, identical on every replica). Negative when
 * a < b. It agrees with `compareRecords`, the order replicas keep records
 * by, except between two versions of one timestamp from two nodes, which
 * `compareRecords` orders by their values; use it where only versions are
 * at hand, and `sameVersion` to tell whether two versions are one.
 */
export function compareVersions(a: Version, b: Version): number {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  if (a.node === b.node) return 0;
  return a.node < b.node ? -1 : 1;
}

/** Order of the timestamps alone (wallMs, then logical); 0 for one timestamp written by two nodes. */
export function compareStamps(a: Version, b: Version): number {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  return 0;
}

/** True when a and b are one version (one write). */
export function sameVersion(a: Version, b: Version): boolean {
  return a.wallMs === b.wallMs && a.logical === b.logical && a.node === b.node;
}

/**
 * Whether a stored record of version `stored` may go once version `upTo` was
 * copied or replayed: it is that version, or of an older timestamp. One of
 * the same timestamp from another node stays: only the values order the two.
 */
export function coveredBy(stored: Version, upTo: Version): boolean {
  const stamps = compareStamps(stored, upTo);
  return stamps < 0 || (stamps === 0 && stored.node === upTo.node);
}

/** What `compareRecords` looks at: a record's version and value (a tombstone's value is empty). */
export interface VersionedValue {
  readonly version: Version;
  readonly value: Uint8Array;
}

/**
 * The order every replica keeps records by, so that all agree on the newest:
 * the newer timestamp (wallMs, then logical) wins; two records of one
 * timestamp, which only two nodes stamping at once can make, are ordered by
 * their values (bytewise lexicographic comparison, a tombstone's empty value
 * first), then by the stamping node's id. Negative when a is older. 0 only
 * for one version.
 */
export function compareRecords(a: VersionedValue, b: VersionedValue): number {
  const stamps = compareStamps(a.version, b.version);
  if (stamps !== 0 || a.version.node === b.version.node) return stamps;
  const values = compareBytes(a.value, b.value);
  if (values !== 0) return values;
  return a.version.node < b.version.node ? -1 : 1;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

export interface HybridLogicalClockOptions {
  /**
   * A remote version whose wallMs is more than this many milliseconds ahead of
   * the local clock is refused by `observe`, so one node with a wild clock
   * cannot drag every other node's versions into the future. Default 60 000.
   */
  readonly maxDriftMs?: number;
}

/**
 * Hybrid logical clock (Kulkarni, Demirbas et al., "Logical Physical Clocks
 * and Consistent Snapshots in Globally Distributed Databases", 2014, fig. 5).
 * Versions it issues are strictly increasing even when the physical clock
 * stands still or steps back, stay close to physical time, and follow every
 * version observed from other nodes.
 */
export class HybridLogicalClock {
  readonly nodeId: string;
  readonly maxDriftMs: number;
  private readonly clock: Clock;
  private wallMs = 0;
  private logical = 0;

  constructor(clock: Clock, nodeId: string, options: HybridLogicalClockOptions = {}) {
    if (typeof nodeId !== 'string' || nodeId === '' || LONE_SURROGATE.test(nodeId)) {
      throw new KvError('KVMESH_ERR_VERSION_INVALID', 'a hybrid logical clock needs a non-empty, well-formed node id');
    }
    const maxDriftMs = options.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS;
    if (!(maxDriftMs >= 0)) {
      throw new KvError('KVMESH_ERR_VERSION_INVALID', `maxDriftMs must be >= 0 (found ${maxDriftMs})`);
    }
    this.clock = clock;
    this.nodeId = nodeId;
    this.maxDriftMs = maxDriftMs;
  }

  /** A new version for a local event (a write), greater than every version issued or observed so far. */
  now(): Version {
    const physical = this.physical();
    if (physical > this.wallMs) {
      this.wallMs = physical;
      this.logical = 0;
    } else {
      this.tick();
    }
    return this.current();
  }

  /**
   * Merges a version received from another node, so the next `now()` is
   * greater than it. Returns the clock's new version.
   * @throws KvError KVMESH_ERR_VERSION_DRIFT when `remote.wallMs` is more than
   *   `maxDriftMs` ahead of the local clock; the clock is left unchanged.
   * @throws KvError KVMESH_ERR_VERSION_INVALID when `remote` is not a Version.
   */
  observe(remote: Version): Version {
    if (!isVersion(remote)) {
      throw new KvError('KVMESH_ERR_VERSION_INVALID', `not a version: ${JSON.stringify(remote)}`);
    }
    const physical = this.physical();
    if (remote.wallMs - physical > this.maxDriftMs) {
      throw new KvError(
        'KVMESH_ERR_VERSION_DRIFT',
        `a version from node '${remote.node}' is ${remote.wallMs - physical} ms ahead of this node's clock ` +
          `(limit ${this.maxDriftMs} ms); check NTP on both nodes`,
        { details: { remoteWallMs: remote.wallMs, localWallMs: physical, maxDriftMs: this.maxDriftMs } },
      );
    }
    const previous = this.wallMs;
    const wallMs = Math.max(previous, remote.wallMs, physical);
    if (wallMs === previous && wallMs === remote.wallMs) {
      this.logical = Math.max(this.logical, remote.logical);
      this.tick();
    } else if (wallMs === previous) {
      this.tick();
    } else if (wallMs === remote.wallMs) {
      this.wallMs = wallMs;
      this.logical = remote.logical;
      this.tick();
    } else {
      this.wallMs = wallMs;
      this.logical = 0;
    }
    return this.current();
  }

  /** The last version issued or merged, without advancing the clock. */
  peek(): Version {
    return this.current();
  }

  // The paper lets the counter grow without bound; ours has 16 bits, so an
  // overflow borrows the next millisecond, which keeps versions increasing.
  private tick(): void {
    if (this.logical < MAX_LOGICAL) {
      this.logical += 1;
    } else {
      this.wallMs += 1;
      this.logical = 0;
    }
  }

  private physical(): number {
    return Math.floor(this.clock.now());
  }

  private current(): Version {
    return { wallMs: this.wallMs, logical: this.logical, node: this.nodeId };
  }
}

const FORMAT = /^([0-9a-f]{12})-([0-9a-f]{4})-(.+)$/;
/** Character codes of the lowercase hex digits. */
const HEX_CODES: readonly number[] = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));
const DASH = 0x2d;
const TWO_24 = 2 ** 24;

// formatVersion runs for every key response (the ETag). V8 turns a number
// above 2^31 into hex through its slow double-to-radix path, and a string
// built from many pieces must be flattened again before it is written, so
// the digits come as character codes into one flat string; and most
// versions name the same few nodes, so the last node id's encoding is kept.
let lastNode = '';
let lastNodeText = '';

/**
 * A compact string for a version, usable as an HTTP ETag:
 * `<wallMs, 12 hex digits>-<logical, 4 hex digits>-<node id, URI-encoded>`,
 * e.g. `018f2c3a4b5c-0001-node-a`. Fixed widths make versions of one node
 * sort as strings in the same order as `compareVersions`.
 * @throws KvError KVMESH_ERR_VERSION_INVALID when `v` is not a Version.
 */
export function formatVersion(v: Version): string {
  if (!isVersion(v)) throw new KvError('KVMESH_ERR_VERSION_INVALID', `not a version: ${JSON.stringify(v)}`);
  const high = Math.floor(v.wallMs / TWO_24);
  const low = v.wallMs - high * TWO_24;
  const logical = v.logical;
  if (v.node !== lastNode) {
    lastNodeText = encodeURIComponent(v.node);
    lastNode = v.node;
  }
  const h = HEX_CODES;
  return (
    String.fromCharCode(
      h[high >>> 20]!,
      h[(high >>> 16) & 15]!,
      h[(high >>> 12) & 15]!,
      h[(high >>> 8) & 15]!,
      h[(high >>> 4) & 15]!,
      h[high & 15]!,
      h[low >>> 20]!,
      h[(low >>> 16) & 15]!,
      h[(low >>> 12) & 15]!,
      h[(low >>> 8) & 15]!,
      h[(low >>> 4) & 15]!,
      h[low & 15]!,
      DASH,
      h[logical >>> 12]!,
      h[(logical >>> 8) & 15]!,
      h[(logical >>> 4) & 15]!,
      h[logical & 15]!,
      DASH,
    ) + lastNodeText
  );
}

/**
 * The inverse of `formatVersion`; accepts exactly what it produces.
 * @throws KvError KVMESH_ERR_VERSION_INVALID for anything else.
 */
export function parseVersion(s: string): Version {
  const invalid = (): KvError =>
    new KvError(
      'KVMESH_ERR_VERSION_INVALID',
      `not a version string: ${JSON.stringify(typeof s === 'string' ? s.slice(0, 200) : s)} ` +
        '(expected <12 hex digits>-<4 hex digits>-<node id>)',
    );
  if (typeof s !== 'string') throw invalid();
  const match = FORMAT.exec(s);
  if (match === null) throw invalid();
  let node: string;
  try {
    node = decodeURIComponent(match[3]!);
  } catch {
    throw invalid();
  }
  // One spelling per version, so equal versions always have equal ETags.
  if (encodeURIComponent(node) !== match[3]) throw invalid();
  return { wallMs: Number.parseInt(match[1]!, 16), logical: Number.parseInt(match[2]!, 16), node };
}
