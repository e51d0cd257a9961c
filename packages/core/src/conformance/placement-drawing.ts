import type { PlacementDrawing } from '../contracts/placement.js';

/** Most points a ring drawing may carry: the page draws every one. */
export const MAX_DRAWING_POINTS = 10_000;

/**
 * What is wrong with a placement's `describe().drawing` (PlacementDrawing),
 * as sentences; empty when the dashboard can draw it. `members` are the ids
 * the drawing may name.
 */
export function drawingProblems(drawing: unknown, members: ReadonlySet<string>): string[] {
  if (typeof drawing !== 'object' || drawing === null) return ['describe() has no drawing'];
  const d = drawing as PlacementDrawing;
  const problems: string[] = [];
  if (typeof d.caption !== 'string' || d.caption === '') problems.push('the drawing has no caption');
  const known = (id: unknown, where: string): void => {
    if (typeof id !== 'string' || !members.has(id)) problems.push(`${where} names ${JSON.stringify(id)}, not a member`);
  };
  switch (d.shape) {
    case 'ring': {
      if (!Array.isArray(d.points) || d.points.length === 0) problems.push('a ring drawing has no points');
      else if (d.points.length > MAX_DRAWING_POINTS)
        problems.push(`a ring drawing has over ${MAX_DRAWING_POINTS} points`);
      for (const [i, p] of (d.points ?? []).entries()) {
        if (!(typeof p.at === 'number' && p.at >= 0 && p.at < 1)) problems.push(`point ${i} is not at [0, 1)`);
        known(p.member, `point ${i}`);
      }
      for (const [i, link] of (d.links ?? []).entries()) {
        for (const end of [link.from, link.to]) {
          if (!(typeof end === 'number' && end >= 0 && end < 1))
            problems.push(`link ${i} does not join two ring positions`);
        }
      }
      break;
    }
    case 'groups': {
      if (!Array.isArray(d.groups) || d.groups.length === 0) problems.push('a groups drawing has no groups');
      for (const [i, g] of (d.groups ?? []).entries()) {
        if (typeof g.id !== 'string') problems.push(`group ${i} has no id`);
        if (!(typeof g.weight === 'number' && g.weight >= 0 && Number.isFinite(g.weight)))
          problems.push(`group ${i} has no weight`);
        for (const m of g.members ?? []) known(m, `group ${i}`);
      }
      break;
    }
    case 'buckets': {
      if (!Array.isArray(d.buckets)) problems.push('a buckets drawing has no buckets');
      for (const [i, b] of (d.buckets ?? []).entries()) {
        if (!(Number.isInteger(b.size) && Number.isInteger(b.capacity) && b.size <= b.capacity))
          problems.push(`bucket ${i} has a size over its capacity`);
        for (const m of b.members ?? []) known(m, `bucket ${i}`);
      }
      break;
    }
    default:
      problems.push(`unknown drawing shape ${JSON.stringify((d as { shape?: unknown }).shape)}`);
  }
  return problems;
}
