import { readFileSync } from 'node:fs';
import Router from '@koa/router';
import { KvError } from '@kvmesh/core';
import type { MovementStatus, RoutingTable, ViewParameters } from '@kvmesh/core';
import type { Context } from 'koa';
import type { ServerMetrics } from '../metrics.js';
import { OPENAPI_DOCUMENT } from '../openapi.js';
import { readJsonBody } from '../read-json.js';
import { notReady } from './kv-request.js';

/** What `GET /v1/cluster` answers. */
export interface ClusterView {
  readonly self: { readonly id: string; readonly address: string };
  readonly members: readonly { readonly id: string; readonly address: string; readonly state: string }[];
  readonly placement: Record<string, unknown>;
  /** Progress of rebalancing, hinted hand-off and anti-entropy on this node. */
  readonly movement?: MovementStatus;
}

/**
 * What `GET /v1/cluster/routes` answers: the placement's routing table and
 * the members it names, with their addresses, so a client can send each
 * request to one of the key's replicas.
 */
export interface RoutesView extends RoutingTable {
  readonly members: readonly { readonly id: string; readonly address: string; readonly state: string }[];
}

export interface NativeRouterOptions {
  readonly metrics: ServerMetrics;
  /** True when the node serves and has joined its cluster; false while starting or draining. */
  readonly ready: () => boolean;
  /** Why the node is not ready, for the 503 of `GET /v1/ready`; default "starting or shutting down". */
  readonly notReadyReason?: () => string;
  readonly cluster: () => ClusterView;
  /** The placement's routing table (`Placement.routes`); undefined, or omitted: it publishes none (404). */
  readonly routes?: () => RoutesView | undefined;
  /**
   * Installs an operator's view (`PUT /v1/cluster/view`), `host:port` node
   * addresses; resolves once it is installed and sent to the members.
   * Default: every view change is refused with KVMESH_ERR_MEMBERSHIP_VIEW_UNSUPPORTED.
   */
  readonly setView?: (view: readonly string[], parameters?: ViewParameters) => Promise<void>;
  /** Largest JSON request body (`api.maxJsonBodyBytes`); default 64 KiB. */
  readonly maxJsonBodyBytes?: number;
  /** What `GET /v1/openapi.json` answers, as JSON text: the node's document. Default: the native API's. */
  readonly openapiText?: string;
}

const JSON_TYPE = 'application/json; charset=utf-8';
/** The dashboard's files (`packages/server/ui/`, shipped with the package), by the path they are served at. */
const UI_FILES: Readonly<Record<string, { readonly file: string; readonly type: string }>> = {
  '/ui': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/ui/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
};
// Relative to dist/src/routes/, where this module runs from.
const UI_DIR = new URL('../../../ui/', import.meta.url);
/** Nothing but this node: no external fonts, scripts or frames. */
const UI_POLICY = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";
const uiCache = new Map<string, Buffer>();
const OPENAPI_TEXT = JSON.stringify(OPENAPI_DOCUMENT);
const DEFAULT_MAX_JSON_BODY_BYTES = 65_536;
const VIEW_EXAMPLE = '{"view":["10.10.0.2:8085","10.10.0.3:8085"]}';

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
    if (!options.ready()) throw notReady(options.notReadyReason?.());
    json(ctx, 200, '{"status":"ready"}');
  });
  router.get('/v1/cluster', (ctx) => json(ctx, 200, JSON.stringify(options.cluster())));
  router.get('/v1/cluster/routes', (ctx) => {
    const routes = options.routes?.();
    if (routes === undefined) {
      throw new KvError(
        'KVMESH_ERR_HTTP_NOT_FOUND',
        "this node's placement publishes no routing table: send requests to any node, which locates the key",
      );
    }
    json(ctx, 200, JSON.stringify(routes));
  });
  const maxJsonBodyBytes = options.maxJsonBodyBytes ?? DEFAULT_MAX_JSON_BODY_BYTES;
  const setView = options.setView ?? refuseViewChange;
  router.put('/v1/cluster/view', async (ctx) => {
    const body = await readJsonBody(ctx.req, maxJsonBodyBytes);
    const view = viewOf(body);
    const parameters = parametersOf((body as { parameters?: unknown }).parameters);
    await (parameters === undefined ? setView(view) : setView(view, parameters));
    json(ctx, 200, JSON.stringify(options.cluster()));
  });
  router.get('/metrics', async (ctx) => {
    const text = await options.metrics.text();
    ctx.set('Content-Type', options.metrics.contentType);
    ctx.body = text;
  });
  const openapiText = options.openapiText ?? OPENAPI_TEXT;
  router.get('/v1/openapi.json', (ctx) => json(ctx, 200, openapiText));
  for (const [path, { file, type }] of Object.entries(UI_FILES)) {
    router.get(path, (ctx) => {
      let body = uiCache.get(file);
      if (body === undefined) uiCache.set(file, (body = readFileSync(new URL(file, UI_DIR))));
      ctx.set('Content-Type', type);
      ctx.set('Content-Security-Policy', UI_POLICY);
      ctx.set('X-Content-Type-Options', 'nosniff');
      ctx.set('Cache-Control', 'no-cache');
      ctx.body = body;
    });
  }
  return router;
}

