import { loadKeyHash } from './key-hash.js';
import { nodeOrigin } from './nodes.js';
import type { NodeAnswer, NodePools } from './nodes.js';
import { RoutingTable, routesProblem } from './routing-table.js';
import type { ClusterMember, RoutesAnswer } from './routing-table.js';

export interface TopologyOptions {
  readonly seeds: readonly string[];
  readonly minConnections: number;
  readonly refreshIntervalMs: number;
  /** False: every request goes to any node (no routing table is read). */
  readonly routing: boolean;
  /** Longest wait for one cluster request of a refresh. */
  readonly requestTimeoutMs: number;
}

/** Where one request of a key should go, in the order to try. */
export interface Targets {
  /** Node origins to try in turn. */
  readonly nodes: readonly string[];
  /** The key's primary by the table, when known: a write it did not serve was forwarded. */
  readonly primary?: { readonly id: string; readonly origin: string };
  /** True when the first node is a replica of the key by the table. */
  readonly routed: boolean;
}

/** A refresh soon after a hint that the map is stale, but not more often than this. */
const MIN_REFRESH_GAP_MS = 200;

/**
 * What the client knows of the cluster: the members (id → node origin,
 * state) and the placement's routing table, from `GET /v1/cluster` and
 * `GET /v1/cluster/routes` of a node that answers. Refreshed every
 * `refreshIntervalMs`, and soon after a hint that it is stale (a node
 * refused a connection, a write was forwarded, a KVMESH_ERR_KV_NOT_OWNER).
 * Keeps at least `minConnections` nodes answering when it knows enough.
 */
export class Topology {
  readonly #options: TopologyOptions;
  readonly #nodes: NodePools;
  readonly #seeds: readonly string[];
  /** Member id → origin and state, from the last refresh. */
  #members = new Map<string, { origin: string; state: string }>();
  #table: RoutingTable | undefined;
  #refreshing: Promise<void> | undefined;
  #lastRefresh = 0;
  #staleTimer: NodeJS.Timeout | undefined;
  #timer: NodeJS.Timeout | undefined;
  #connecting: Promise<void> | undefined;
  #next = 0;
  #closed = false;
  /** Refreshes that completed, for tests and metrics. */
  refreshes = 0;

  constructor(options: TopologyOptions, nodes: NodePools) {
    this.#options = options;
    this.#nodes = nodes;
    this.#seeds = Object.freeze([...new Set(options.seeds.map(nodeOrigin))]);
    if (options.refreshIntervalMs > 0) {
      this.#timer = setInterval(() => void this.refresh().catch(() => undefined), options.refreshIntervalMs);
      this.#timer.unref();
    }
  }

  get table(): RoutingTable | undefined {
    return this.#table;
  }

  /** Members by id as the last refresh saw them. */
  members(): ReadonlyMap<string, { readonly origin: string; readonly state: string }> {
    return this.#members;
  }

