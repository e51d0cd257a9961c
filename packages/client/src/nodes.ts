import { Pool } from 'undici';
import type { Dispatcher } from 'undici';

/** One node's answer, read whole. */
export interface NodeAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

export interface NodeRequest {
  readonly method: 'GET' | 'HEAD' | 'PUT' | 'DELETE';
  /** The path as sent, percent-encoded already (undici keeps it as given). */
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: Uint8Array;
  readonly signal: AbortSignal;
}

export interface NodePoolOptions {
  /** Keep-alive connections per node at most. */
  readonly connectionsPerNode: number;
  /** Longest wait for a TCP connection to a node. */
  readonly connectTimeoutMs: number;
}

/** First wait before a node that refused a connection is tried again first; doubled per failure. */
const DOWN_MS = 250;
const DOWN_MAX_MS = 30_000;

interface NodeEntry {
  readonly pool: Pool;
  /** Failures in a row; 0 when the last request got an answer. */
  failures: number;
  /** Until when (ms since epoch) the node is tried only when no other is left. */
  downUntil: number;
  /** True once the node answered, until it fails: it counts as a connection (minConnections). */
  connected: boolean;
}

/**
 * A keep-alive undici Pool per node (by origin), created on first use, and
 * what the client learned about each node's health: a node that refused a
 * connection is marked down for a while (doubling up to 30 s) so requests
 * go elsewhere first.
 */
export class NodePools {
  readonly #options: NodePoolOptions;
  readonly #nodes = new Map<string, NodeEntry>();
  #closed = false;

  constructor(options: NodePoolOptions) {
    this.#options = options;
  }

  /** Sends one request to `origin` and reads its whole answer. Rejects with undici's error when the connection fails. */
  async send(origin: string, request: NodeRequest): Promise<NodeAnswer> {
    const entry = this.#entry(origin);
    const options: Dispatcher.RequestOptions = {
      origin,
      path: request.path,
      method: request.method,
      signal: request.signal,
      ...(request.headers === undefined ? {} : { headers: request.headers }),
      ...(request.body === undefined ? {} : { body: request.body }),
    };
    const res = await entry.pool.request(options);
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body };
  }

  /** The node answered: it is up, and counts as a connection. */
  up(origin: string): void {
    const entry = this.#entry(origin);
    entry.failures = 0;
    entry.downUntil = 0;
    entry.connected = true;
  }

  /** The node could not be reached: tried last for a while. */
  down(origin: string): void {
    const entry = this.#entry(origin);
    entry.failures++;
    entry.connected = false;
    entry.downUntil = Date.now() + Math.min(DOWN_MAX_MS, DOWN_MS * 2 ** (entry.failures - 1));
  }

  isDown(origin: string): boolean {
    const entry = this.#nodes.get(origin);
    return entry !== undefined && entry.downUntil > Date.now();
  }

  /** Nodes that answered their last request. */
  connected(): string[] {
    return [...this.#nodes].filter(([, e]) => e.connected).map(([origin]) => origin);
  }

  /** Closes the pools of nodes not in `keep` that are down (members that left). */
  forget(keep: ReadonlySet<string>): void {
    for (const [origin, entry] of this.#nodes) {
      if (keep.has(origin) || entry.connected) continue;
      this.#nodes.delete(origin);
      void entry.pool.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#nodes.values()].map((e) => e.pool);
    this.#nodes.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }

  #entry(origin: string): NodeEntry {
    let entry = this.#nodes.get(origin);
    if (entry === undefined) {
      if (this.#closed) throw new Error('the client is closed');
      entry = {
        pool: new Pool(origin, {
          connections: this.#options.connectionsPerNode,
          connect: { timeout: this.#options.connectTimeoutMs },
        }),
        failures: 0,
        downUntil: 0,
        connected: false,
      };
      this.#nodes.set(origin, entry);
    }
    return entry;
  }
}

/** System and undici error codes of a connection that was never made: the request did not leave. */
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** True when `err` says the connection was never made, so no node saw the request. */
export function neverSent(err: unknown): boolean {
  for (
    let e = err as { code?: unknown; cause?: unknown; errors?: unknown } | undefined, depth = 0;
    e && depth < 4;
    depth++
  ) {
    if (typeof e.code === 'string' && NOT_SENT.has(e.code)) return true;
    // Happy eyeballs reports every address's failure together.
    if (Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every((x) => neverSent(x))) return true;
    e = e.cause as typeof e;
  }
  return false;
}

/** `scheme://host:port` of a node given as a URL or as `host:port`; members' transport URIs become http. */
export function nodeOrigin(address: string): string {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(address) ? address : `http://${address}`;
  const url = new URL(text);
  const scheme = url.protocol === 'https:' ? 'https:' : 'http:';
  return `${scheme}//${url.host}`;
}
