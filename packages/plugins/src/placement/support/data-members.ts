import type { Member } from '@kvmesh/core';

/** The role a member without `meta.role` is taken to have. */
export const DEFAULT_ROLE = 'storage';

/**
 * The members that hold data, sorted by id: a role in `dataRoles` (no role
 * counts as `storage`) and any state but `left`. Suspect and dead members
 * stay: a crash must not move data (the coordinator skips them and hints
 * to fallbacks); only leaving, or being forgotten, does.
 */
export function dataMembers(members: readonly Member[], dataRoles: readonly string[]): Member[] {
  const out = members.filter((m) => m.state !== 'left' && dataRoles.includes(m.meta['role'] ?? DEFAULT_ROLE));
  // members() is sorted by id already; plan() may be handed any order.
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** True when both lists hold the same ids in the same order. */
export function sameIds(a: readonly Member[], b: readonly Member[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]!.id !== b[i]!.id) return false;
  return true;
}
