import type { StoredRecord, Version } from '@kvmesh/core';
import { KvError, isWellFormedKey } from '@kvmesh/core';

/**
 * On-disk layout of one record value (all integers big-endian):
 *
 * | offset | size | field                                              |
 * |--------|------|----------------------------------------------------|
 * | 0      | 1    | format version, `RECORD_FORMAT` (1)                |
 * | 1      | 1    | flags: bit 0 = tombstone, others reserved (0)      |
 * | 2      | 6    | version.wallMs (uint48)                            |
 * | 8      | 2    | version.logical (uint16)                           |
 * | 10     | 2    | n = byte length of version.node                    |
 * | 12     | n    | version.node, UTF-8                                |
 * | 12+n   | 2    | m = byte length of contentType                     |
 * | 14+n   | m    | contentType, UTF-8                                 |
 * | 14+n+m | rest | value bytes                                        |
 *
 * The key is not repeated: it is the lmdb key. A reader refuses a format
 * byte it does not know instead of guessing, so a newer layout can be added
 * as format 2 and both read side by side.
 */
export const RECORD_FORMAT = 1;

const FLAG_TOMBSTONE = 0x01;
const HEADER_BYTES = 12;
const MAX_FIELD_BYTES = 0xffff;

/** Longest field a FieldMemo remembers; node ids and content types are far shorter. */
const MEMO_MAX_BYTES = 256;

/**
 * The last text of one record field with its UTF-8 bytes. A store holds a few
 * node ids and content types over and over, so most reads compare a few bytes
 * instead of decoding a new string, and most writes reuse the bytes.
 */
class FieldMemo {
  #text = '';
  #bytes: Buffer = Buffer.alloc(0);

  decode(buf: Buffer, start: number, end: number): string {
    const length = end - start;
    const bytes = this.#bytes;
    if (bytes.length === length) {
      let i = 0;
      while (i < length && bytes[i] === buf[start + i]) i++;
      if (i === length) return this.#text;
    }
    const text = buf.toString('utf8', start, end);
    if (length <= MEMO_MAX_BYTES) {
      this.#bytes = Buffer.from(text, 'utf8');
      this.#text = text;
    }
    return text;
  }

  /** The UTF-8 bytes of `text`; read them, never write them. */
  encode(text: string): Buffer {
    if (text === this.#text) return this.#bytes;
    const bytes = Buffer.from(text, 'utf8');
    // A lone surrogate is written as U+FFFD, so such a text does not come back
    // from its bytes and must not be remembered as their text.
    if (bytes.length <= MEMO_MAX_BYTES && isWellFormedKey(text)) {
      this.#bytes = bytes;
      this.#text = text;
    }
    return bytes;
  }
}

const nodeMemo = new FieldMemo();
const contentTypeMemo = new FieldMemo();

/** Encodes everything but the key. */
export function encodeRecord(record: StoredRecord): Buffer {
  const node = nodeMemo.encode(record.version.node);
  const contentType = contentTypeMemo.encode(record.contentType);
  if (node.length > MAX_FIELD_BYTES || contentType.length > MAX_FIELD_BYTES) {
    throw new KvError(
      'KVMESH_ERR_STORAGE_RECORD_INVALID',
      `record ${JSON.stringify(record.key)}: node id and content type must each be at most ${MAX_FIELD_BYTES} bytes`,
    );
  }
  const value = record.tombstone ? EMPTY : record.value;
  const out = Buffer.allocUnsafe(HEADER_BYTES + node.length + 2 + contentType.length + value.byteLength);
  out[0] = RECORD_FORMAT;
  out[1] = record.tombstone ? FLAG_TOMBSTONE : 0;
  out.writeUIntBE(record.version.wallMs, 2, 6);
  out.writeUInt16BE(record.version.logical, 8);
  out.writeUInt16BE(node.length, 10);
  node.copy(out, HEADER_BYTES);
  let at = HEADER_BYTES + node.length;
  out.writeUInt16BE(contentType.length, at);
  contentType.copy(out, at + 2);
  at += 2 + contentType.length;
  out.set(value, at);
  return out;
}

/** The version and tombstone flag only, without copying the value. */
export function decodeHead(key: string, bytes: Uint8Array): { version: Version; tombstone: boolean } {
  const buf = asBuffer(bytes);
  checkHeader(key, buf);
  const nodeLength = buf.readUInt16BE(10);
  if (HEADER_BYTES + nodeLength + 2 > buf.length) throw corrupt(key, 'truncated node id');
  return {
    version: {
      wallMs: buf.readUIntBE(2, 6),
      logical: buf.readUInt16BE(8),
      node: nodeMemo.decode(buf, HEADER_BYTES, HEADER_BYTES + nodeLength),
    },
    tombstone: (buf[1]! & FLAG_TOMBSTONE) !== 0,
  };
}

/**
 * A full record; the value is copied, so it outlives lmdb's reusable read
 * buffer. That buffer's `length` property says how much of it holds this
 * record (its typed-array length is the whole buffer), so every bound here
 * comes from `length`.
 */
export function decodeRecord(key: string, bytes: Uint8Array): StoredRecord {
  const buf = asBuffer(bytes);
  const head = decodeHead(key, buf);
  const nodeLength = buf.readUInt16BE(10);
  let at = HEADER_BYTES + nodeLength;
  const contentTypeLength = buf.readUInt16BE(at);
  at += 2;
  if (at + contentTypeLength > buf.length) throw corrupt(key, 'truncated content type');
  const contentType = contentTypeMemo.decode(buf, at, at + contentTypeLength);
  at += contentTypeLength;
  // allocUnsafe takes small values from Node's buffer pool: a third of the
  // cost of a typed-array slice, which allocates a backing store of its own.
  const value = Buffer.allocUnsafe(buf.length - at);
  buf.copy(value, 0, at, buf.length);
  return {
    key,
    value,
    contentType,
    version: head.version,
    tombstone: head.tombstone,
  };
}

const EMPTY = new Uint8Array(0);

function checkHeader(key: string, buf: Buffer): void {
  if (buf.length < HEADER_BYTES) throw corrupt(key, `only ${buf.length} bytes`);
  if (buf[0] !== RECORD_FORMAT) {
    throw corrupt(
      key,
      `unknown record format ${buf[0]} (this kvmesh reads format ${RECORD_FORMAT}; a newer one wrote it?)`,
    );
  }
  if ((buf[1]! & ~FLAG_TOMBSTONE) !== 0) throw corrupt(key, `unknown flags 0x${buf[1]!.toString(16)}`);
}

function corrupt(key: string, what: string): KvError {
  return new KvError('KVMESH_ERR_STORAGE_CORRUPT', `lmdb record ${JSON.stringify(key)} cannot be read: ${what}`);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
