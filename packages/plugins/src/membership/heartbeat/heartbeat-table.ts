import type { MemberState } from '@kvmesh/core';

/** One row of a heartbeat table, as it travels. */
export interface HeartbeatEntry {
  readonly id: string;
  readonly address: string;
  readonly generation: number;
  readonly counter: number;
  readonly ageMs: number;
  readonly left: boolean;
  readonly meta: Readonly<Record<string, string>>;
}

/** One row as this node keeps it. */
export interface HeartbeatRow {
  readonly id: string;
  address: string;
  generation: number;
  counter: number;
  left: boolean;
  meta: Readonly<Record<string, string>>;
  /** Local clock time at which the member last incremented its counter, as far as this node knows. */
  heardAt: number;
  state: MemberState;
  /** Rough encoded size, to fit a table into one datagram. */
  sizeBytes: number;
}

/** Bytes of an entry beyond its strings in the largest codec (JSON field names, numbers, punctuation). */
const ENTRY_OVERHEAD_BYTES = 112;
/** Largest `ageMs` on the wire (uint32). */
const MAX_AGE_MS = 0xffffffff;

export function entrySize(id: string, address: string, meta: Readonly<Record<string, string>>): number {
  let size = ENTRY_OVERHEAD_BYTES + id.length + address.length;
  for (const [k, v] of Object.entries(meta)) size += k.length + v.length + 8;
  return size;
}

export function toEntry(row: HeartbeatRow, now: number): HeartbeatEntry {
  return {
    id: row.id,
    address: row.address,
    generation: row.generation,
    counter: row.counter,
    ageMs: Math.min(MAX_AGE_MS, Math.max(0, Math.round(now - row.heardAt))),
    left: row.left,
    meta: row.meta,
  };
}

/** How an incoming entry relates to the row this node holds. */
export type Freshness = 'newer-generation' | 'newer-counter' | 'stale';

export function freshness(row: Pick<HeartbeatRow, 'generation' | 'counter'>, entry: HeartbeatEntry): Freshness {
  if (entry.generation > row.generation) return 'newer-generation';
  if (entry.generation === row.generation && entry.counter > row.counter) return 'newer-counter';
  return 'stale';
}
