import { hash } from 'node:crypto';
import xxhash from 'xxhash-wasm';

/** A key's position in the 32-bit hash space: an unsigned integer below 2^32. */
export type KeyHash = (key: string) => number;

/**
 * Hash functions a placement may place keys with:
 * - `xxhash32`: xxHash32 (seed 0) of the UTF-8 bytes; fast, the default.
 * - `sha1`, `md5`: the first 4 bytes, big-endian, of the digest; slower,
 *   for fidelity with stores that place keys by a cryptographic digest.
 */
export const HASH_NAMES = ['xxhash32', 'sha1', 'md5'] as const;
export type HashName = (typeof HASH_NAMES)[number];

let xxhashReady: Promise<KeyHash> | undefined;

/**
 * The hash function `name`. xxhash32 compiles a WebAssembly module once per
 * process (asynchronously), so this is awaited in a plugin's factory and the
 * returned function is synchronous on the request path.
 */
export function loadHash(name: HashName): Promise<KeyHash> {
  if (name === 'xxhash32') {
    xxhashReady ??= xxhash().then(
      ({ h32 }) =>
        (key: string) =>
          h32(key, 0) >>> 0,
    );
    return xxhashReady;
  }
  return Promise.resolve(digestHash(name));
}

/** The first 32 bits of a node:crypto digest of the key. */
export function digestHash(algorithm: 'sha1' | 'md5'): KeyHash {
  return (key) => hash(algorithm, key, 'buffer').readUInt32BE(0);
}

/**
 * MurmurHash3's 32-bit finaliser: spreads every input bit over the output.
 * Used to derive further independent-looking numbers from one hash (a
 * replica rotation, a rendezvous score) without hashing the key again.
 */
export function mix32(value: number): number {
  let x = value >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85eb_ca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2_ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Fraction of the 32-bit hash space that `width` consecutive positions cover. */
export function hashSpaceShare(width: number): number {
  return width / 2 ** 32;
}
