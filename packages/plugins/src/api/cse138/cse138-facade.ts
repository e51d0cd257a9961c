import { KvError } from '@kvmesh/core';
import type {
  Clock,
  Cluster,
  Facade,
  FacadeFailure,
  FacadeHttp,
  FacadeOpenApi,
  KvService,
  Logger,
  MessageRegistry,
  Placement,
  Rpc,
  Storage,
} from '@kvmesh/core';
import type { Context, Middleware, Next } from 'koa';
import { AdminRoutes } from './admin-routes.js';
import { CSE138, errorBody } from './answers.js';
import { CONTEXT_STATE, KeyRoutes } from './key-routes.js';
import { NodeStatusService } from './node-status.js';
import { CSE138_OPENAPI } from './openapi.js';
import type { OwnPortOptions } from '../support/own-port.js';

/** Where the facade answers: a port of its own, or (null) the node's API port. */
export type Cse138Options = OwnPortOptions;

export interface Cse138Components {
  readonly kv: KvService;
  readonly cluster: Cluster;
  readonly placement: Placement;
  readonly storage: Storage;
  readonly rpc: Rpc;
  readonly messages: MessageRegistry;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * The CSE138 sharded store's client API: `/kvs/keys/<key>`,
 * `/kvs/key-count`, `/kvs/view-change`, `/kvs/shards[/<id>]`, answered with
 * the seed's exact status codes and JSON bodies over the node's KV service,
 * its cluster view (static membership: the `VIEW`) and its storage's count.
 * Every answer is JSON, errors included: `{"error", "message": "Error in <METHOD>"}`;
 * anything that cannot be served within 5 s is 503 "Unable to satisfy request".
 */
export class Cse138Facade implements Facade {
  readonly port?: number;
  readonly host?: string;
  readonly #c: Cse138Components;
  readonly #status: NodeStatusService;

  constructor(components: Cse138Components, options: Cse138Options) {
    this.#c = components;
    this.#status = new NodeStatusService(components);
    if (options.port !== null) this.port = options.port;
    if (options.host !== null) this.host = options.host;
  }

  routes(http: FacadeHttp): Middleware {
    const keys = new KeyRoutes(this.#c, http);
    const admin = new AdminRoutes({ ...this.#c, status: this.#status }, http);
    return async (ctx: Context, next: Next): Promise<void> => {
      const path = ctx.path;
      if (path.startsWith(CSE138.keysPrefix)) return keys.handle(ctx, keyOf(path));
      if (path === CSE138.keyCountPath) return only(ctx, 'GET', () => admin.keyCount(ctx));
      if (path === CSE138.viewChangePath) return only(ctx, 'PUT', () => admin.viewChange(ctx));
      if (path === CSE138.shardsPath) return only(ctx, 'GET', () => admin.shards(ctx));
      if (path.startsWith(`${CSE138.shardsPath}/`)) {
        return only(ctx, 'GET', () => admin.shard(ctx, decodeSegment(path.slice(CSE138.shardsPath.length + 1))));
      }
      return next();
    };
  }

  /**
   * Failures in the seed's shape. Whatever could not be served (a replica
   * or quorum out of reach, a deadline passed, ownership moving) is 503
   * "Unable to satisfy request"; bad input keeps its 4xx with the reason.
   * Answers under `/kvs/keys/` carry the request's causal context.
   */
  error(ctx: Context, failure: FacadeFailure): void {
    const method = ctx.method === 'HEAD' ? 'GET' : ctx.method;
    const context = ctx.path.startsWith(CSE138.keysPrefix)
      ? { [CSE138.context]: JSON.parse(JSON.stringify(ctx.state[CONTEXT_STATE] ?? {})) as unknown }
      : {};
    if (failure.status >= 500) {
      ctx.status = 503;
      ctx.body = errorBody(method, CSE138.unavailable, context);
      return;
    }
    ctx.status = failure.status;
    ctx.body = errorBody(method, failure.message, context);
  }

  openapi(): FacadeOpenApi {
    return CSE138_OPENAPI;
  }

  examples(baseUrl: string): readonly string[] {
    const json = `-H 'Content-Type: application/json'`;
    return [
      `curl -i -X PUT ${json} -d '{"value":"sampleValue"}' ${baseUrl}/kvs/keys/sampleKey`,
      `curl -i ${baseUrl}/kvs/keys/sampleKey`,
      `curl -i -X DELETE ${baseUrl}/kvs/keys/sampleKey`,
      `curl -i ${baseUrl}/kvs/key-count`,
      `curl -i ${baseUrl}/kvs/shards`,
    ];
  }
}

async function only(ctx: Context, method: string, work: () => void | Promise<void>): Promise<void> {
  if (ctx.method === method || (method === 'GET' && ctx.method === 'HEAD')) return work();
  ctx.status = 405;
  ctx.set('Allow', method);
  ctx.body = errorBody(ctx.method, CSE138.methodNotAllowed);
}

/**
 * The key: everything after `/kvs/keys/`, percent-decoded.
 * @throws KvError KVMESH_ERR_KV_KEY_INVALID (empty), KVMESH_ERR_HTTP_BAD_REQUEST (malformed escapes).
 */
export function keyOf(path: string): string {
  const key = decodeSegment(path.slice(CSE138.keysPrefix.length));
  if (key === '') throw new KvError('KVMESH_ERR_KV_KEY_INVALID', 'Key is missing');
  return key;
}

function decodeSegment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new KvError('KVMESH_ERR_HTTP_BAD_REQUEST', 'Key is not valid percent-encoded UTF-8');
  }
}
