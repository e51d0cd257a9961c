import { KvError } from '@kvmesh/core';
import type { ViewParameters } from '@kvmesh/core';
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
  /** What the view carries for the placement (`Membership.viewParameters`); `{}` for none. */
  readonly parameters: ViewParameters;
}

/** Largest value of a view parameter: the wire carries them as unsigned 32-bit numbers. */
const MAX_PARAMETER = 0xffff_ffff;
const PARAMETER_NAME = /^[A-Za-z][A-Za-z0-9]{0,63}$/;

/**
 * View parameters as a frozen object with sorted names.
 * @throws KvError KVMESH_ERR_MEMBERSHIP_VIEW_INVALID for a name that is not a word or a value that is not a whole number from 0 to 2^32 - 1.
 */
export function parseParameters(parameters: unknown): ViewParameters {
  if (parameters === undefined || parameters === null) return NO_PARAMETERS;
  if (typeof parameters !== 'object' || Array.isArray(parameters)) {
    throw new KvError('KVMESH_ERR_MEMBERSHIP_VIEW_INVALID', 'view parameters are an object of whole numbers');
  }
  const entries = Object.entries(parameters as Record<string, unknown>).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  const bad = entries.filter(
    ([k, v]) =>
      !PARAMETER_NAME.test(k) || typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > MAX_PARAMETER,
  );
  if (bad.length > 0) {
    throw new KvError(
      'KVMESH_ERR_MEMBERSHIP_VIEW_INVALID',
      `view parameters are named by a word and are whole numbers from 0 to ${MAX_PARAMETER}; found ${bad
        .map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`)
        .join(', ')}`,
    );
  }
  return entries.length === 0 ? NO_PARAMETERS : Object.freeze(Object.fromEntries(entries) as Record<string, number>);
}

export const NO_PARAMETERS: ViewParameters = Object.freeze({});

/** The parameters as one string, names sorted: equal for equal parameters. */
export function parametersText(parameters: ViewParameters): string {
  return Object.keys(parameters)
    .sort()
    .map((k) => `${k}=${String(parameters[k])}`)
    .join(',');
}

/**
 * Orders two view versions: by epoch, and for two different views of one
 * epoch (concurrent view changes on two members) by the views themselves
 * and then their parameters, so every member settles on the same one.
 * Views from configs (epoch 0) never replace each other.
 */
export function compareVersions(a: ViewVersion, b: ViewVersion): number {
  if (a.epoch !== b.epoch) return a.epoch < b.epoch ? -1 : 1;
  if (a.epoch === 0) return 0;
  const ka = `${a.view.map((e) => e.text).join(',')}|${parametersText(a.parameters)}`;
  const kb = `${b.view.map((e) => e.text).join(',')}|${parametersText(b.parameters)}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