  /** Where a request for `key` goes: its replicas first when the table is known, then any node. */
  targets(key: string, intent: 'read' | 'write'): Targets {
    const others = this.#anyNodes();
    const table = this.#table;
    if (table === undefined) return { nodes: others, routed: false };
    const ids = table.replicas(key);
    const replicas: string[] = [];
    for (const id of ids) {
      const member = this.#members.get(id);
      if (member !== undefined && member.state !== 'dead' && member.state !== 'left') replicas.push(member.origin);
    }
    const up = replicas.filter((o) => !this.#nodes.isDown(o));
    if (up.length === 0) return { nodes: [...new Set([...others, ...replicas])], routed: false };
    // Reads go to any replica, so the load spreads; a write to its primary, which stamps it.
    if (intent === 'read' && up.length > 1) {
      const start = Math.floor(Math.random() * up.length);
      up.push(...up.splice(0, start));
    }
    const nodes = [...new Set([...up, ...others, ...replicas])];
    const primaryId = ids[0];
    const primary = primaryId === undefined ? undefined : this.#members.get(primaryId);
    return {
      nodes,
      routed: true,
      ...(primary !== undefined && primaryId !== undefined
        ? { primary: { id: primaryId, origin: primary.origin } }
        : {}),
    };
  }

  /** Any node, for requests the table cannot route: connected ones first (in turn), then the rest; down ones last. */
  #anyNodes(): string[] {
    const known = new Set<string>(this.#nodes.connected());
    for (const m of this.#members.values()) if (m.state !== 'dead' && m.state !== 'left') known.add(m.origin);
    for (const s of this.#seeds) known.add(s);
    const all = [...known];
    const up = all.filter((o) => !this.#nodes.isDown(o));
    const down = all.filter((o) => this.#nodes.isDown(o));
    if (up.length > 1) {
      const start = this.#next++ % up.length;
      up.push(...up.splice(0, start));
    }
    return [...up, ...down];
  }

  /** A hint that the map may be stale: refresh soon (at most every MIN_REFRESH_GAP_MS). */
  stale(): void {
    if (this.#closed || this.#staleTimer !== undefined) return;
    const wait = Math.max(0, this.#lastRefresh + MIN_REFRESH_GAP_MS - Date.now());
    this.#staleTimer = setTimeout(() => {
      this.#staleTimer = undefined;
      void this.refresh().catch(() => undefined);
    }, wait);
    this.#staleTimer.unref();
  }

  /**
   * Reads members and routing table from the first node that answers
   * (connected nodes first, then members, then seeds). One refresh at a
   * time: a call during one waits for it.
   */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = undefined;
      this.#lastRefresh = Date.now();
    });
    return this.#refreshing;
  }

  async #refresh(): Promise<void> {
    let lastError: unknown = new Error('no node to ask');
    for (const origin of this.#anyNodes()) {
      if (this.#closed) return;
      try {
        const [cluster, routes] = await Promise.all([
          this.#getJson(origin, '/v1/cluster'),
          this.#options.routing ? this.#getJson(origin, '/v1/cluster/routes') : undefined,
        ]);
        this.#nodes.up(origin);
        await this.#install(origin, cluster, routes);
        this.refreshes++;
        this.#ensureConnections();
        return;
      } catch (err) {
        lastError = err;
        this.#nodes.down(origin);
      }
    }
    throw lastError;
  }

  async #install(origin: string, cluster: NodeAnswer, routes: NodeAnswer | undefined): Promise<void> {
    if (cluster.status !== 200) throw new Error(`${origin} answered GET /v1/cluster with ${cluster.status}`);
    const view = JSON.parse(cluster.body.toString('utf8')) as { members?: ClusterMember[] };
    const members = new Map<string, { origin: string; state: string }>();
    for (const m of view.members ?? []) {
      if (typeof m?.id === 'string' && typeof m.address === 'string') {
        members.set(m.id, { origin: nodeOrigin(m.address), state: String(m.state) });
      }
    }
    let table: RoutingTable | undefined;
    if (routes?.status === 200) {
      const answer = JSON.parse(routes.body.toString('utf8')) as unknown;
      if (routesProblem(answer) === undefined) {
        const r = answer as RoutesAnswer;
        for (const m of r.members) {
          if (!members.has(m.id)) members.set(m.id, { origin: nodeOrigin(m.address), state: String(m.state) });
        }
        table = this.#table?.epoch === r.epoch ? this.#table : new RoutingTable(r, await loadKeyHash(r.hash));
      }
    }
    // A 404 (the placement publishes no table) or a table this client cannot read: any node coordinates.
    this.#members = members;
    this.#table = table;
    const keep = new Set([...this.#seeds, ...[...members.values()].map((m) => m.origin)]);
    this.#nodes.forget(keep);
  }

  /** Opens connections to more nodes while fewer than minConnections answer (in the background). */
  #ensureConnections(): void {
    if (this.#connecting !== undefined || this.#closed) return;
    const connected = new Set(this.#nodes.connected());
    const missing = this.#options.minConnections - connected.size;
    if (missing <= 0) return;
    const candidates = this.#anyNodes().filter((o) => !connected.has(o) && !this.#nodes.isDown(o));
    if (candidates.length === 0) return;
    this.#connecting = Promise.all(
      candidates.slice(0, missing).map(async (origin) => {
        try {
          const res = await this.#get(origin, '/v1/health');
          if (res.status === 200) this.#nodes.up(origin);
        } catch {
          this.#nodes.down(origin);
        }
      }),
    )
      .then(() => undefined)
      .finally(() => {
        this.#connecting = undefined;
      });
  }

  /** Called after every call: keeps minConnections, and reads the map once when it was never read. */
  touch(): void {
    if (this.#lastRefresh === 0 && this.#refreshing === undefined) void this.refresh().catch(() => undefined);
    else this.#ensureConnections();
  }

  async #getJson(origin: string, path: string): Promise<NodeAnswer> {
    return this.#get(origin, path);
  }

  #get(origin: string, path: string): Promise<NodeAnswer> {
    return this.#nodes.send(origin, {
      method: 'GET',
      path,
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(this.#options.requestTimeoutMs),
    });
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    clearTimeout(this.#staleTimer);
  }
}
