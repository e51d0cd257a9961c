import type { Contact } from './contact.js';
import { compareDistance } from './node-id.js';

/** What one contact answered to a FIND_NODE or FIND_VALUE. */
export interface QueryAnswer<V> {
  /** Closer contacts it knows. */
  readonly contacts: readonly Contact[];
  /** The value it holds for the target (FIND_VALUE), if any. */
  readonly value?: V | undefined;
}

export interface LookupRequest<V> {
  readonly target: Uint8Array;
  /** Bucket size: the shortlist keeps the `k` closest contacts. */
  readonly k: number;
  /** Requests sent in parallel per round (the paper's alpha). */
  readonly alpha: number;
  /** The lookup ends once the `width` closest contacts (<= k) all answered. */
  readonly width: number;
  /** Where to start: the closest contacts of this node's routing table. */
  readonly start: readonly Contact[];
  /** This node: a candidate of the result that is never asked. */
  readonly self?: Contact | undefined;
  /** Asks one contact; rejects when it does not answer. */
  readonly query: (contact: Contact) => Promise<QueryAnswer<V>>;
  /** FIND_VALUE: stop after the round in which some contact answered with a value. */
  readonly stopOnValue?: boolean;
  /** Called with a contact that did not answer. */
  readonly onFailure?: (contact: Contact, err: unknown) => void;
  /** Checked before each round: a lookup past its deadline or cancelled stops with this error. */
  readonly check?: () => void;
}

export interface LookupResult<V> {
  /** Contacts that answered (and this node), closest first, at most k. */
  readonly closest: readonly Contact[];
  /** Values answered, in the order they arrived. */
  readonly values: readonly { readonly from: Contact; readonly value: V }[];
  /** The closest contact that answered without the value (where FIND_VALUE caches it, §2.3). */
  readonly nearestWithout: Contact | undefined;
  /** Rounds of requests, each up to alpha in parallel (the final round to every unasked one of the closest counts once). */
  readonly hops: number;
  readonly asked: number;
  readonly failed: number;
}

type State = 'new' | 'answered' | 'failed';

interface Candidate {
  readonly contact: Contact;
  state: State;
  /** Answered without a value. */
  empty: boolean;
}

/**
 * The iterative node lookup of §2.3: ask the `alpha` closest contacts not
 * asked yet, merge what they answer, and go on with the closest ones; when
 * a round finds nothing closer than what was known, ask every one of the
 * `width` closest not asked yet at once. It ends when the `width` closest
 * known contacts all answered (or nothing is left to ask). Contacts that do
 * not answer are left out of the result.
 */
export async function iterativeLookup<V>(request: LookupRequest<V>): Promise<LookupResult<V>> {
  const { target, k, alpha, width } = request;
  const byId = new Map<string, Candidate>();
  // Every candidate, closest first: kept in order as contacts arrive rather than sorted every round.
  const sorted: Candidate[] = [];
  const insert = (candidate: Candidate): void => {
    const id = candidate.contact.nodeId;
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareDistance(sorted[mid]!.contact.nodeId, id, target) < 0) lo = mid + 1;
      else hi = mid;
    }
    sorted.splice(lo, 0, candidate);
    byId.set(candidate.contact.id, candidate);
  };
  const add = (contact: Contact): void => {
    if (!byId.has(contact.id)) insert({ contact, state: 'new', empty: false });
  };
  if (request.self !== undefined) insert({ contact: request.self, state: 'answered', empty: false });
  for (const contact of request.start) add(contact);
  const values: { from: Contact; value: V }[] = [];
  let hops = 0;
  let asked = 0;
  let failed = 0;
  let final = false;

  // The k closest candidates that did not fail, closest first.
  const ranked = (): Candidate[] => {
    const live: Candidate[] = [];
    for (const c of sorted) {
      if (c.state === 'failed') continue;
      live.push(c);
      if (live.length >= k) break;
    }
    return live;
  };

  // The head of ranked().
  const closestLive = (): Candidate | undefined => sorted.find((c) => c.state !== 'failed');

  for (;;) {
    request.check?.();
    const top = ranked();
    const head = top.slice(0, width);
    if (head.every((c) => c.state === 'answered')) break;
    const unasked = (final ? head : top).filter((c) => c.state === 'new');
    if (unasked.length === 0) break;
    const batch = final ? unasked : unasked.slice(0, alpha);
    const closestBefore = top[0]!.contact;
    hops++;
    asked += batch.length;
    await Promise.all(
      batch.map(async (candidate) => {
        try {
          const answer = await request.query(candidate.contact);
          candidate.state = 'answered';
          if (answer.value !== undefined) values.push({ from: candidate.contact, value: answer.value });
          else candidate.empty = true;
          for (const c of answer.contacts) add(c);
        } catch (err) {
          candidate.state = 'failed';
          failed++;
          request.onFailure?.(candidate.contact, err);
        }
      }),
    );
    if (request.stopOnValue && values.length > 0) break;
    const after = closestLive();
    // Nothing closer than before (or what was closest failed): the final round asks the rest at once.
    final = after === undefined || compareDistance(after.contact.nodeId, closestBefore.nodeId, target) >= 0;
  }
  const last = ranked();
  const closest = last.filter((c) => c.state === 'answered').map((c) => c.contact);
  const nearestWithout = last.find((c) => c.state === 'answered' && c.empty)?.contact;
  return { closest, values, nearestWithout, hops, asked, failed };
}
