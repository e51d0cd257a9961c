import { incarnationRefusal } from '../support/claims.js';
import type { HeartbeatEntry, HeartbeatRow } from './heartbeat-table.js';

/**
 * Why an entry is refused: a generation far ahead of the known one and of
 * the clock (generations are start times in ms), or a counter that is no count.
 */
export function claimRefusal(entry: HeartbeatEntry, known: number | undefined, now: number): string | undefined {
  const refusal = incarnationRefusal(entry.generation, known, now);
  if (refusal !== undefined) return `generation: ${refusal}`;
  if (!Number.isSafeInteger(entry.counter) || entry.counter < 0) {
    return `counter ${entry.counter} is not a non-negative safe integer`;
  }
  return undefined;
}

/** True when `entry` claims more of a member than `self` (the member itself) did: a later generation or counter, or a departure. */
export function claimsMoreThan(self: Pick<HeartbeatRow, 'generation' | 'counter'>, entry: HeartbeatEntry): boolean {
  return (
    entry.generation > self.generation ||
    (entry.generation === self.generation && (entry.counter > self.counter || entry.left))
  );
}

/**
 * True when `row` holds more of a member than the member's own entry says
 * (a later generation, a counter more than a period ahead, a departure it
 * does not claim): somebody else claimed it.
 */
export function holdsMoreThan(row: HeartbeatRow, own: HeartbeatEntry): boolean {
  return (
    row.generation > own.generation ||
    (row.generation === own.generation && (row.counter > own.counter + 1 || (row.left && !own.left)))
  );
}
