import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context, Middleware } from 'koa';
import type { Lifecycle } from './lifecycle.js';

/**
 * A failure the host asks a facade to answer in its own format: a KvError
 * (or any error) thrown by the facade's routes, a request no route of the
 * facade's own port answers, or a node that is not running.
 */
export interface FacadeFailure {
  /**
   * HTTP status from the server's one table of error codes (`400` for
   * KVMESH_ERR_KV_KEY_INVALID, `404` for KVMESH_ERR_HTTP_KEY_NOT_FOUND, `413`,
   * `503`...); `500` for an error without a known code.
   */
  readonly status: number;
  /** `KVMESH_ERR_*`; KVMESH_ERR_HTTP_INTERNAL for an unexpected failure. */
  readonly code: string;
  /** What went wrong, in words for the client; generic for a 500 (the details go to the log only). */
  readonly message: string;
  /**
   * What was thrown (by the facade's routes, the KV service or the host
   * itself for an unknown path or a node not running), so a facade can
   * recognise its own error types (an XML-RPC fault code it chose). Never
   * put its details in the answer of a 500.
   */
  readonly cause?: unknown;
}

/** What the host gives a facade's routes for reading request bodies under the node's limits. */
export interface FacadeHttp {
  /**
   * The request body as bytes, at most `limits.maxValueBytes`. A declared
   * `Content-Length` over the limit is refused before a byte is read, a
   * streamed body as soon as it passes it (the rest is not read). Empty body:
   * an empty buffer.
   * @throws KvError KVMESH_ERR_KV_VALUE_TOO_LARGE (413); KVMESH_ERR_HTTP_CLIENT_ABORTED when the client
   *   goes away before the body is read (the host answers nothing and counts a 499).
   */
  readBody(ctx: Context): Promise<Buffer>;
  /** `readBody` of a raw request, for a facade's fast routes (`Facade.fastRoutes`); the same limits and errors. */
  readRequestBody(req: IncomingMessage): Promise<Buffer>;
  /**
   * The request body parsed as JSON, at most `api.maxJsonBodyBytes`; `undefined` when empty.
   * @throws KvError KVMESH_ERR_HTTP_BODY_TOO_LARGE (413), KVMESH_ERR_HTTP_BAD_REQUEST (400, not JSON).
   */
  readJson(ctx: Context): Promise<unknown>;
  /** `limits.maxKeyBytes`: the KV service refuses longer keys (KVMESH_ERR_KV_KEY_TOO_LONG, 414). */
  readonly maxKeyBytes: number;
  /** `limits.maxValueBytes`. */
  readonly maxValueBytes: number;
  /** `api.maxJsonBodyBytes`. */
  readonly maxJsonBodyBytes: number;
}

/**
 * A facade's hot routes on the raw node:http request and response (see
 * `Facade.fastRoutes`): undefined, synchronously and touching neither, for
 * a request it leaves to its Koa routes; else a promise that resolves once
 * the whole answer is written, or rejects, with nothing written, with the
 * failure, which the host answers in the facade's format as it does for its
 * routes.
 */
export type FacadeFastRoute = (req: IncomingMessage, res: ServerResponse) => Promise<void> | undefined;

/** What a facade adds to the node's OpenAPI 3.1 document (`GET /v1/openapi.json`). */
export interface FacadeOpenApi {
  /**
   * Path items by path template (`/d/{key}`), as in a document's `paths`.
   * The host adds `servers` to each when the facade has a port of its own and
   * tags every operation with the facade's name. A path the native API or
   * another facade of the node documents already is refused at start.
   */
  readonly paths: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /**
   * Reusable schemas the paths refer to as `#/components/schemas/<name>`.
   * Prefix the names with the facade's (`DhtNodeError`): a name another part
   * of the document uses already is refused at start.
   */
  readonly schemas?: Readonly<Record<string, unknown>>;
  /** One sentence for the facade's tag in the document. Default: the manifest's description. */
  readonly description?: string;
}

/**
 * A client API served by a node besides its native API: the routes of
 * another system's protocol (the seeds' REST APIs, XML-RPC, ...) over the
 * node's KV service and cluster view. Built by the kernel from a facade
 * plugin (family `facade`), one per entry of the config's `facades` array,
 * after every component it `needs` (typically `kv`, `cluster`, `node`,
 * `logger`), and mounted by the server, which names none of them.
 *
 * Where the routes answer:
 * - `port` undefined: on the node's API port, after the native API's routes
 *   (`/v1/...`, `/metrics`), in config order. Requests the facade does not
 *   answer go to `next()`; an unknown path is then answered 404 by the native API.
 * - `port` set: on a port of its own (0: any free port), where every request is
 *   the facade's; one it passes to `next()` is answered 404 through `error`.
 *
 * Errors: whatever the routes throw (a KvError from the KV service, from
 * `FacadeHttp`, or the facade's own) is caught by the host, given its status
 * from the server's code table and handed to `error`, so bad input is
 * answered in the facade's own format and is never a 5xx. A facade answers a
 * client mistake by throwing a KvError with a 4xx code (or by answering it
 * itself), never by letting a TypeError escape.
 *
 * Lifecycle: `routes` is called once, after the facade is built and before
 * the node starts; the middleware it returns may run concurrently for many
 * requests. `start()` and `stop()` (optional) run in the node's start and
 * stop order. A facade holds no socket: the host listens for it.
 */
export interface Facade extends Lifecycle {
  /**
   * A port of its own (0 for any free port; the host reports the bound one
   * in `examples` and the OpenAPI document), or undefined to share the node's
   * API port. Read once, before the node starts.
   */
  readonly port?: number;
  /** Interface of its own port. Default: the API's (`api.host`). Ignored without `port`. */
  readonly host?: string;
  /**
   * The facade's Koa middleware (a `@koa/router` `router.routes()` or a plain
   * `(ctx, next) => ...`). Called once, before the node starts.
   */
  routes(http: FacadeHttp): Middleware;
  /**
   * Optional: the facade's hot routes without Koa (no context, router or
   * body helpers, which cost a fifth of a small request's CPU), offered each
   * request its Koa routes would be offered while the node serves, first:
   * on its own port every request, on the node's port every request no
   * native route answers (paths outside `/v1/` and `/metrics`). What it
   * answers must be what its routes would answer; what it leaves (undefined)
   * goes to them untouched. Called once, before the node starts.
   */
  fastRoutes?(http: FacadeHttp): FacadeFastRoute;
  /**
   * Answers a failure in the facade's own format: sets `ctx.status`,
   * `ctx.body` and headers (the host has removed the Content-Type, ETag and
   * Content-Length a failed handler may have set). Must not throw.
   * Omitted: the native format, `{"error":{"code","message"}}`.
   */
  error?(ctx: Context, failure: FacadeFailure): void;
  /** The facade's part of the node's OpenAPI document. Omitted: its routes are undocumented. */
  openapi?(): FacadeOpenApi;
  /**
   * Shell lines that exercise the facade at `baseUrl` (where it answers:
   * the node's URL, or its own port's), which `kvmesh up` prints, e.g.
   * `curl -i -X POST --data 'hello' ${baseUrl}/d/greeting`. A few lines, no
   * trailing newline.
   */
  examples?(baseUrl: string): readonly string[];
}
