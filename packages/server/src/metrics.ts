import type { ClusterView, KvServiceStats, MovementStatus, StorageMetrics } from '@kvmesh/core';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** Upper bounds (seconds) of the request latency histogram. */
export const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What the metrics read from the node; each part is optional because nodes differ. */
export interface MetricSources {
  /** Live keys in local storage. */
  count?(): Promise<number>;
  /** Approximate bytes in local storage. */
  sizeBytes?(): Promise<number>;
  /**
   * The storage strategy's own figures (`Storage.metrics()`), each exported
   * as `kvmesh_storage_<name>`: a counter when the name ends in `_total`, a
   * gauge otherwise (e.g. `evictions_total` → `kvmesh_storage_evictions_total`).
   */
  storage?(): StorageMetrics;
  /** Node-to-node counters (the core RpcService's `stats`). */
  rpc?(): Readonly<Record<string, number>> | undefined;
  /** The KV service's operation counters. */
  kv?(): KvServiceStats;
  /** Data movement progress (the KV service's `movementStatus()`). */
  movement?(): MovementStatus;
  /** The cluster as this node sees it (the `cluster` component's `view()`). */
  cluster?(): ClusterView;
}

const MEMBER_STATES = ['alive', 'suspect', 'dead', 'left'] as const;

/** Each member's share of a placement drawing (PlacementDrawing), summing to 1; none for a drawing of another shape. */
export function drawingShares(drawing: unknown): [string, number][] {
  const weights = new Map<string, number>();
  const add = (member: unknown, weight: number): void => {
    if (typeof member === 'string' && Number.isFinite(weight)) weights.set(member, (weights.get(member) ?? 0) + weight);
  };
  const d = drawing as { shape?: string; points?: unknown; groups?: unknown; buckets?: unknown } | undefined;
  if (d?.shape === 'ring' && Array.isArray(d.points))
    for (const p of d.points as { member?: unknown }[]) add(p.member, 1);
  if (d?.shape === 'groups' && Array.isArray(d.groups)) {
    for (const g of d.groups as { members?: unknown; weight?: unknown }[]) {
      const members = Array.isArray(g.members) ? g.members : [];
      for (const m of members) add(m, typeof g.weight === 'number' ? g.weight / members.length : 0);
    }
  }
  if (d?.shape === 'buckets' && Array.isArray(d.buckets)) {
    for (const b of d.buckets as { members?: unknown }[])
      for (const m of Array.isArray(b.members) ? b.members : []) add(m, 1);
  }
  const total = [...weights.values()].reduce((a, b) => a + b, 0);
  return total > 0 ? [...weights].sort(([a], [b]) => (a < b ? -1 : 1)).map(([m, w]) => [m, w / total]) : [];
}

/** Per (route, method): status counts and a latency histogram, kept in plain arrays. */
class RouteSlot {
  readonly route: string;
  readonly method: string;
  readonly statuses = new Map<number, number>();
  readonly buckets = new Float64Array(LATENCY_BUCKETS_S.length);
  count = 0;
  sum = 0;

  constructor(route: string, method: string) {
    this.route = route;
    this.method = method;
  }

  observe(status: number, seconds: number): void {
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
    this.count++;
    this.sum += seconds;
    for (let i = 0; i < LATENCY_BUCKETS_S.length; i++) {
      if (seconds <= LATENCY_BUCKETS_S[i]!) {
        this.buckets[i]!++;
        return;
      }
    }
  }
}

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** Prometheus metric names: what a storage figure's name may be, after the `kvmesh_storage_` prefix. */
const METRIC_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Figures that `/metrics` already exports under these names from other sources. */
const RESERVED_STORAGE_NAMES = new Set(['bytes']);

