/**
 * Positions on the identifier circle. An identifier is a lowercase hex string
 * of the metric's fixed width, so string order is numeric order and the hot
 * paths (interval tests, sorting) compare strings, never big integers.
 */
export type Ident = string;

/** x ∈ (a, b] on the circle; (a, a] is the whole circle (a ring of one node owns every key). */
export function inHalfOpen(x: Ident, a: Ident, b: Ident): boolean {
  if (a < b) return a < x && x <= b;
  if (a > b) return x > a || x <= b;
  return true;
}

/** x ∈ (a, b) on the circle; (a, a) is the whole circle but a. */
export function inOpen(x: Ident, a: Ident, b: Ident): boolean {
  if (a < b) return a < x && x < b;
  if (a > b) return x > a || x < b;
  return x !== a;
}

/**
 * A sort key giving clockwise order starting just after `origin`: `origin`
 * itself sorts last (a full turn away).
 */
export function clockwiseKey(x: Ident, origin: Ident): string {
  return x > origin ? `0${x}` : `1${x}`;
}

/** `(id + 2^i) mod 2^bits`, as an identifier of `digits` hex digits: the start of finger i. */
export function fingerStart(id: Ident, i: number, bits: number): Ident {
  const modulus = 1n << BigInt(bits);
  const value = (BigInt(`0x${id}`) + (1n << BigInt(i))) % modulus;
  return toIdent(value, bits);
}

/** The identifier of an integer below 2^bits. */
export function toIdent(value: bigint, bits: number): Ident {
  return value.toString(16).padStart(Math.ceil(bits / 4), '0');
}

/** The identifier right after `id` on the circle. */
export function nextIdent(id: Ident, bits: number): Ident {
  const modulus = 1n << BigInt(bits);
  return toIdent((BigInt(`0x${id}`) + 1n) % modulus, bits);
}
