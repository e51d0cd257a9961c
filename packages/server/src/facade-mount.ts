import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { KvError, wrapError } from '@kvmesh/core';
import type { Facade, FacadeFastRoute, FacadeHttp, Logger, NodeFacade } from '@kvmesh/core';
import Koa from 'koa';
import type { Context, Middleware, Next } from 'koa';
import { errorBody, httpFailure } from './http-errors.js';
import type { ServerMetrics } from './metrics.js';
import { TOO_LARGE, readBody } from './read-body.js';
import { readJsonBody } from './read-json.js';
import { lingerThenClose } from './routes/kv-http.js';
import { abandon } from './abandon.js';
import { koaHandleRequest } from './koa-step.js';

/** One configured facade, its routes built, as the server serves it. */
export interface MountedFacade {
  readonly name: string;
  readonly facade: Facade;
  /** What `facade.routes(http)` returned. */
  readonly routes: Middleware;
  /** What `facade.fastRoutes(http)` returned, if it has them. */
  readonly fast?: FacadeFastRoute;
}

/** A facade's own port, listening. */
export interface FacadeEndpoint {
  readonly name: string;
  /** Where it answers, e.g. `http://127.0.0.1:8000`. */
  readonly url: string;
  readonly server: Server;
}

export interface FacadeLimits {
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly maxJsonBodyBytes: number;
}

/** What answering a facade's requests needs from the node server. */
export interface FacadeServing {
  readonly logger: Logger;
  readonly metrics: ServerMetrics;
  /** True while the node runs: requests reach the facade. */
  readonly serving: () => boolean;
  /** True once the server drains: responses close their connection. */
  readonly draining: () => boolean;
  /** How long a connection whose body was refused as too large stays open. */
  readonly lingerMs: number;
}

const JSON_TYPE = 'application/json; charset=utf-8';
// Headers a failed handler may have set that must not describe an error body.
const STALE_HEADERS = ['content-type', 'content-length', 'etag', 'content-encoding'];
const HANDLED = Symbol.for('@kvmesh/server/facade-handled');
const UNMATCHED_ROUTE = 'unmatched';

/** Body readers under the node's limits, with the same errors as the native API. */
export function facadeHttp(limits: FacadeLimits): FacadeHttp {
  const readLimited = async (req: IncomingMessage): Promise<Buffer> => {
    const body = await readBody(req, limits.maxValueBytes);
    if (body === TOO_LARGE) {
      throw new KvError(
        'KVMESH_ERR_KV_VALUE_TOO_LARGE',
        `the value is larger than ${limits.maxValueBytes} bytes (limits.maxValueBytes); nothing was written`,
      );
    }
    return body;
  };
  return {
    maxKeyBytes: limits.maxKeyBytes,
    maxValueBytes: limits.maxValueBytes,
    maxJsonBodyBytes: limits.maxJsonBodyBytes,
    readBody: (ctx) => readLimited(ctx.req),
    readRequestBody: readLimited,
    readJson: (ctx) => readJsonBody(ctx.req, limits.maxJsonBodyBytes),
  };
}

/**
 * Builds each facade's routes once, before the node starts.
 * @throws KvError what a facade's `routes` threw, wrapped with its name.
 */
export function mountFacades(facades: readonly NodeFacade[], limits: FacadeLimits): MountedFacade[] {
  const http = facadeHttp(limits);
  return facades.map(({ name, facade }) => {
    try {
      const fast = facade.fastRoutes?.(http);
      return { name, facade, routes: facade.routes(http), ...(fast ? { fast } : {}) };
    } catch (err) {
      throw wrapError(`facade '${name}'`, err);
    }
  });
}

/** True when a facade on the node's port answered this request (the native 404 must not replace its answer). */
export function handledByFacade(ctx: Context): boolean {
  return typeof (ctx.state as Record<symbol, unknown>)[HANDLED] === 'string';
}

/**
 * The `route` label of a request a facade answered: its router's template
 * when it routes with @koa/router, else `facade:<name>`, one label per
 * facade, so paths cannot grow the label set. Undefined for other requests.
 */
export function facadeRouteLabel(ctx: Context): string | undefined {
  const name = (ctx.state as Record<symbol, unknown>)[HANDLED];
  if (typeof name !== 'string') return undefined;
  const matched = (ctx as { _matchedRoute?: unknown })._matchedRoute;
  return typeof matched === 'string' ? matched : `facade:${name}`;
}

/**
 * A facade's routes on the node's port, behind the native routes: the
 * request is offered to the facade; what it throws is answered in its own
 * format, what it passes on goes to the next facade (and at last to the
 * native 404), and failures further down are not its own.
 */
export function nodePortFacade(mounted: MountedFacade, serving: FacadeServing): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    let passed = false;
    try {
      await mounted.routes(ctx, () => {
        passed = true;
        return next();
      });
    } catch (err) {
      if (passed) throw err;
      answerFailure(ctx, mounted, err, serving);
    }
    if (!passed) (ctx.state as Record<symbol, unknown>)[HANDLED] = mounted.name;
  };
}

