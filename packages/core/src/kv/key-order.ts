/**
 * Compares two keys in the byte order of their UTF-8 encodings (the order
 * every Storage scans in), without encoding them. UTF-16 code unit order
 * differs from it only when a surrogate pair (a code point above U+FFFF)
 * meets a code unit in U+E000..U+FFFF, so the first differing units are
 * remapped to put surrogates above that block.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return rank(x) - rank(y);
  }
  return a.length - b.length;
}

function rank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}

// In `u` mode this matches only unpaired surrogates, which UTF-8 cannot encode.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** True when `key` is a string that UTF-8 can encode (no unpaired surrogates). */
export function isWellFormedKey(key: unknown): key is string {
  return typeof key === 'string' && !LONE_SURROGATE.test(key);
}
