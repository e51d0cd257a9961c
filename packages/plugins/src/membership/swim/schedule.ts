/**
 * Scheduled probe rounds.
 *
 * SWIM's randomized round-robin bounds how long until every member has
 * probed a given one, not how long until the first does: the first ping of
 * a crashed member is the earliest of N − 1 members' next pings, and the
 * wait W for it is about exponential with a mean of one protocol period,
 * whatever the order (docs/membership.md). Its tail is what makes a crash
 * take T + 7 periods to be seen dead by everybody now and then.
 *
 * So every `scheduledRoundEvery`-th protocol period, counted on the clock
 * (period index r = floor(now / probeIntervalMs), scheduled when
 * r mod every = 0), is a scheduled round: instead of the next member of its
 * round-robin order, each member probes its successor on a ring of the live
 * members ordered by a hash of (id, permutation epoch). Every member derives
 * the same ring from its own list, so while lists and clocks agree the
 * round probes every member exactly once, by the same member at the same
 * moment of each period for a whole epoch: a crashed member is pinged at
 * least once every `every` periods, W ≤ every periods. The message count is
 * that of any other round.
 *
 * A ring (rather than a shift of the sorted list) keeps disagreements local:
 * a member missing from one list changes the successor of its ring
 * predecessor only. Suspects take several places, new every round (ringPlaces). Where lists or clocks disagree more, members pick other
 * successors than their peers: some members are probed twice in the round
 * and some not at all, as in a random round, but every member still probes
 * somebody. The round-robin order resumes in the next round where it left
 * off, so its bound of 2N − 1 rounds still holds, counted in unscheduled
 * rounds.
 */

/**
 * Scheduled rounds one permutation lasts. Within an epoch a member is
 * probed by the same member at the same point of its period, exactly
 * `every` periods apart; a new permutation each round would put the next
 * scheduled ping anywhere in its period, up to `every` + 1 periods later.
 * A new epoch now and then gives each member other probers, so a live but
 * slow or badly connected prober does not shadow the same member for long.
 */
export const ROUNDS_PER_PERMUTATION = 8;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
/** Spreads epoch 0, 1, 2... apart before they are mixed in (2^32 / golden ratio). */
const EPOCH_STEP = 0x9e3779b9;

/** FNV-1a, 32 bits, over the UTF-16 code units of `text`: the same on every node. */
export function idHash(text: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

/** MurmurHash3's 32-bit finaliser: every input bit reaches every output bit. */
function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A member's position on the ring of `epoch`, from its `idHash`. */
export function ringKey(hash: number, epoch: number): number {
  return fmix32(hash ^ fmix32(Math.imul(epoch, EPOCH_STEP) + 1));
}

/** A scheduled round: its period index and the epoch of its permutation. */
export interface ScheduledRound {
  readonly round: number;
  readonly epoch: number;
}

/**
 * The scheduled round of the period that contains `now`, or undefined when
 * that period is a round-robin one (always when `every` is 0: scheduled
 * rounds off).
 */
export function scheduledRound(now: number, periodMs: number, every: number): ScheduledRound | undefined {
  if (every < 1) return undefined;
  const round = Math.floor(now / periodMs);
  const span = every * ROUNDS_PER_PERMUTATION;
  // The period before an epoch's first scheduled round is one too, on the new ring: a new permutation puts a
  // member's prober anywhere in its period, and this keeps the gap from its last ping on the old ring within
  // `every` periods.
  const last = every > 1 && mod(round + 1, span) === 0;
  if (mod(round, every) !== 0 && !last) return undefined;
  return { round, epoch: Math.floor((round + 1) / span) };
}

/**
 * Places a suspect takes on the ring of each round: the members before
 * them probe it, each another member drawn anew every round, so a suspect
 * gets about as many independent probes (Lifeguard's confirmations) in a
 * scheduled round as in three random ones. Each place keeps the member
 * after it from its scheduled probe for that round, a different one every
 * round.
 */
export const SUSPECT_PLACES = 3;

/**
 * The places of a member on the ring of `at`: an alive member one place
 * for the whole epoch, a suspect SUSPECT_PLACES places drawn anew every
 * round. The same prober failing again every round would add no
 * independent confirmation (the suspect needs them to be declared dead in
 * T, and members that count too few by then hold it dead only when gossip
 * brings them the death); drawn anew, a suspect's scheduled probers are
 * other members each time, and a crashed suspect keeps other members from
 * their scheduled probe each round rather than the same one until it is
 * declared dead.
 * @returns the places' ring keys; `into` is reused to spare an allocation per member.
 */
export function ringPlaces(hash: number, suspect: boolean, at: ScheduledRound, into: number[]): number[] {
  into.length = 0;
  if (!suspect) {
    into.push(ringKey(hash, at.epoch));
    return into;
  }
  for (let i = 0; i < SUSPECT_PLACES; i++) into.push(ringKey(hash, -1 - (at.round * SUSPECT_PLACES + i)));
  return into;
}

const mod = (a: number, b: number): number => ((a % b) + b) % b;