/**
 * The Koa app of a facade's own port: every request is the facade's, its
 * failures and the paths it does not answer (404) are answered in its own
 * format, and every request is counted in the node's metrics.
 */
export function ownPortApp(mounted: MountedFacade, serving: FacadeServing): Koa {
  const koa = new Koa();
  koa.use(async (ctx) => {
    const started = performance.now();
    try {
      if (!serving.serving()) {
        throw new KvError('KVMESH_ERR_HTTP_NOT_READY', 'the node is not running; retry when GET /v1/ready answers 200');
      }
      // Labelled the facade's unless it passes the request on.
      (ctx.state as Record<symbol, unknown>)[HANDLED] = mounted.name;
      let passed = false;
      await mounted.routes(ctx, () => {
        passed = true;
        delete (ctx.state as Record<symbol, unknown>)[HANDLED];
        return Promise.resolve();
      });
      if (passed && ctx.body === undefined) {
        throw new KvError('KVMESH_ERR_HTTP_NOT_FOUND', `no route of facade '${mounted.name}' answers ${ctx.path}`);
      }
    } catch (err) {
      answerFailure(ctx, mounted, err, serving);
    }
    if (serving.draining()) ctx.res.shouldKeepAlive = false;
    serving.metrics.observe(
      facadeRouteLabel(ctx) ?? UNMATCHED_ROUTE,
      ctx.method,
      ctx.status,
      (performance.now() - started) / 1000,
    );
  });
  koa.silent = true;
  koa.on('error', (err: unknown) => serving.logger.warn({ err, facade: mounted.name }, 'response failed'));
  return koa;
}

/**
 * The facades' fast routes (`Facade.fastRoutes`) in front of `fallback`:
 * each request `offered` accepts, while the node serves, goes to them in
 * order; the first that takes it answers it, and is counted in the node's
 * metrics as `facade:<name>`. A failure, with nothing written yet, is
 * answered in the facade's format through `koa` (a context of its own and
 * Koa's respond step), as a failure of its routes is. Requests none takes
 * go to `fallback` untouched.
 */
export function withFastRoutes(
  mounted: readonly MountedFacade[],
  serving: FacadeServing,
  koa: Koa,
  fallback: (req: IncomingMessage, res: ServerResponse) => void,
  offered: (url: string) => boolean,
): (req: IncomingMessage, res: ServerResponse) => void {
  const fast = mounted.filter((m) => m.fast !== undefined);
  if (fast.length === 0) return fallback;
  return (req, res) => {
    if (offered(req.url!) && serving.serving()) {
      for (const m of fast) {
        const started = performance.now();
        const taken = m.fast!(req, res);
        if (taken === undefined) continue;
        const label = `facade:${m.name}`;
        taken.then(
          () => serving.metrics.observe(label, req.method!, res.statusCode, (performance.now() - started) / 1000),
          (err: unknown) => {
            if (res.headersSent) {
              // Against the contract: it wrote, then failed. The answer cannot be mended.
              serving.logger.error({ err, facade: m.name, url: req.url }, 'fast route failed after answering');
              res.destroy();
              return;
            }
            const ctx = koa.createContext(req, res);
            void koaHandleRequest.call(koa, ctx, async (c: Context) => {
              answerFailure(c, m, err, serving);
              serving.metrics.observe(label, req.method!, c.status, (performance.now() - started) / 1000);
            });
          },
        );
        return;
      }
    }
    fallback(req, res);
  };
}

/** Answers `err` in the facade's format (or the native one when it has none); 5xx details go to the log only. */
function answerFailure(ctx: Context, mounted: MountedFacade, err: unknown, serving: FacadeServing): void {
  const failure = httpFailure(err);
  if (failure.unexpected) {
    serving.logger.error({ err, facade: mounted.name, method: ctx.method, url: ctx.url }, 'request failed');
  }
  if (failure.aborted) {
    abandon(ctx, serving.logger, failure.message);
    return;
  }
  for (const name of STALE_HEADERS) ctx.remove(name);
  const { status, code, message } = failure;
  let answered = false;
  if (mounted.facade.error) {
    try {
      mounted.facade.error(ctx, { status, code, message, cause: err });
      answered = true;
    } catch (formatError) {
      serving.logger.error({ err: formatError, facade: mounted.name }, 'facade failed to format an error');
    }
  }
  if (!answered) {
    for (const name of STALE_HEADERS) ctx.remove(name);
    ctx.status = status;
    ctx.set('Content-Type', JSON_TYPE);
    ctx.body = errorBody(code, message);
  }
  if (status === 413 && !ctx.req.complete) lingerThenClose(ctx.req, serving.lingerMs);
}
