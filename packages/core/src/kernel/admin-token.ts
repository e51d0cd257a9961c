import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, timingSafeEqual } from 'node:crypto';
import { KvError } from '../errors.js';

/**
 * The admin token a client request brought, carried alongside the work that
 * request causes, so the one place that checks it (the `cluster`
 * component's admin operations) needs no help from the route that led there:
 * the native API's and every facade's are covered alike.
 */
const presented = new AsyncLocalStorage<string | undefined>();

/**
 * Runs `serve` (one client request, and everything it awaits) with `token`
 * as the admin token it presented. The host calls it for each HTTP request,
 * with the token of its `Authorization: Bearer` header (or undefined).
 */
export function withAdminToken<T>(token: string | undefined, serve: () => T): T {
  return presented.run(token, serve);
}

/** The token of `Authorization: Bearer <token>`, or undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  return match?.[1];
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * Refuses an admin operation unless `expected` (the configured token) is
 * unset or the request being served presented it; compared in constant time.
 * @throws KvError KVMESH_ERR_ADMIN_UNAUTHORIZED
 */
export function requireAdminToken(expected: string | undefined, what: string): void {
  if (expected === undefined || expected === '') return;
  const token = presented.getStore();
  if (token !== undefined && timingSafeEqual(digest(token), digest(expected))) return;
  throw new KvError(
    'KVMESH_ERR_ADMIN_UNAUTHORIZED',
    `${what} needs this cluster's admin token: send it as 'Authorization: Bearer <token>'; nothing was changed`,
  );
}
