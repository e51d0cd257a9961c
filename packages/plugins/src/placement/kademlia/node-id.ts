import { createHash } from 'node:crypto';

/** Bits of a Kademlia id: SHA-256 (the paper uses 160-bit SHA-1; KeyShift's ids are 256-bit). */
export const ID_BITS = 256;
/** Bytes of a Kademlia id. */
export const ID_BYTES = ID_BITS / 8;

const UTF8 = new TextEncoder();

/** The 256-bit id of a text (a member id or a key): SHA-256 of its UTF-8 bytes. */
export function idOf(text: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(UTF8.encode(text)).digest());
}

/** The id as 64 lowercase hex digits, for logs and `describe()`. */
export function hexOf(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
}

/**
 * Compares the XOR distances of `a` and `b` to `target`: negative when `a`
 * is closer, positive when `b` is, 0 when they are the same id.
 */
export function compareDistance(a: Uint8Array, b: Uint8Array, target: Uint8Array): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const da = a[i]! ^ target[i]!;
    const db = b[i]! ^ target[i]!;
    if (da !== db) return da - db;
  }
  return 0;
}

/**
 * Length of the common prefix of `a` and `b` in bits (0..256): the index of
 * the k-bucket `b` falls into in the routing table of `a`. 256 means equal.
 */
export function commonPrefixBits(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const x = a[i]! ^ b[i]!;
    if (x !== 0) return i * 8 + Math.clz32(x) - 24;
  }
  return ID_BITS;
}

/** True when both ids are equal. */
export function sameId(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < ID_BYTES; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A random id whose common prefix with `self` is exactly `prefix` bits: an
 * id in the range of k-bucket `prefix`, for a bucket refresh (paper §2.3).
 * `bytes` are the random bytes to draw the rest from (ID_BYTES of them).
 */
export function idInBucket(self: Uint8Array, prefix: number, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(ID_BYTES);
  for (let bit = 0; bit < ID_BITS; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    let value: number;
    if (bit < prefix) value = self[byte]! & mask;
    else if (bit === prefix) value = ~self[byte]! & mask;
    else value = bytes[byte]! & mask;
    out[byte] = out[byte]! | value;
  }
  return out;
}
