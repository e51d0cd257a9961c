import type { WriteConditions } from '../contracts/kv.js';
import { KvError } from '../errors.js';
import { isWellFormedKey } from './key-order.js';

/** The limits a KV operation is checked against before any work is done. */
export interface KvLimits {
  /** Longest key in UTF-8 bytes. */
  readonly maxKeyBytes: number;
  /** Largest value in bytes. */
  readonly maxValueBytes: number;
}

/**
 * Longest Content-Type kept with a value, in UTF-8 bytes. RFC 6838 §4.2
 * allows 127 characters each for type and subtype; the rest is room for
 * parameters (charset, boundary).
 */
export const MAX_CONTENT_TYPE_BYTES = 1024;

/** Longest `If-Match` string looked at; a version string is far shorter (`formatVersion`). */
export const MAX_CONDITION_CHARS = 1024;

/** Messages quote at most this much of a key, so a 1 MiB key cannot flood a log line. */
const QUOTED_KEY_CHARS = 64;

/**
 * Checks a key: a non-empty string, well-formed UTF-16 (no lone surrogate,
 * which UTF-8 cannot encode), at most `maxKeyBytes` in UTF-8.
 * @throws KvError KVMESH_ERR_KV_KEY_INVALID or KVMESH_ERR_KV_KEY_TOO_LONG.
 */
export function checkKey(key: unknown, limits: KvLimits): string {
  if (typeof key !== 'string') {
    throw new KvError('KVMESH_ERR_KV_KEY_INVALID', `a key must be a string (found ${typeof key})`);
  }
  if (key === '') throw new KvError('KVMESH_ERR_KV_KEY_INVALID', 'a key must not be empty');
  if (!isWellFormedKey(key)) {
    throw new KvError(
      'KVMESH_ERR_KV_KEY_INVALID',
      `key ${quoteKey(key)} contains an unpaired UTF-16 surrogate, which UTF-8 cannot encode`,
    );
  }
  // A UTF-16 code unit is at most 3 UTF-8 bytes, so short keys skip the count.
  if (key.length * 3 > limits.maxKeyBytes) {
    const bytes = Buffer.byteLength(key, 'utf8');
    if (bytes > limits.maxKeyBytes) {
      throw new KvError(
        'KVMESH_ERR_KV_KEY_TOO_LONG',
        `key ${quoteKey(key)} is ${bytes} bytes of UTF-8; the limit is ${limits.maxKeyBytes} (limits.maxKeyBytes)`,
        { details: { keyBytes: bytes, maxKeyBytes: limits.maxKeyBytes } },
      );
    }
  }
  return key;
}

/**
 * Checks a value: bytes, at most `maxValueBytes`.
 * @throws KvError KVMESH_ERR_KV_VALUE_TOO_LARGE or KVMESH_ERR_KV_REQUEST_INVALID.
 */
export function checkValue(value: unknown, limits: KvLimits): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new KvError('KVMESH_ERR_KV_REQUEST_INVALID', 'a value must be a Uint8Array');
  }
  if (value.byteLength > limits.maxValueBytes) {
    throw new KvError(
      'KVMESH_ERR_KV_VALUE_TOO_LARGE',
      `the value is ${value.byteLength} bytes; the limit is ${limits.maxValueBytes} (limits.maxValueBytes)`,
      { details: { valueBytes: value.byteLength, maxValueBytes: limits.maxValueBytes } },
    );
  }
  return value;
}

/**
 * What an HTTP field value may hold (RFC 9110 §5.5: visible characters,
 * spaces, tabs, obs-text), as node:http checks it: a content type is sent
 * back as a header, and one with a line break would make every read of its
 * key fail.
 */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** True when `contentType` can be sent as a `Content-Type` header as it is. */
export function isFieldValue(contentType: string): boolean {
  return FIELD_VALUE.test(contentType);
}

/**
 * Checks a content type: text that is a valid HTTP field value, of at most
 * MAX_CONTENT_TYPE_BYTES. Every record a node stores is checked, whoever
 * coordinates (a client's write, a replica write, a forwarded write).
 * @throws KvError KVMESH_ERR_KV_REQUEST_INVALID.
 */
export function checkContentType(contentType: unknown): string {
  if (typeof contentType !== 'string' || !isWellFormedKey(contentType)) {
    throw new KvError('KVMESH_ERR_KV_REQUEST_INVALID', 'a content type must be well-formed text');
  }
  if (!FIELD_VALUE.test(contentType)) {
    throw new KvError(
      'KVMESH_ERR_KV_REQUEST_INVALID',
      'a content type must be a valid HTTP field value: no line breaks or other control characters',
    );
  }
  if (contentType.length * 3 > MAX_CONTENT_TYPE_BYTES && Buffer.byteLength(contentType) > MAX_CONTENT_TYPE_BYTES) {
    throw new KvError(
      'KVMESH_ERR_KV_REQUEST_INVALID',
      `a content type may be at most ${MAX_CONTENT_TYPE_BYTES} bytes (found ${Buffer.byteLength(contentType)})`,
    );
  }
  return contentType;
}

/**
 * Checks the shape of write conditions (not whether they hold).
 * @throws KvError KVMESH_ERR_KV_REQUEST_INVALID.
 */
export function checkConditions(conditions: unknown): WriteConditions | undefined {
  if (conditions === undefined || conditions === null) return undefined;
  if (typeof conditions !== 'object') {
    throw new KvError('KVMESH_ERR_KV_REQUEST_INVALID', 'write conditions must be an object');
  }
  const { ifMatch, ifNoneMatch } = conditions as { ifMatch?: unknown; ifNoneMatch?: unknown };
  if (ifMatch !== undefined && (typeof ifMatch !== 'string' || ifMatch.length > MAX_CONDITION_CHARS)) {
    throw new KvError(
      'KVMESH_ERR_KV_REQUEST_INVALID',
      `ifMatch must be a version string of at most ${MAX_CONDITION_CHARS} characters`,
    );
  }
  if (ifNoneMatch !== undefined && ifNoneMatch !== '*') {
    throw new KvError(
      'KVMESH_ERR_KV_REQUEST_INVALID',
      `ifNoneMatch must be '*' (found ${JSON.stringify(ifNoneMatch)})`,
    );
  }
  return conditions as WriteConditions;
}

/** A key for a message: JSON-quoted, shortened when long. */
export function quoteKey(key: string): string {
  return JSON.stringify(key.length > QUOTED_KEY_CHARS ? `${key.slice(0, QUOTED_KEY_CHARS)}…` : key);
}
