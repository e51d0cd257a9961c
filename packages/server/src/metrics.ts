import type { KvServiceStats, StorageMetrics } from '@kvmesh/core';
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