/**
 * The Prometheus metrics of one node, in a registry of its own (many nodes
 * can share a process). Request accounting on the hot path is a map lookup
 * and a few additions; prom-client only formats at scrape time.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly #slots = new Map<string, Map<string, RouteSlot>>();
  readonly #storage: (() => StorageMetrics) | undefined;
  /** Storage figures registered so far; a strategy may report a new one later. */
  readonly #storageNames = new Set<string>();

  constructor(sources: MetricSources = {}) {
    collectDefaultMetrics({ register: this.registry });
    this.#custom(
      'kvmesh_http_requests_total',
      'HTTP requests answered, by route template, method and status.',
      'counter',
      () => this.#requestValues(),
    );
    this.#custom(
      'kvmesh_http_request_duration_seconds',
      'Time from receiving an HTTP request to handing its response to the socket, by route template and method.',
      'histogram',
      () => this.#latencyValues(),
    );
    if (sources.count) {
      const count = sources.count;
      new Gauge({
        name: 'kvmesh_keys',
        help: 'Live keys in local storage.',
        registers: [this.registry],
        async collect() {
          this.set(await count());
        },
      });
    }
    if (sources.sizeBytes) {
      const sizeBytes = sources.sizeBytes;
      new Gauge({
        name: 'kvmesh_storage_bytes',
        help: 'Approximate bytes of keys and values in local storage.',
        registers: [this.registry],
        async collect() {
          this.set(await sizeBytes());
        },
      });
    }
    this.#storage = sources.storage;
    this.#registerStorageMetrics();
    if (sources.kv) {
      const kv = sources.kv;
      this.#custom('kvmesh_kv_operations_total', 'KV operations by kind and outcome.', 'counter', () =>
        Object.entries(kv().operations).flatMap(([operation, outcomes]) =>
          Object.entries(outcomes).map(([outcome, value]) => ({ labels: { operation, outcome }, value })),
        ),
      );
      this.#custom(
        'kvmesh_kv_read_repairs_total',
        'Records written back to stale replicas after a read.',
        'counter',
        () => [{ labels: {}, value: kv().readRepairs }],
      );
      this.#custom('kvmesh_kv_replica_failures_total', 'Replica requests that failed or timed out.', 'counter', () => [
        { labels: {}, value: kv().replicaFailures },
      ]);
      this.#custom(
        'kvmesh_kv_tombstones_collected_total',
        'Tombstones removed after their grace period.',
        'counter',
        () => [{ labels: {}, value: kv().tombstonesCollected }],
      );
      const counters: readonly [string, string, (stats: KvServiceStats) => number][] = [
        [
          'kvmesh_kv_hints_written_total',
          'Writes left on a fallback for a replica that was down.',
          (k) => k.hintsWritten,
        ],
        ['kvmesh_kv_forwarded_writes_total', "Client writes sent on to the key's primary.", (k) => k.forwardedWrites],
        [
          'kvmesh_kv_relocations_total',
          'Operations that located their key again after a refusal.',
          (k) => k.relocations,
        ],
      ];
      for (const [name, help, value] of counters) {
        this.#custom(name, help, 'counter', () => [{ labels: {}, value: value(kv()) }]);
      }
    }
    if (sources.movement) {
      const movement = sources.movement;
      const figures: readonly [string, string, 'counter' | 'gauge', (m: MovementStatus) => number][] = [
        [
          'kvmesh_movement_moving',
          '1 while a move from or to this node is unfinished.',
          'gauge',
          (m) => (m.state === 'moving' ? 1 : 0),
        ],
        [
          'kvmesh_movement_moves_planned_total',
          'Outgoing moves planned after view changes.',
          'counter',
          (m) => m.moves.planned,
        ],
        ['kvmesh_movement_moves_done_total', 'Outgoing moves completed.', 'counter', (m) => m.moves.done],
        [
          'kvmesh_movement_moves_pending',
          'Unfinished moves from and to this node.',
          'gauge',
          (m) => m.moves.outgoing + m.moves.incoming,
        ],
        [
          'kvmesh_movement_keys_copied_total',
          'Records stored at new owners by rebalancing.',
          'counter',
          (m) => m.keys.copied,
        ],
        [
          'kvmesh_movement_keys_purged_total',
          'Records removed here once every new owner stored them.',
          'counter',
          (m) => m.keys.purged,
        ],
        [
          'kvmesh_movement_keys_received_total',
          "Records stored here from other nodes' batches.",
          'counter',
          (m) => m.keys.received,
        ],
        ['kvmesh_movement_hints_held', 'Hints held here for members that were down.', 'gauge', (m) => m.hints.held],
        [
          'kvmesh_movement_hints_replayed_total',
          'Hints delivered to their member.',
          'counter',
          (m) => m.hints.replayed,
        ],
        [
          'kvmesh_movement_anti_entropy_passes_total',
          'Anti-entropy comparisons with a peer.',
          'counter',
          (m) => m.antiEntropy.passes,
        ],
        [
          'kvmesh_movement_anti_entropy_repaired_total',
          'Records repaired by anti-entropy.',
          'counter',
          (m) => m.antiEntropy.repaired,
        ],
        [
          'kvmesh_movement_anti_entropy_differing_total',
          "Digest buckets anti-entropy found to differ from a peer's.",
          'counter',
          (m) => m.antiEntropy.differing,
        ],
      ];
      for (const [name, help, type, value] of figures) {
        this.#custom(name, help, type, () => [{ labels: {}, value: value(movement()) }]);
      }
      this.#custom('kvmesh_movement_ranges_moving', 'Key ranges moving from or to this node now.', 'gauge', () => {
        const { moves } = movement();
        return [
          { labels: { direction: 'out' }, value: moves.outgoing },
          { labels: { direction: 'in' }, value: moves.incoming },
        ];
      });
    }
    if (sources.cluster) {
      const cluster = sources.cluster;
      this.#custom('kvmesh_cluster_members', 'Members this node knows, by state.', 'gauge', () => {
        const byState = new Map<string, number>(MEMBER_STATES.map((s) => [s, 0]));
        for (const m of cluster().members) byState.set(m.state, (byState.get(m.state) ?? 0) + 1);
        return [...byState].map(([state, value]) => ({ labels: { state }, value }));
      });
      this.#custom(
        'kvmesh_placement_epoch',
        "The placement's view epoch (equal on nodes that see the same data members).",
        'gauge',
        () => {
          const epoch = cluster().placement['epoch'];
          return typeof epoch === 'number' ? [{ labels: {}, value: epoch }] : [];
        },
      );
      this.#custom(
        'kvmesh_placement_member_share',
        "Each member's share of the placement as this node draws it (ring points, group weights, bucket entries): how evenly keys spread.",
        'gauge',
        () => drawingShares(cluster().placement['drawing']).map(([member, value]) => ({ labels: { member }, value })),
      );
    }
    if (sources.rpc) {
      const rpc = sources.rpc;
      this.#custom(
        'kvmesh_rpc_total',
        'Node-to-node rpc events by kind (requestsSent, requestsServed, ...).',
        'counter',
        () => Object.entries(rpc() ?? {}).map(([kind, value]) => ({ labels: { kind }, value })),
      );
    }
  }

  /** The accounting slot of a route template and method; keep it and call `observe` on it. */
  slot(route: string, method: string): RouteSlot {
    let byMethod = this.#slots.get(route);
    if (byMethod === undefined) {
      byMethod = new Map();
      this.#slots.set(route, byMethod);
    }
    let slot = byMethod.get(method);
    if (slot === undefined) {
      slot = new RouteSlot(route, method);
      byMethod.set(method, slot);
    }
    return slot;
  }

  observe(route: string, method: string, status: number, seconds: number): void {
    this.slot(route, method).observe(status, seconds);
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    this.#registerStorageMetrics();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  *#allSlots(): Iterable<RouteSlot> {
    for (const byMethod of this.#slots.values()) yield* byMethod.values();
  }

  #requestValues(): MetricValue[] {
    const values: MetricValue[] = [];
    for (const slot of this.#allSlots()) {
      for (const [status, value] of slot.statuses) {
        values.push({ labels: { route: slot.route, method: slot.method, status }, value });
      }
    }
    return values;
  }

  #latencyValues(): MetricValue[] {
    const name = 'kvmesh_http_request_duration_seconds';
    const values: MetricValue[] = [];
    for (const slot of this.#allSlots()) {
      const labels = { route: slot.route, method: slot.method };
      let cumulative = 0;
      for (let i = 0; i < LATENCY_BUCKETS_S.length; i++) {
        cumulative += slot.buckets[i]!;
        values.push({
          metricName: `${name}_bucket`,
          labels: { ...labels, le: LATENCY_BUCKETS_S[i]! },
          value: cumulative,
        });
      }
      values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: slot.count });
      values.push({ metricName: `${name}_sum`, labels, value: slot.sum });
      values.push({ metricName: `${name}_count`, labels, value: slot.count });
    }
    return values;
  }

  /** Registers `kvmesh_storage_<name>` for every figure of the storage not registered yet. */
  #registerStorageMetrics(): void {
    const storage = this.#storage;
    if (storage === undefined) return;
    for (const [name, value] of Object.entries(storage())) {
      if (this.#storageNames.has(name)) continue;
      // A name Prometheus cannot carry, or one that would shadow a core metric, is left out rather than failing the scrape.
      if (!METRIC_NAME.test(name) || RESERVED_STORAGE_NAMES.has(name) || typeof value !== 'number') continue;
      this.#storageNames.add(name);
      const type = name.endsWith('_total') ? 'counter' : 'gauge';
      this.#custom(`kvmesh_storage_${name}`, `Storage strategy figure '${name}'.`, type, () => {
        const current = storage()[name];
        return typeof current === 'number' ? [{ labels: {}, value: current }] : [];
      });
    }
  }

  /** A metric whose values are computed at scrape time, registered as prom-client would. */
  #custom(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', values: () => MetricValue[]): void {
    const metric = {
      name,
      help,
      type,
      aggregator: 'sum',
      get: () => Promise.resolve({ name, help, type, aggregator: 'sum', values: values() }),
      reset: () => undefined,
    };
    this.registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
  }
}

export type { RouteSlot };
