import Router from '@koa/router';
import { KvError } from '@kvmesh/core';
import type { Context } from 'koa';
import type { ServerMetrics } from '../metrics.js';
import { OPENAPI_DOCUMENT } from '../openapi.js';
import { notReady } from './kv-request.js';

/** What `GET /v1/cluster` answers. */
export interface ClusterView {
  readonly self: { readonly id: string; readonly address: string };
  readonly members: readonly { readonly id: string; readonly address: string; readonly state: string }[];
  readonly placement: Record<string, unknown>;
}

export interface NativeRouterOptions {
  readonly metrics: ServerMetrics;
  /** True when the node serves and has joined its cluster; false while starting or draining. */
  readonly ready: () => boolean;
  readonly cluster: () => ClusterView;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const OPENAPI_TEXT = JSON.stringify(OPENAPI_DOCUMENT);

function json(ctx: Context, status: number, text: string): void {
  ctx.status = status;
  ctx.set('Content-Type', JSON_TYPE);
  ctx.body = text;
}

/**
 * The native API's routes besides the key routes (`/v1/kv/{key}`, served
 * before Koa by KvHttpHandler).
 */
export function nativeRouter(options: NativeRouterOptions): Router {
  const router = new Router();
  router.get('/v1/health', (ctx) => json(ctx, 200, '{"status":"ok"}'));
  router.get('/v1/ready', (ctx) => {
    if (!options.ready()) throw notReady();
    json(ctx, 200, '{"status":"ready"}');
  });
  router.get('/v1/cluster', (ctx) => json(ctx, 200, JSON.stringify(options.cluster())));
  router.get('/metrics', async (ctx) => {
    const text = await options.metrics.text();
    ctx.set('Content-Type', options.metrics.contentType);
    ctx.body = text;
  });
  router.get('/v1/openapi.json', (ctx) => json(ctx, 200, OPENAPI_TEXT));
  return router;
}

/**
 * 404 or 405 for a request no route answered: 405 (with `Allow`) when the
 * path exists for other methods.
 */
export function noRoute(router: Router, ctx: Context): KvError {
  const methods = new Set<string>();
  for (const layer of router.match(ctx.path, ctx.method).path) for (const m of layer.methods) methods.add(m);
  if (methods.size === 0) {
    return new KvError('KVMESH_ERR_HTTP_NOT_FOUND', `no route for ${ctx.path}; GET /v1/openapi.json lists the API`);
  }
  const allow = [...methods].join(', ');
  ctx.set('Allow', allow);
  return new KvError('KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED', `${ctx.method} is not allowed on ${ctx.path}; use ${allow}`);
}
