import { KvError } from '@kvmesh/core';
import type { Clock, Cluster, ClusterView, FacadeHttp, Placement, Storage } from '@kvmesh/core';
import type { Context } from 'koa';
import { CSE138, errorBody } from './answers.js';
import { answer } from './key-routes.js';
import type { NodeStatusService } from './node-status.js';
import { hostPortOf, shardView } from './shard-view.js';
import type { Shard } from './shard-view.js';
import { changeView } from './view-change.js';

/** Deadline of asking a replica of another shard for its key count. */
const SHARD_COUNT_TIMEOUT_MS = 2_000;

export interface AdminRoutesComponents {
  readonly cluster: Cluster;
  readonly placement: Placement;
  readonly storage: Storage;
  readonly clock: Clock;
  readonly status: NodeStatusService;
}

/** `/kvs/key-count`, `/kvs/view-change`, `/kvs/shards` and `/kvs/shards/<id>` (its design document, "Administrative Operations"). */
export class AdminRoutes {
  readonly #c: AdminRoutesComponents;
  readonly #http: FacadeHttp;

  constructor(components: AdminRoutesComponents, http: FacadeHttp) {
    this.#c = components;
    this.#http = http;
  }

  /** Keys stored on this node; with replicated shards, also the shard it is a replica of. */
  async keyCount(ctx: Context): Promise<void> {
    const view = shardView(this.#c.cluster.view());
    const count = await this.#c.storage.count();
    const shard = view.factor > 1 && view.own !== undefined ? { 'shard-id': view.own.id } : {};
    answer(ctx, 200, { message: CSE138.keyCount, 'key-count': count, ...shard });
  }

  shards(ctx: Context): void {
    const view = shardView(this.#c.cluster.view());
    answer(ctx, 200, { message: CSE138.shardList, shards: view.shards.map((s) => s.id) });
  }

  async shard(ctx: Context, id: string): Promise<void> {
    const view = shardView(this.#c.cluster.view());
    const shard = view.shards.find((s) => s.id === id);
    if (shard === undefined) return answer(ctx, 404, errorBody('GET', CSE138.shardMissing));
    const count = await this.#shardCount(shard);
    answer(ctx, 200, { message: CSE138.shardInfo, 'shard-id': shard.id, 'key-count': count, replicas: shard.replicas });
  }

  async viewChange(ctx: Context): Promise<void> {
    const body = await this.#http.readJson(ctx).catch(() => undefined);
    const fields = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
    const entries = viewEntries(fields['view']);
    if (entries === undefined) return answer(ctx, 400, errorBody('PUT', CSE138.viewMissing));
    const raw = fields['repl-factor'];
    const factor = replFactor(raw);
    if (factor === undefined && raw !== undefined && raw !== null) {
      return answer(
        ctx,
        400,
        errorBody('PUT', `repl-factor must be a whole number of at least 1; found ${JSON.stringify(raw)}`),
      );
    }
    const nodes = new Set(entries).size;
    if (factor !== undefined && factor > nodes) {
      return answer(
        ctx,
        400,
        errorBody('PUT', `repl-factor ${factor} is more than the ${nodes} node${nodes === 1 ? '' : 's'} of the view`),
      );
    }
    // The factor travels with the view as a parameter for the placement, which checks it (400 when it cannot
    // meet it) and reshards by it; one equal to the running factor changes nothing and is not sent.
    const current = shardView(this.#c.cluster.view()).factor;
    const parameters = factor !== undefined && factor !== current ? { [FACTOR_PARAMETER]: factor } : undefined;
    const result = await changeView(this.#c, keepIds(this.#c.cluster.view(), entries), parameters);
    const shards =
      result.view.factor > 1
        ? result.view.shards.map((s) => ({
            'shard-id': s.id,
            'key-count': Math.max(0, ...s.replicas.map((r) => result.counts.get(r) ?? 0)),
            replicas: s.replicas,
          }))
        : result.view.shards.flatMap((s) =>
            s.replicas.map((r) => ({ address: r, 'key-count': result.counts.get(r) ?? 0 })),
          );
    answer(ctx, 200, { message: CSE138.viewChanged, shards });
  }

  /** Keys a shard stores: this node's count when it is a replica, else the first replica's that answers. */
  async #shardCount(shard: Shard): Promise<number> {
    let failure: unknown;
    for (const uri of shard.uris) {
      try {
        return (await this.#c.status.of(uri, SHARD_COUNT_TIMEOUT_MS)).count;
      } catch (err) {
        failure = err;
      }
    }
    throw failure instanceof KvError
      ? failure
      : new KvError('KVMESH_ERR_TRANSPORT_UNREACHABLE', `no replica of shard ${shard.id} answered`);
  }
}

/**
 * The view parameter a CSE138 `repl-factor` becomes (`ViewParameters`):
 * replicas per shard, for a placement that cuts members into shards.
 */
const FACTOR_PARAMETER = 'replicationFactor';

/** `repl-factor` as a whole number of at least 1 (a JSON number or a decimal string); undefined otherwise. */
function replFactor(value: unknown): number | undefined {
  const n =
    typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  return Number.isSafeInteger(n) && n >= 1 ? n : undefined;
}

/** The `view` of a view change: `"a:p,b:p"` or an array of `host:port`; undefined when missing or empty. */
function viewEntries(view: unknown): string[] | undefined {
  const raw = typeof view === 'string' ? view.split(',') : Array.isArray(view) ? view : undefined;
  if (raw === undefined) return undefined;
  const entries = raw
    .filter((e): e is string => typeof e === 'string')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  return entries.length > 0 ? entries : undefined;
}

/**
 * The view's entries with the member ids the cluster knows kept: a CSE138
 * view names nodes by `host:port`, but nodes started by `kvmesh up` have
 * ids of their own (`n1@127.0.0.2:13800`), and a view that renamed a node
 * would have the cluster move its keys to a member it takes for another
 * node. An address the cluster does not know yet is left as it is (its id
 * is its `host:port`).
 */
function keepIds(view: ClusterView, entries: readonly string[]): string[] {
  const ids = new Map(view.members.map((m) => [hostPortOf(m.address), m.id] as const));
  return entries.map((entry) => {
    if (entry.includes('@')) return entry;
    const id = ids.get(entry);
    return id === undefined || id === entry ? entry : `${id}@${entry}`;
  });
}
