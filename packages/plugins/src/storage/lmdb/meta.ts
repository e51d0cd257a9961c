import type { RootDatabase } from 'lmdb';

/** The root database of the environment: metadata and records (see `lmdb-storage.ts` for its key space). */
export type Db = RootDatabase<Buffer, Buffer>;

/** First byte of every metadata key in the root database. */
export const META_PREFIX = 0x00;

/** The root-database key of the metadata entry `name`. */
export function metaKey(name: string): Buffer {
  return Buffer.concat([Buffer.from([META_PREFIX]), Buffer.from(name, 'utf8')]);
}

/** A counter entry (a float64); 0 when absent. */
export function readCounter(db: Db, key: Buffer): number {
  const bytes = db.getBinaryFast(key);
  return bytes === undefined ? 0 : bytes.readDoubleBE(0);
}

/** Adds `delta` to a counter entry; must run inside a write transaction. Never goes below 0. */
export function addToCounter(db: Db, key: Buffer, delta: number): void {
  if (delta === 0) return;
  const out = Buffer.allocUnsafe(8);
  out.writeDoubleBE(Math.max(0, readCounter(db, key) + delta), 0);
  db.putSync(key, out);
}
