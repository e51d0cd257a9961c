import { KvError } from '@kvmesh/core';
import type { Facade, FacadeFailure, FacadeHttp, FacadeOpenApi, KvService } from '@kvmesh/core';
import type { Context, Middleware, Next } from 'koa';
import { KEYSHIFT_OPENAPI } from './openapi.js';
import { PROBLEM_TYPE, problemOf } from './problem-details.js';
import type { OwnPortOptions } from '../support/own-port.js';
import { keyAfter } from '../support/path-key.js';

/** Where the facade answers: a port of its own, or (null) the node's API port. */
export type KeyShiftOptions = OwnPortOptions;

export interface KeyShiftComponents {
  readonly kv: KvService;
}

/** Where KeyShift's keys live: `[Route("keys")]`, `[HttpGet("{key}")]`, `[HttpPut("{key}")]` (seed 000's client API). */
export const KEYSHIFT_PREFIX = '/keys/';
/** The methods of `/keys/<key>`; HEAD is a GET without the bytes. */
export const KEYSHIFT_METHODS = 'GET, HEAD, PUT';
/** KeyShift values are bytes: they are stored, and answered, as this. */
const BYTES_TYPE = 'application/octet-stream';
/** Messages quote at most this much of a key. */
const QUOTED_KEY_CHARS = 64;
/** Seconds a client is told to wait before retrying a 503 (a frozen key, a node starting). */
const RETRY_AFTER_S = '1';

/**
 * The KeyShift client API (seed 000): `PUT /keys/<key>` with the value bytes
 * as the body answers 200 with no body, `GET /keys/<key>` answers 200 with
 * the bytes as `application/octet-stream`, or 404. Both go through the
 * node's KV service, so under placement kademlia in mode shift the key moves
 * to the node that was asked. The seed's host-to-host requests (freeze, and
 * DELETE with the freeze token) are the placement's own messages here, not
 * HTTP. Failures are RFC 9457 problem details with the KVMESH_ERR_* code as
 * the extension member `code`.
 */
export class KeyShiftFacade implements Facade {
  readonly port?: number;
  readonly host?: string;
  readonly #kv: KvService;

  constructor(components: KeyShiftComponents, options: KeyShiftOptions) {
    this.#kv = components.kv;
    if (options.port !== null) this.port = options.port;
    if (options.host !== null) this.host = options.host;
  }

  routes(http: FacadeHttp): Middleware {
    return async (ctx: Context, next: Next): Promise<void> => {
      if (!ctx.path.startsWith(KEYSHIFT_PREFIX)) return next();
      switch (ctx.method) {
        case 'GET':
        case 'HEAD':
          return this.#get(ctx, keyOf(ctx.path));
        case 'PUT': {
          // The key is checked before the body is read: a bad key costs no upload.
          const key = checkKeyLength(keyOf(ctx.path), http.maxKeyBytes);
          return this.#put(ctx, key, await http.readBody(ctx));
        }
        default:
          ctx.set('Allow', KEYSHIFT_METHODS);
          throw new KvError(
            'KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED',
            `${ctx.method} is not allowed on ${KEYSHIFT_PREFIX}<key>; use ${KEYSHIFT_METHODS}`,
          );
      }
    };
  }

  async #get(ctx: Context, key: string): Promise<void> {
    const { record } = await this.#kv.get(key);
    if (record === undefined) throw new KvError('KVMESH_ERR_HTTP_KEY_NOT_FOUND', `key ${quote(key)} not found`);
    ctx.status = 200;
    ctx.set('Content-Type', BYTES_TYPE);
    ctx.body = Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength);
  }

  async #put(ctx: Context, key: string, value: Buffer): Promise<void> {
    await this.#kv.put(key, value, BYTES_TYPE);
    // KeyShift answers a write with its status alone: 200, no body, no Content-Type.
    ctx.status = 200;
    ctx.body = '';
    ctx.remove('Content-Type');
  }

  error(ctx: Context, failure: FacadeFailure): void {
    ctx.status = failure.status;
    if (failure.status === 503) ctx.set('Retry-After', RETRY_AFTER_S);
    ctx.set('Content-Type', PROBLEM_TYPE);
    ctx.body = JSON.stringify(problemOf(failure.status, failure.code, failure.message));
  }

  openapi(): FacadeOpenApi {
    return KEYSHIFT_OPENAPI;
  }

  examples(baseUrl: string): readonly string[] {
    return [`curl -i -X PUT --data-binary 'hello' ${baseUrl}/keys/greeting`, `curl -i ${baseUrl}/keys/greeting`];
  }
}

/**
 * The key: everything after `/keys/` up to the query, percent-decoded,
 * slashes included (`/keys/a/b` and `/keys/a%2Fb` are the key `a/b`).
 * @throws KvError KVMESH_ERR_KV_KEY_INVALID (empty), KVMESH_ERR_HTTP_BAD_REQUEST (malformed escapes, not UTF-8).
 */
export function keyOf(path: string): string {
  return keyAfter(path, KEYSHIFT_PREFIX);
}

/**
 * The KV service's own key-length rule, applied before a PUT's body is read.
 * @throws KvError KVMESH_ERR_KV_KEY_TOO_LONG.
 */
function checkKeyLength(key: string, maxKeyBytes: number): string {
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > maxKeyBytes) {
    throw new KvError(
      'KVMESH_ERR_KV_KEY_TOO_LONG',
      `key ${quote(key)} is ${bytes} bytes of UTF-8; the limit is ${maxKeyBytes} (limits.maxKeyBytes)`,
    );
  }
  return key;
}

/** A key for a message, at most QUOTED_KEY_CHARS of it, as the KV service quotes keys. */
function quote(key: string): string {
  return JSON.stringify(key.length > QUOTED_KEY_CHARS ? `${key.slice(0, QUOTED_KEY_CHARS)}…` : key);
}
