import { KvError, formatVersion } from '@kvmesh/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Facade, FacadeFailure, FacadeFastRoute, FacadeHttp, FacadeOpenApi, KvService } from '@kvmesh/core';
import type { Context, Middleware, Next } from 'koa';
import { DHT_NODE_OPENAPI } from './openapi.js';
import type { OwnPortOptions } from '../support/own-port.js';
import { keyAfter } from '../support/path-key.js';
import { writeAnswer, writeJson } from '../support/raw-answer.js';

/** Where the facade answers: a port of its own, or (null) the node's API port. */
export type DhtNodeOptions = OwnPortOptions;

export interface DhtNodeComponents {
  readonly kv: KvService;
}

/** Where the seed's keys live: `POST http://localhost:8000/d/key -d "value"` (its design document, "Distributed Key Value Store"). */
export const DHT_NODE_PREFIX = '/d/';
/** The methods of `/d/<key>`; HEAD is a GET without the bytes. */
export const DHT_NODE_METHODS = 'GET, HEAD, POST, DELETE';
/**
 * The content type curl sends with `-d`, as the seed's example does: the body
 * is the value itself there, not a form, so it is stored as text.
 */
const FORM_TYPE = 'application/x-www-form-urlencoded';
const TEXT_TYPE = 'text/plain; charset=utf-8';
const BYTES_TYPE = 'application/octet-stream';

/**
 * The dht-node client API: `POST /d/<key>` with the value as the
 * body, `GET /d/<key>`, `DELETE /d/<key>`, over the node's KV service, so a
 * write is acknowledged by the topology's write quorum. The seed gives the
 * paths and methods only; the statuses and bodies chosen where it is silent
 * are in docs/api.md ("dht-node"). Errors are `{"error": message, "code": KVMESH_ERR_*}`.
 */
export class DhtNodeFacade implements Facade {
  readonly port?: number;
  readonly host?: string;
  readonly #kv: KvService;

  constructor(components: DhtNodeComponents, options: DhtNodeOptions) {
    this.#kv = components.kv;
    if (options.port !== null) this.port = options.port;
    if (options.host !== null) this.host = options.host;
  }

  routes(http: FacadeHttp): Middleware {
    return async (ctx: Context, next: Next): Promise<void> => {
      if (!ctx.path.startsWith(DHT_NODE_PREFIX)) return next();
      const answer = this.#answer(ctx.req, ctx.res, ctx.method, ctx.path, http);
      if (answer === undefined) {
        ctx.set('Allow', DHT_NODE_METHODS);
        throw new KvError(
          'KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED',
          `${ctx.method} is not allowed on ${DHT_NODE_PREFIX}<key>; use ${DHT_NODE_METHODS}`,
        );
      }
      await answer;
      // Answered on the raw response: Koa sends nothing more.
      ctx.respond = false;
    };
  }

  /** The same routes without Koa; other methods (405) and paths are left to `routes`. */
  fastRoutes(http: FacadeHttp): FacadeFastRoute {
    return (req, res) => {
      const url = req.url!;
      if (!url.startsWith(DHT_NODE_PREFIX)) return undefined;
      const query = url.indexOf('?');
      return this.#answer(req, res, req.method!, query < 0 ? url : url.slice(0, query), http);
    };
  }

  /**
   * Runs `/d/<key>` and writes the whole answer on `res`; undefined for a
   * method the routes do not have. Rejects, having written nothing, with a
   * failure the host answers through `error`.
   */
  #answer(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    path: string,
    http: FacadeHttp,
  ): Promise<void> | undefined {
    switch (method) {
      case 'GET':
      case 'HEAD':
        return this.#get(req, res, path);
      case 'POST':
        return this.#post(req, res, path, http);
      case 'DELETE':
        return this.#delete(req, res, path);
      default:
        return undefined;
    }
  }

  async #get(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const key = keyOf(path);
    const { record } = await this.#kv.get(key);
    if (record === undefined) throw notFound(key);
    writeAnswer(
      req,
      res,
      200,
      { ETag: `"${formatVersion(record.version)}"`, 'Content-Type': record.contentType },
      record.value,
    );
  }

  async #post(req: IncomingMessage, res: ServerResponse, path: string, http: FacadeHttp): Promise<void> {
    const key = keyOf(path);
    const value = await http.readRequestBody(req);
    const result = await this.#kv.put(key, value, storedType(req.headers['content-type'] ?? ''));
    writeJson(
      req,
      res,
      result.created ? 201 : 200,
      { ETag: `"${formatVersion(result.version)}"` },
      { key, status: result.created ? 'created' : 'updated' },
    );
  }

  async #delete(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const key = keyOf(path);
    const result = await this.#kv.delete(key);
    if (!result.existed) throw notFound(key);
    writeJson(req, res, 200, {}, { key, status: 'deleted' });
  }

  error(ctx: Context, failure: FacadeFailure): void {
    ctx.status = failure.status;
    ctx.body = { error: failure.message, code: failure.code };
  }

  openapi(): FacadeOpenApi {
    return DHT_NODE_OPENAPI;
  }

  examples(baseUrl: string): readonly string[] {
    return [
      `curl -i -X POST ${baseUrl}/d/greeting -d 'hello'`,
      `curl -i ${baseUrl}/d/greeting`,
      `curl -i -X DELETE ${baseUrl}/d/greeting`,
    ];
  }
}

/**
 * The key: everything after `/d/` up to the query, percent-decoded, slashes
 * included (`/d/a/b` and `/d/a%2Fb` are the key `a/b`).
 * @throws KvError KVMESH_ERR_KV_KEY_INVALID (empty), KVMESH_ERR_HTTP_BAD_REQUEST (malformed escapes).
 */
export function keyOf(path: string): string {
  return keyAfter(path, DHT_NODE_PREFIX);
}

/** The content type stored with a value: as sent, but curl's `-d` form type means text, and none means bytes. */
function storedType(header: string): string {
  if (header === '') return BYTES_TYPE;
  if (header.split(';')[0]!.trim().toLowerCase() === FORM_TYPE) return TEXT_TYPE;
  return header;
}

function notFound(key: string): KvError {
  return new KvError('KVMESH_ERR_HTTP_KEY_NOT_FOUND', `key ${JSON.stringify(key)} not found`);
}
