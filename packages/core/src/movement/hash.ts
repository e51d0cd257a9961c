import type { Member, ViewParameters } from '../contracts/membership.js';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
/** A second offset basis, for a hash independent enough of the first to pair with it. */
const FNV_OFFSET_ALT = 0x050c5d1f;

/**
 * FNV-1a, 32 bits, over the UTF-16 code units of `text` (identical on every
 * node, whatever its platform). Not cryptographic: it spreads keys over
 * buckets and fingerprints views, where an adversary gains nothing.
 */
export function fnv1a32(text: string, offset: number = FNV_OFFSET): number {
  let h = offset;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

const NO_PARAMETERS: ViewParameters = Object.freeze({});

/** True for the states in which a member holds data and answers: alive, or suspect (it may refute). */
export function isPresent(member: Member): boolean {
  return member.state === 'alive' || member.state === 'suspect';
}

/**
 * A short fingerprint of a member view: the sorted ids of its present
 * members (alive or suspect) and of its dead ones, marked as such, hashed
 * twice. Dead members count because placement keeps them as replicas until
 * they leave or are forgotten, so a view where a dead member is gone plans
 * other owners than one where it is still listed; left members are left
 * out, as placement leaves them out. Two nodes whose placements see the
 * same members, and the same of them present, have the same fingerprint,
 * whatever incarnations, meta or suspicion they see; it tells an old owner's
 * "nothing left for you" apart from an answer given for another view.
 * The view's parameters (`Membership.viewParameters`) count too, since they
 * change where keys live; a view without any fingerprints as before.
 */
export function viewFingerprint(members: readonly Member[], parameters: ViewParameters = NO_PARAMETERS): string {
  const named = Object.keys(parameters)
    .sort()
    .map((k) => `\u0002${k}=${String(parameters[k])}`);
  const ids = [
    ...members.flatMap((m) => (isPresent(m) ? [m.id] : m.state === 'dead' ? [`${m.id}\u0001dead`] : [])).sort(),
    ...named,
  ].join('\u0000');
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  return hex(fnv1a32(ids)) + hex(fnv1a32(ids, FNV_OFFSET_ALT));
}
