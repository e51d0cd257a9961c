/** Parsing and answers shared by the key routes: the key from the path, condition headers, errors. */
import type { IncomingHttpHeaders } from 'node:http';
import { KvError, parseVersion } from '@kvmesh/core';
import type { WriteConditions } from '@kvmesh/core';

/** Every key route starts with this; the rest of the path (before `?`) is the percent-encoded key. */
export const KV_PREFIX = '/v1/kv/';
/** The route template, as in the OpenAPI document and the metrics. */
export const KV_ROUTE = '/v1/kv/{key}';
export const KV_METHODS = 'GET, HEAD, PUT, DELETE';
/** The operations of KV_ROUTE, for the OpenAPI check (the route is served before the router). */
export const KV_OPERATIONS: readonly string[] = KV_METHODS.split(', ').map((method) => `${method} ${KV_ROUTE}`);

// Printable ASCII only: anything else in a path must be percent-encoded.
const RAW_PATH = /^[\x21-\x7e]*$/;

/**
 * The key of a `/v1/kv/...` URL: everything after the prefix up to `?`,
 * percent-decoded as UTF-8. `/` is part of the key (`/v1/kv/a/b` is key `a/b`).
 * @throws KvError KVMESH_ERR_HTTP_BAD_REQUEST for raw non-ASCII bytes or malformed percent-encoding.
 */
export function keyOf(url: string): string {
  const query = url.indexOf('?', KV_PREFIX.length);
  const raw = query < 0 ? url.slice(KV_PREFIX.length) : url.slice(KV_PREFIX.length, query);
  if (!RAW_PATH.test(raw)) {
    throw new KvError(
      'KVMESH_ERR_HTTP_BAD_REQUEST',
      'the key in the path must be percent-encoded UTF-8 (no raw spaces or non-ASCII bytes)',
    );
  }
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new KvError(
      'KVMESH_ERR_HTTP_BAD_REQUEST',
      'the key in the path has malformed percent-encoding (use %XX escapes of UTF-8 bytes)',
    );
  }
}

/**
 * Write conditions from `If-Match` (`*`: the key exists, or one entity tag, quoted or bare) and
 * `If-None-Match: *` (create-only, when `allowNoneMatch`).
 * @throws KvError KVMESH_ERR_HTTP_BAD_REQUEST for forms the API does not support;
 *   KVMESH_ERR_VERSION_INVALID for an entity tag that is not a version the server could have sent.
 */
export function writeConditions(headers: IncomingHttpHeaders, allowNoneMatch: boolean): WriteConditions | undefined {
  const ifMatch = headers['if-match'];
  const ifNoneMatch = headers['if-none-match'];
  if (ifMatch === undefined && ifNoneMatch === undefined) return undefined;
  const conditions: { ifMatch?: string; ifNoneMatch?: '*' } = {};
  if (ifMatch !== undefined) {
    const tag = ifMatch.trim();
    if (tag.includes(',') || tag.startsWith('W/')) {
      throw new KvError(
        'KVMESH_ERR_HTTP_BAD_REQUEST',
        'If-Match must be * or a single strong entity tag as returned in ETag (lists and weak tags are not supported)',
      );
    }
    const version = unquote(tag);
    if (version !== '*') checkVersionTag(version);
    conditions.ifMatch = version;
  }
  if (ifNoneMatch !== undefined) {
    if (!allowNoneMatch || ifNoneMatch.trim() !== '*') {
      throw new KvError(
        'KVMESH_ERR_HTTP_BAD_REQUEST',
        allowNoneMatch ? 'If-None-Match on PUT must be * (create only)' : 'If-None-Match is not supported on DELETE',
      );
    }
    conditions.ifNoneMatch = '*';
  }
  return conditions;
}

/** Whether an `If-None-Match` list (`*`, or entity tags, weak or strong) names `etag` (weak comparison, RFC 9110 §13.1.2). */
export function etagListMatches(list: string, etag: string): boolean {
  for (const item of list.split(',')) {
    const tag = item.trim();
    if (tag === '*' || tag === etag || (tag.startsWith('W/') && tag.slice(2) === etag)) return true;
  }
  return false;
}

/** Longest If-Match entity tag looked at: a version is far shorter (a node id is at most 128 characters). */
const MAX_TAG_CHARS = 1024;

function checkVersionTag(tag: string): void {
  try {
    if (tag.length > MAX_TAG_CHARS) throw new Error('too long');
    parseVersion(tag);
  } catch {
    const shown = tag.length > 64 ? `${tag.slice(0, 64)}…` : tag;
    throw new KvError(
      'KVMESH_ERR_VERSION_INVALID',
      `If-Match ${JSON.stringify(shown)} is not a version: send * or an ETag exactly as the server returned it (<12 hex>-<4 hex>-<node id>)`,
    );
  }
}

function unquote(tag: string): string {
  return tag.length >= 2 && tag.startsWith('"') && tag.endsWith('"') ? tag.slice(1, -1) : tag;
}

export function keyNotFound(key: string): KvError {
  const shown = key.length > 64 ? `${key.slice(0, 64)}…` : key;
  return new KvError('KVMESH_ERR_HTTP_KEY_NOT_FOUND', `key ${JSON.stringify(shown)} does not exist`);
}

/** `why`: what the node is doing instead of serving (default: starting or shutting down). */
export function notReady(why = 'starting or shutting down'): KvError {
  return new KvError(
    'KVMESH_ERR_HTTP_NOT_READY',
    `the node is not ready (${why}); retry when GET /v1/ready answers 200`,
  );
}
