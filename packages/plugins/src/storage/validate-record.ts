import type { Hint, StoredRecord, Version } from '@kvmesh/core';
import { KvError, isFieldValue, isVersion, isWellFormedKey } from '@kvmesh/core';

/**
 * Checks a key before it reaches a store.
 * @throws KvError KVMESH_ERR_STORAGE_KEY_INVALID for a non-string, a string with
 *   unpaired surrogates (UTF-8 cannot encode it, so two keys could collide), or
 *   one longer than `maxKeyBytes` in UTF-8.
 */
export function validateKey(key: unknown, maxKeyBytes = Infinity): string {
  if (!isWellFormedKey(key)) {
    throw new KvError(
      'KVMESH_ERR_STORAGE_KEY_INVALID',
      typeof key === 'string'
        ? 'the key contains an unpaired UTF-16 surrogate, which UTF-8 cannot encode'
        : `a key must be a string (found ${typeof key})`,
    );
  }
  if (maxKeyBytes !== Infinity && key.length > maxKeyBytes / 3) {
    const bytes = Buffer.byteLength(key, 'utf8');
    if (bytes > maxKeyBytes) {
      throw new KvError(
        'KVMESH_ERR_STORAGE_KEY_INVALID',
        `the key is ${bytes} bytes of UTF-8; this storage accepts at most ${maxKeyBytes}`,
        { details: { keyBytes: bytes, maxKeyBytes } },
      );
    }
  }
  return key;
}

/**
 * Checks the shape of a record given to `Storage.put`.
 * @throws KvError KVMESH_ERR_STORAGE_KEY_INVALID or KVMESH_ERR_STORAGE_RECORD_INVALID.
 */
export function validateRecord(record: StoredRecord, maxKeyBytes = Infinity): StoredRecord {
  if (typeof record !== 'object' || record === null) {
    throw new KvError('KVMESH_ERR_STORAGE_RECORD_INVALID', 'a record must be an object');
  }
  validateKey(record.key, maxKeyBytes);
  const invalid = (what: string): KvError =>
    new KvError('KVMESH_ERR_STORAGE_RECORD_INVALID', `record ${JSON.stringify(record.key)}: ${what}`);
  if (!(record.value instanceof Uint8Array)) throw invalid('value must be a Uint8Array');
  if (typeof record.contentType !== 'string') throw invalid('contentType must be a string');
  if (!isFieldValue(record.contentType)) throw invalid('contentType must be a valid HTTP field value (no line breaks)');
  if (typeof record.tombstone !== 'boolean') throw invalid('tombstone must be a boolean');
  if (!isVersion(record.version)) {
    throw invalid(`version is not valid: ${JSON.stringify(record.version)}`);
  }
  return record;
}

/**
 * Checks a hint given to `HintStore.add`: its record as `validateRecord` does,
 * its target as a non-empty key.
 * @throws KvError KVMESH_ERR_STORAGE_KEY_INVALID or KVMESH_ERR_STORAGE_RECORD_INVALID.
 */
export function validateHint(hint: Hint, maxKeyBytes = Infinity): Hint {
  if (typeof hint !== 'object' || hint === null) {
    throw new KvError('KVMESH_ERR_STORAGE_RECORD_INVALID', 'a hint must be an object');
  }
  validateTarget(hint.target);
  validateRecord(hint.record, maxKeyBytes);
  return hint;
}

/**
 * Checks the member id a hint is kept for.
 * @throws KvError KVMESH_ERR_STORAGE_RECORD_INVALID for an empty or non-string id.
 */
export function validateTarget(target: unknown): string {
  if (typeof target !== 'string' || target === '' || !isWellFormedKey(target)) {
    throw new KvError(
      'KVMESH_ERR_STORAGE_RECORD_INVALID',
      `a hint target must be a non-empty member id (found ${JSON.stringify(target)})`,
    );
  }
  return target;
}

/**
 * Checks the `upTo` version given to `purge` or `HintStore.remove`.
 * @throws KvError KVMESH_ERR_STORAGE_RECORD_INVALID.
 */
export function validateUpTo(upTo: Version): Version {
  if (!isVersion(upTo)) {
    throw new KvError('KVMESH_ERR_STORAGE_RECORD_INVALID', `upTo is not a valid version: ${JSON.stringify(upTo)}`);
  }
  return upTo;
}

/** A copy that shares nothing with the caller's record (a tombstone keeps no value bytes). */
export function copyRecord(record: StoredRecord): StoredRecord {
  return {
    key: record.key,
    value: record.tombstone ? new Uint8Array(0) : record.value.slice(),
    contentType: record.contentType,
    version: { wallMs: record.version.wallMs, logical: record.version.logical, node: record.version.node },
    tombstone: record.tombstone,
  };
}

/** Approximate bytes a record occupies: key, value, content type, version. */
export function recordBytes(record: StoredRecord): number {
  return (
    Buffer.byteLength(record.key, 'utf8') +
    record.value.byteLength +
    Buffer.byteLength(record.contentType, 'utf8') +
    Buffer.byteLength(record.version.node, 'utf8') +
    VERSION_FIXED_BYTES
  );
}

/** wallMs (6 bytes) + logical (2 bytes), as the lmdb encoding stores them. */
const VERSION_FIXED_BYTES = 8;
