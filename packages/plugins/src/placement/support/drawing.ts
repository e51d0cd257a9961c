import type { GroupsDrawing, Member, RingDrawing } from '@kvmesh/core';
import type { HashRing } from './hash-ring.js';

/** The 32-bit ring's points as the dashboard draws them: each at its position, owned by `members[owner]`. */
export function ringDrawing(ring: HashRing, members: readonly Member[], caption: string): RingDrawing {
  const points: { at: number; member: string }[] = [];
  for (let i = 0; i < ring.size; i++) {
    points.push({ at: ring.positions[i]! / 2 ** 32, member: members[ring.owners[i]!]?.id ?? '?' });
  }
  return { shape: 'ring', caption, points };
}

/**
 * Slots grouped by their replica list (primary first), as the dashboard
 * draws a partition table: one group per distinct list, weighted by its
 * number of slots.
 */
export function slotGroupsDrawing(
  slots: number,
  replicasOf: (slot: number) => readonly number[],
  members: readonly Member[],
  caption: string,
): GroupsDrawing {
  const groups = new Map<string, { members: string[]; weight: number }>();
  for (let slot = 0; slot < slots; slot++) {
    const ids = replicasOf(slot).map((i) => members[i]?.id ?? '?');
    const id = ids.join(' + ');
    const group = groups.get(id);
    if (group === undefined) groups.set(id, { members: ids, weight: 1 });
    else group.weight++;
  }
  return {
    shape: 'groups',
    caption,
    groups: [...groups.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([id, g]) => ({ id, members: g.members, weight: g.weight, label: `${g.weight} of ${slots}` })),
  };
}
