import { performance } from 'node:perf_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KvService, Logger, ViewParameters } from '@kvmesh/core';
import Koa from 'koa';
import type { Context, Middleware, Next } from 'koa';
import { facadeRouteLabel, handledByFacade, nodePortFacade, withFastRoutes } from './facade-mount.js';
import type { MountedFacade } from './facade-mount.js';
import { koaHandleRequest } from './koa-step.js';
import type { MiddlewareChain } from './koa-step.js';
import { abandon } from './abandon.js';
import { errorBody, httpFailure } from './http-errors.js';
import type { ServerMetrics } from './metrics.js';
import { KvHttpHandler, lingerThenClose } from './routes/kv-http.js';
import { KV_PREFIX, notReady } from './routes/kv-request.js';
import { nativeRouter, noRoute } from './routes/native.js';
import type { ClusterView, RoutesView } from './routes/native.js';

export interface AppOptions {
  readonly kv: KvService;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly metrics: ServerMetrics;
  readonly logger: Logger;
  /** True while the node runs: data requests are served. */
  readonly serving: () => boolean;
  /** True when the node serves and has joined its cluster: `GET /v1/ready` answers 200. */
  readonly ready: () => boolean;
  /** Why the node is not ready (`GET /v1/ready`'s 503 says it). */
  readonly notReadyReason?: () => string;
  /** True once the server drains for shutdown: responses close their connection. */
  readonly draining?: () => boolean;
  readonly cluster: () => ClusterView;
  /** `GET /v1/cluster/routes`: the placement's routing table, undefined when it publishes none. */
  readonly routes?: () => RoutesView | undefined;
  /**
   * Installs an operator's view of `host:port` addresses (`PUT /v1/cluster/view`).
   * Absent: view changes answer 409 KVMESH_ERR_MEMBERSHIP_VIEW_UNSUPPORTED.
   */
  readonly setView?: (view: readonly string[], parameters?: ViewParameters) => Promise<void>;
  /** Largest JSON request body of Koa routes (`api.maxJsonBodyBytes`); default 64 KiB. */
  readonly maxJsonBodyBytes?: number;
  /** How long a connection whose body was refused as too large stays open so the client reads the answer. */
  readonly lingerMs?: number;
  /**
   * Facades served on this port, in order, behind the native routes: a
   * request no native route answers is offered to each in turn (while the
   * node serves; before, it is answered 503).
   */
  readonly facades?: readonly MountedFacade[];
  /** What `GET /v1/openapi.json` answers (JSON text): the native API's document with the node's facades. */
  readonly openapiText?: string;
}

/** The API of one node. */
export interface ApiApp {
  /** The Koa app serving every route. More routers (facades, admin) are added with `koa.use`. */
  readonly koa: Koa;
  /** The node:http request listener (Koa's callback). */
  readonly listener: (req: IncomingMessage, res: ServerResponse) => void;
  /** The limit routes pass to `readJsonBody`. */
  readonly maxJsonBodyBytes: number;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const DEFAULT_LINGER_MS = 1_000;
const DEFAULT_MAX_JSON_BODY_BYTES = 65_536;
const UNMATCHED_ROUTE = 'unmatched';
// Headers a failed handler may have set that must not describe an error body.
const STALE_HEADERS = ['content-type', 'content-length', 'etag', 'content-encoding'];

function isKeyRequest(url: string): boolean {
  return url.startsWith(KV_PREFIX);
}

/** Paths of the native API's routes: `/v1/...` and `/metrics`. */
function isNativePath(url: string): boolean {
  return (
    url.startsWith('/v1/') ||
    url === '/metrics' ||
    url.startsWith('/metrics?') ||
    url === '/ui' ||
    url.startsWith('/ui/') ||
    url.startsWith('/ui?')
  );
}

/**
 * Koa, except for one step of key requests. For every request Koa attaches an
 * `on-finished` listener to the response (an AsyncResource, a bound function
 * and four listeners on the response and its socket, removed again when it
 * finishes) so that it can report a failure of a body it writes itself, and
 * calls `respond` after the middleware. The key routes, its first middleware,
 * answer a key request themselves on the raw response (`respond = false`) and
 * report their own failures, so such a request skips both: that bookkeeping
 * was a sixth of a GET's CPU (docs/performance.md). It still gets a Koa
 * context and runs through the middleware chain, and a rejected chain still
 * reaches `ctx.onerror`. Should another middleware ever be put in front of
 * the key routes, every request takes Koa's own path again.
 */
class ApiKoa extends Koa {
  readonly #keyRoutes: Middleware;

