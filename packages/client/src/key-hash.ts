import { hash } from 'node:crypto';
import xxhash from 'xxhash-wasm';

/** A key's position in the 32-bit hash space a routing table names. */
export type KeyHash = (key: string) => number;

/** The hash names a routing table may use (`GET /v1/cluster/routes`, docs/client.md). */
export const KEY_HASHES = ['xxhash32', 'sha1', 'md5'] as const;
export type KeyHashName = (typeof KEY_HASHES)[number];

let xxhashReady: Promise<KeyHash> | undefined;

/**
 * The hash function `name` over the key's UTF-8 bytes: xxHash32 with seed 0,
 * or the first 4 bytes of a SHA-1 or MD5 digest read big-endian. xxhash32
 * compiles its WebAssembly module once per process, hence the promise.
 */
export function loadKeyHash(name: KeyHashName): Promise<KeyHash> {
  if (name === 'xxhash32') {
    xxhashReady ??= xxhash().then(
      ({ h32 }) =>
        (key: string) =>
          h32(key, 0) >>> 0,
    );
    return xxhashReady;
  }
  return Promise.resolve((key: string) => hash(name, key, 'buffer').readUInt32BE(0));
}

/** MurmurHash3's 32-bit finaliser (fmix32), which a table with `order: 'fmix32'` rotates replica lists by. */
export function fmix32(value: number): number {
  let x = value >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85eb_ca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2_ae35);
  x ^= x >>> 16;
  return x >>> 0;
}
