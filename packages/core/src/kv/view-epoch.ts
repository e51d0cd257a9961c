const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * The epoch of a placement view: a 32-bit FNV-1a hash of the sorted ids of
 * the members that hold data, never 0 (0 means "unknown" on the wire). Every
 * node that sees the same data members computes the same epoch, so a
 * replica can tell a coordinator that located a key in another view.
 */
export function viewEpoch(ids: Iterable<string>): number {
  const sorted = [...ids].sort();
  let h = FNV_OFFSET;
  for (const id of sorted) {
    for (let i = 0; i < id.length; i++) {
      h ^= id.charCodeAt(i);
      h = Math.imul(h, FNV_PRIME);
    }
    // A separator no id contains, so ["ab"] and ["a", "b"] differ.
    h ^= 0xffff;
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0 || 1;
}
