import { KvError } from '@kvmesh/core';
import { canonicalHostPort } from '../support/addresses.js';

/** One member of a static view. */
export interface ViewEntry {
  /** Member id: the name before `@`, or else the `host:port`. */
  readonly id: string;
  /** Canonical `host:port`. */
  readonly hostPort: string;
  /** The entry as it travels and is stored: `host:port`, or `id@host:port` when the id differs. */
  readonly text: string;
}

const ID = /^[A-Za-z0-9._:-]{1,128}$/;

function parseEntry(raw: string): ViewEntry | undefined {
  const at = raw.lastIndexOf('@');
  const named = at >= 0;
  const id = named ? raw.slice(0, at) : undefined;
  const hostPort = canonicalHostPort(named ? raw.slice(at + 1) : raw);
  if (hostPort === undefined || (id !== undefined && !ID.test(id))) return undefined;
  const memberId = id ?? hostPort;
  return { id: memberId, hostPort, text: memberId === hostPort ? hostPort : `${memberId}@${hostPort}` };
}

/**
 * A view as sorted, checked entries. Each entry is `host:port` (its id is
 * then the `host:port`, as in CSE138) or `id@host:port` to name the member.
 * A string is split at commas (the `VIEW` environment variable); blanks
 * around entries are ignored.
 * @throws KvError KVMESH_ERR_MEMBERSHIP_VIEW_INVALID naming the bad entries, or a repeated id or address.
 */
export function parseView(view: string | readonly string[]): ViewEntry[] {
  const raw = typeof view === 'string' ? view.split(',').filter((v) => v.trim() !== '') : [...view];
  const bad: string[] = [];
  const entries: ViewEntry[] = [];
  for (const value of raw) {
    const entry = typeof value === 'string' ? parseEntry(value.trim()) : undefined;
    if (entry === undefined) bad.push(JSON.stringify(value));
    else entries.push(entry);
  }
  if (bad.length > 0) {
    throw new KvError(
      'KVMESH_ERR_MEMBERSHIP_VIEW_INVALID',
      `a view holds host:port (or id@host:port) entries only; found ${bad.join(', ')}`,
    );
  }
  const byText = new Map(entries.map((e) => [e.text, e]));
  const unique = [...byText.values()].sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
  for (const key of ['id', 'hostPort'] as const) {
    const seen = new Set<string>();
    for (const entry of unique) {
      if (seen.has(entry[key])) {
        throw new KvError(
          'KVMESH_ERR_MEMBERSHIP_VIEW_INVALID',
          `a view names ${key === 'id' ? 'member id' : 'address'} ${entry[key]} twice`,
        );
      }
      seen.add(entry[key]);
    }
  }
  return unique;
}

/** A view and its epoch, the unit members compare and adopt. */
export interface ViewVersion {
  readonly epoch: number;
  readonly view: readonly ViewEntry[];
}

/**
 * Orders two view versions: by epoch, and for two different views of one
 * epoch (concurrent view changes on two members) by the views themselves, so
 * every member settles on the same one. Views from configs (epoch 0) never
 * replace each other.
 */
export function compareVersions(a: ViewVersion, b: ViewVersion): number {
  if (a.epoch !== b.epoch) return a.epoch < b.epoch ? -1 : 1;
  if (a.epoch === 0) return 0;
  const ka = a.view.map((e) => e.text).join(',');
  const kb = b.view.map((e) => e.text).join(',');
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