  constructor(keyRoutes: Middleware) {
    super();
    this.#keyRoutes = keyRoutes;
    this.use(keyRoutes);
  }

  handleRequest(ctx: Context, chain: MiddlewareChain): Promise<void> {
    if (this.middleware[0] !== this.#keyRoutes || !isKeyRequest(ctx.originalUrl)) {
      return koaHandleRequest.call(this, ctx, chain);
    }
    ctx.res.statusCode = 404;
    return chain(ctx).catch((err: unknown) => ctx.onerror(err as Error));
  }
}

/**
 * The API of one node, one Koa app: `/v1/kv/` requests go to the key handler
 * (the hot path); everything else through the router, whose error boundary
 * also counts every request. Both answer failures through `httpFailure`.
 */
export function createApp(options: AppOptions): ApiApp {
  const { metrics, logger } = options;
  const draining = options.draining ?? ((): boolean => false);
  const lingerMs = options.lingerMs ?? DEFAULT_LINGER_MS;
  const kv = new KvHttpHandler(options);
  // The data path: key requests are answered by the key handler on the raw
  // request and response (Koa's documented `respond = false`), skipping the
  // router and body helpers, which cost a third of the CPU per request
  // (docs/performance.md). Failures go through the same `httpFailure` table.
  const keyRoutes: Middleware = (ctx, next) => {
    if (!isKeyRequest(ctx.originalUrl)) return next();
    ctx.respond = false;
    return kv.handle(ctx.req, ctx.res);
  };
  const koa = new ApiKoa(keyRoutes);
  const maxJsonBodyBytes = options.maxJsonBodyBytes ?? DEFAULT_MAX_JSON_BODY_BYTES;
  const router = nativeRouter({
    metrics,
    ready: options.ready,
    ...(options.notReadyReason ? { notReadyReason: options.notReadyReason } : {}),
    cluster: options.cluster,
    ...(options.routes === undefined ? {} : { routes: options.routes }),
    maxJsonBodyBytes,
    ...(options.setView ? { setView: options.setView } : {}),
    ...(options.openapiText !== undefined ? { openapiText: options.openapiText } : {}),
  });

  const boundary = async (ctx: Context, next: Next): Promise<void> => {
    const started = performance.now();
    try {
      await next();
      if (ctx.body === undefined && ctx.status === 404 && !handledByFacade(ctx)) throw noRoute(router, ctx);
    } catch (err) {
      const failure = httpFailure(err);
      if (failure.unexpected) logger.error({ err, method: ctx.method, url: ctx.url }, 'request failed');
      if (failure.aborted) abandon(ctx, logger, failure.message);
      else {
        for (const name of STALE_HEADERS) ctx.remove(name);
        ctx.status = failure.status;
        ctx.set('Content-Type', JSON_TYPE);
        ctx.body = errorBody(failure.code, failure.message);
        if (failure.status === 413 && !ctx.req.complete) lingerThenClose(ctx.req, lingerMs);
      }
    }
    if (draining()) ctx.res.shouldKeepAlive = false;
    metrics.observe(routeTemplate(ctx), ctx.method, ctx.status, (performance.now() - started) / 1000);
  };

  koa.use(boundary);
  koa.use(router.routes());
  const facades = options.facades ?? [];
  const serving = { logger, metrics, serving: options.serving, draining, lingerMs };
  if (facades.length > 0) {
    koa.use((_ctx, next) => {
      if (!options.serving()) throw notReady();
      return next();
    });
    for (const facade of facades) koa.use(nodePortFacade(facade, serving));
  }
  koa.silent = true;
  koa.on('error', (err: unknown) => logger.warn({ err }, 'response failed'));

  let callback: ((req: IncomingMessage, res: ServerResponse) => Promise<void>) | undefined;
  const viaKoa = (req: IncomingMessage, res: ServerResponse): void => {
    // Built on first use, so routers added to `koa` after createApp are included.
    callback ??= koa.callback();
    void callback(req, res);
  };
  // The facades' fast routes take what no native route answers, before Koa.
  const listener = withFastRoutes(facades, serving, koa, viaKoa, (url) => !isNativePath(url));
  return { koa, listener, maxJsonBodyBytes };
}

/**
 * The matched route (`/v1/cluster`), a facade's label (`facade:<name>`),
 * or `unmatched`, so that unknown paths cannot grow the label set.
 */
function routeTemplate(ctx: Context): string {
  const matched = (ctx as { _matchedRoute?: unknown })._matchedRoute;
  if (typeof matched === 'string') return matched;
  return facadeRouteLabel(ctx) ?? UNMATCHED_ROUTE;
}
