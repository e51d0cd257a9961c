import { KvError } from '@kvmesh/core';
import type { Clock, Cluster, FacadeHttp, KvService, Member, Placement, StoredRecord } from '@kvmesh/core';
import type { Context } from 'koa';
import { CSE138, errorBody } from './answers.js';
import { CausalContext } from './causal-context.js';
import { hostPortOf, shardView } from './shard-view.js';

/** Values are stored as the JSON text the client sent under `value`. */
const VALUE_TYPE = 'application/json';
/** Pause before asking the replicas again for a key a read found older than the client's context. */
const STALE_RETRY_MS = 50;

export interface KeyRoutesComponents {
  readonly kv: KvService;
  readonly cluster: Cluster;
  readonly placement: Placement;
  readonly clock: Clock;
}

/** Where the facade keeps the request's causal context, so an error answer carries it too. */
export const CONTEXT_STATE = 'cse138Context';

/**
 * `/kvs/keys/<key>` GET, PUT and DELETE (its design document, "Insert new key" to
 * "Remove an existing key") over the node's KV service. The answer of a
 * node that worked through another adds that node's `address`; every answer
 * carries the client's `causal-context` with what this request saw added.
 */
export class KeyRoutes {
  readonly #c: KeyRoutesComponents;
  readonly #http: FacadeHttp;

  constructor(components: KeyRoutesComponents, http: FacadeHttp) {
    this.#c = components;
    this.#http = http;
  }

  async handle(ctx: Context, key: string): Promise<void> {
    const method = ctx.method === 'HEAD' ? 'GET' : ctx.method;
    const body = await this.#body(ctx);
    const context = CausalContext.from(body?.[CSE138.context]);
    ctx.state[CONTEXT_STATE] = context;
    if (method !== 'GET' && method !== 'PUT' && method !== 'DELETE') {
      ctx.set('Allow', 'GET, PUT, DELETE');
      return answer(ctx, 405, errorBody(method, CSE138.methodNotAllowed, { [CSE138.context]: context }));
    }
    if ([...key].length > CSE138.maxKeyChars) {
      return answer(ctx, 400, errorBody(method, CSE138.keyTooLong, { [CSE138.context]: context }));
    }
    const view = shardView(this.#c.cluster.view());
    if (!view.member) {
      // Not (yet) in the view it runs with: it serves no keys until a view change adds it.
      return answer(ctx, 503, errorBody(method, CSE138.unavailable, { [CSE138.context]: context }));
    }
    if (method === 'PUT') {
      const value = body?.['value'];
      if (value === undefined || value === null) {
        return answer(ctx, 400, errorBody(method, CSE138.valueMissing, { [CSE138.context]: context }));
      }
      return this.#put(ctx, key, value, context, view.selfId);
    }
    return method === 'GET' ? this.#get(ctx, key, context, view.selfId) : this.#delete(ctx, key, context, view.selfId);
  }

  async #get(ctx: Context, key: string, context: CausalContext, selfId: string): Promise<void> {
    const result = await this.#withDeadline(async (signal) => {
      for (;;) {
        const got = await this.#c.kv.get(key, { signal });
        if (!context.isStale(key, got.record?.version)) return got;
        // A replica behind what this client saw: ask again until it caught up or the deadline passes.
        await this.#c.clock.sleep(STALE_RETRY_MS, signal);
      }
    });
    const extra = await this.#served(key, result.servedBy, selfId);
    if (result.record === undefined) {
      return answer(ctx, 404, {
        doesExist: false,
        error: CSE138.keyMissing,
        message: 'Error in GET',
        ...extra,
        [CSE138.context]: context,
      });
    }
    context.observe(key, result.record.version);
    return answer(ctx, 200, {
      doesExist: true,
      message: CSE138.retrieved,
      value: valueOf(result.record),
      ...extra,
      [CSE138.context]: context,
    });
  }

  async #put(ctx: Context, key: string, value: unknown, context: CausalContext, selfId: string): Promise<void> {
    const bytes = Buffer.from(JSON.stringify(value), 'utf8');
    const result = await this.#withDeadline((signal) => this.#c.kv.put(key, bytes, VALUE_TYPE, undefined, { signal }));
    context.observe(key, result.version);
    const extra = await this.#served(key, result.servedBy, selfId);
    if (result.created) {
      return answer(ctx, 201, { message: CSE138.added, replaced: false, ...extra, [CSE138.context]: context });
    }
    return answer(ctx, 200, { message: CSE138.updated, replaced: true, ...extra, [CSE138.context]: context });
  }

  async #delete(ctx: Context, key: string, context: CausalContext, selfId: string): Promise<void> {
    const result = await this.#withDeadline((signal) => this.#c.kv.delete(key, undefined, { signal }));
    if (result.version !== undefined) context.observe(key, result.version);
    const extra = await this.#served(key, result.servedBy, selfId);
    if (!result.existed) {
      return answer(ctx, 404, {
        doesExist: false,
        error: CSE138.keyMissing,
        message: 'Error in DELETE',
        ...extra,
        [CSE138.context]: context,
      });
    }
    return answer(ctx, 200, { doesExist: true, message: CSE138.deleted, ...extra, [CSE138.context]: context });
  }

  /**
   * `{address}` of the replica that served, when the request was proxied:
   * none when this node served it, or holds a replica of the key itself
   * (a write through a replica that is not the key's primary is run by the
   * primary, and stored here too, as every replica stores every write).
   */
  async #served(key: string, member: Member, selfId: string): Promise<Record<string, string>> {
    if (member.id === selfId) return {};
    try {
      const set = await this.#c.placement.locate(key, { intent: 'read' });
      if (set.replicas.some((m) => m.id === selfId)) return {};
    } catch {
      // No replica set now (the view is changing): say who served.
    }
    return { address: hostPortOf(member.meta['api'] ?? member.address) };
  }

  /** The body as a JSON object; anything else (none, not JSON, not an object) as undefined. */
  async #body(ctx: Context): Promise<Record<string, unknown> | undefined> {
    let parsed: unknown;
    try {
      parsed = await this.#http.readJson(ctx);
    } catch (err) {
      if ((err as { code?: string }).code === 'KVMESH_ERR_HTTP_BAD_REQUEST') return undefined;
      throw err;
    }
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  }

  /** Runs `work` with a signal that aborts after CSE138's 5 s; past it the request answers 503. */
  async #withDeadline<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    const timer = this.#c.clock.setTimeout(
      () => controller.abort(new KvError('KVMESH_ERR_RPC_TIMEOUT', `no answer within ${CSE138.requestTimeoutMs} ms`)),
      CSE138.requestTimeoutMs,
    );
    try {
      return await work(controller.signal);
    } catch (err) {
      if (controller.signal.aborted) throw controller.signal.reason as Error;
      throw err;
    } finally {
      timer.cancel();
    }
  }
}

export function answer(ctx: Context, status: number, body: Record<string, unknown>): void {
  ctx.status = status;
  ctx.body = JSON.parse(JSON.stringify(body)) as Record<string, unknown>;
}

/** The value as the client sent it: the stored JSON text parsed, or the bytes as text when not JSON. */
function valueOf(record: StoredRecord): unknown {
  const text = Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength).toString('utf8');
  if (record.contentType.split(';')[0]!.trim() !== VALUE_TYPE) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
