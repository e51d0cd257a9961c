import type { StoredRecord, Version } from '@kvmesh/core';
import { KvError } from '@kvmesh/core';

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

/** Encodes everything but the key. */
export function encodeRecord(record: StoredRecord): Buffer {
  const node = Buffer.from(record.version.node, 'utf8');
  const contentType = Buffer.from(record.contentType, 'utf8');
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
      node: buf.toString('utf8', HEADER_BYTES, HEADER_BYTES + nodeLength),
    },
    tombstone: (buf[1]! & FLAG_TOMBSTONE) !== 0,
  };
}

/** A full record; the value is copied, so it outlives lmdb's reusable buffers. */
export function decodeRecord(key: string, bytes: Uint8Array): StoredRecord {
  const buf = asBuffer(bytes);
  const head = decodeHead(key, buf);
  const nodeLength = buf.readUInt16BE(10);
  let at = HEADER_BYTES + nodeLength;
  const contentTypeLength = buf.readUInt16BE(at);
  at += 2;
  if (at + contentTypeLength > buf.length) throw corrupt(key, 'truncated content type');
  const contentType = buf.toString('utf8', at, at + contentTypeLength);
  at += contentTypeLength;
  return {
    key,
    value: Uint8Array.prototype.slice.call(buf, at),
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
