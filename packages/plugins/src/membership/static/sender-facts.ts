import { sameEndpoint } from '../support/addresses.js';
import { incarnationRefusal } from '../support/claims.js';
import type { ViewEntry } from './view.js';

/** What an exchange's sender says about itself. */
export interface SenderFacts {
  readonly id: string;
  readonly incarnation: number;
  readonly left: boolean;
}

/**
 * Why the facts an exchange gives about its sender are refused, or
 * undefined when they may be taken. They are the sender's word about
 * itself, so they must come from the address the view gives that member
 * (another member cannot say it left or restarted), and the incarnation
 * must not be absurd.
 */
export function senderFactsRefusal(
  sender: SenderFacts,
  from: string,
  view: readonly ViewEntry[],
  known: number | undefined,
  nowMs: number,
): string | undefined {
  const entry = view.find((e) => e.id === sender.id);
  if (entry !== undefined && !sameEndpoint(from, entry.hostPort)) {
    return `facts about ${sender.id} came from ${from}, not from ${entry.hostPort} where the view places it`;
  }
  return incarnationRefusal(sender.incarnation, known, nowMs);
}