/**
 * The `view` of a view-change body, `{"view":["host:port",...]}`. Whether
 * each entry is a valid address is the membership's to decide.
 * @throws KvError KVMESH_ERR_HTTP_BAD_REQUEST when the body is not such an object,
 *   KVMESH_ERR_MEMBERSHIP_VIEW_INVALID when `view` is empty or holds a non-string.
 */
function viewOf(body: unknown): string[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !('view' in body)) {
    throw new KvError(
      'KVMESH_ERR_HTTP_BAD_REQUEST',
      `a view change is a JSON object with a "view" array, e.g. ${VIEW_EXAMPLE}`,
    );
  }
  const extra = Object.keys(body).filter((k) => k !== 'view' && k !== 'parameters');
  if (extra.length > 0) {
    throw new KvError(
      'KVMESH_ERR_HTTP_BAD_REQUEST',
      `a view change has only "view" and "parameters" fields; found ${extra.map((k) => JSON.stringify(k)).join(', ')}`,
    );
  }
  const view = (body as { view: unknown }).view;
  if (!Array.isArray(view)) {
    throw new KvError(
      'KVMESH_ERR_HTTP_BAD_REQUEST',
      `"view" must be an array of "host:port" strings, e.g. ${VIEW_EXAMPLE}`,
    );
  }
  if (view.length === 0)
    throw new KvError('KVMESH_ERR_MEMBERSHIP_VIEW_INVALID', 'a view needs at least one member; nothing was changed');
  const bad = view.filter((entry) => typeof entry !== 'string');
  if (bad.length > 0) {
    throw new KvError(
      'KVMESH_ERR_MEMBERSHIP_VIEW_INVALID',
      `a view holds "host:port" strings only; found ${bad.map((entry) => JSON.stringify(entry)).join(', ')}; nothing was changed`,
    );
  }
  return view as string[];
}

/**
 * The `parameters` of a view-change body, `{"replicationFactor": 2}`: an
 * object of numbers; undefined when absent. Whether the placement takes
 * them is the cluster's to decide.
 * @throws KvError KVMESH_ERR_HTTP_BAD_REQUEST when present and not such an object.
 */
function parametersOf(parameters: unknown): ViewParameters | undefined {
  if (parameters === undefined) return undefined;
  if (
    typeof parameters !== 'object' ||
    parameters === null ||
    Array.isArray(parameters) ||
    !Object.values(parameters).every((v) => typeof v === 'number')
  ) {
    throw new KvError(
      'KVMESH_ERR_HTTP_BAD_REQUEST',
      `"parameters" must be an object of numbers for the placement, e.g. {"replicationFactor":2}`,
    );
  }
  return parameters as ViewParameters;
}

function refuseViewChange(): Promise<never> {
  return Promise.reject(
    new KvError(
      'KVMESH_ERR_MEMBERSHIP_VIEW_UNSUPPORTED',
      "this node's membership discovers its members and takes no operator view; nothing was changed",
    ),
  );
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
