import { KvError } from '@kvmesh/core';

/**
 * The key in a request path after `prefix` (`/d/`, `/keys/`): everything to
 * the end of the path, percent-decoded as UTF-8, slashes included (the
 * query string is not part of a Koa `ctx.path`).
 * @throws KvError KVMESH_ERR_KV_KEY_INVALID (empty: the message names the route),
 *   KVMESH_ERR_HTTP_BAD_REQUEST (malformed percent-encoding).
 */
export function keyAfter(path: string, prefix: string): string {
  const raw = path.slice(prefix.length);
  if (raw === '') throw new KvError('KVMESH_ERR_KV_KEY_INVALID', `the key is empty: use ${prefix}<key>`);
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new KvError(
      'KVMESH_ERR_HTTP_BAD_REQUEST',
      'the key is not valid percent-encoded UTF-8: encode it with encodeURIComponent',
    );
  }
}
