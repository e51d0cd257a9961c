import { setMaxListeners } from 'node:events';
import { RETRY_DEFAULTS, backoffMs, retryAfterMs, sleep } from './backoff.js';
import type { RetryOptions } from './backoff.js';
import { KvClientError } from './errors.js';
import type { WriteOutcome } from './errors.js';
import { NodePools, neverSent } from './nodes.js';
import type { NodeAnswer, NodeRequest } from './nodes.js';
import { Topology } from './topology.js';
import type { Targets } from './topology.js';
import type { RoutingTable } from './routing-table.js';

export interface KvClientOptions {
  /** Nodes to start from, as URLs (`http://127.0.0.1:7700`) or `host:port`; at least one must answer. */
  readonly seeds: readonly string[];
  /** Nodes the client keeps answering connections to when it knows that many (default 2). */
  readonly minConnections?: number;
  /** Send each request to a replica of its key by the placement's routing table (default true). */
  readonly routing?: boolean;
  /** How often the members and routing table are read again (default 5000 ms; 0: only on hints). */
  readonly refreshIntervalMs?: number;
  /** Default deadline of a call, retries included (default 10000 ms). */
  readonly timeoutMs?: number;
  /** Longest wait for a TCP connection to a node (default 2000 ms); then the next node is tried. */
  readonly connectTimeoutMs?: number;
  /** Keep-alive connections per node at most (default 16). */
  readonly connectionsPerNode?: number;
  readonly retry?: RetryOptions;
}

export interface CallOptions {
  /** Deadline of this call, retries included; default the client's `timeoutMs`. */
  readonly timeoutMs?: number;
  /** Stops the call: it rejects with KVMESH_ERR_CLIENT_ABORTED. */
  readonly signal?: AbortSignal;
}

export type GetOptions = CallOptions;

export interface PutOptions extends CallOptions {
  /** Stored with the value; default `text/plain; charset=utf-8` for a string, else `application/octet-stream`. */
  readonly contentType?: string;
  /** Write only over this version (an ETag as returned), or `*`: only if the key exists. */
  readonly ifMatch?: string;
  /** `*`: write only if the key does not exist (create only). */
  readonly ifNoneMatch?: '*';
}

export interface DeleteOptions extends CallOptions {
  /** Delete only this version (an ETag as returned), or `*`. */
  readonly ifMatch?: string;
}

export interface GetResult {
  readonly value: Buffer;
  readonly contentType: string;
  /** The version, bare (the ETag without quotes); pass it to `ifMatch`. */
  readonly version: string;
  /** The member id whose answer this is (`X-Kvmesh-Served-By`), when the node said. */
  readonly servedBy: string | undefined;
  /** The node (origin) the answer came from. */
  readonly node: string;
}

export interface PutResult {
  /** True when the key did not exist (or was deleted) before. */
  readonly created: boolean;
  readonly version: string;
  /** The key's primary, which ran the write. */
  readonly servedBy: string | undefined;
  readonly node: string;
}

export interface DeleteResult {
  /** False when there was nothing to delete (after a retry, possibly because the first attempt deleted it). */
  readonly existed: boolean;
  readonly servedBy: string | undefined;
  readonly node: string;
}

/** Counters of a client since it was built. */
export interface KvClientStats {
  /** Calls made. */
  readonly calls: number;
  /** Requests sent to nodes (retries and failovers included; refreshes not). */
  readonly requests: number;
  /** Calls whose first request went to a replica of the key by the routing table. */
  readonly routed: number;
  /** Retries after a retriable failure (each waited a backoff). */
  readonly retries: number;
  /** Requests moved to another node because the first refused the connection. */
  readonly failovers: number;
  /** Writes sent to their primary by the table that another member served (forwarded: the table was stale). */
  readonly forwarded: number;
  /** Members and routing table read again. */
  readonly refreshes: number;
}

type Intent = 'read' | 'write';

interface Operation {
  readonly intent: Intent;
  readonly key: string;
  readonly request: Omit<NodeRequest, 'signal'>;
  /** A conditional write: never resent once it may have been applied. */
  readonly conditional: boolean;
  /** Statuses that are answers of this operation, not failures. */
  readonly answers: readonly number[];
  readonly options: CallOptions | undefined;
}

/**
 * 503 codes after which nothing was written: the node did not serve, or the
 * key was frozen or had no member, before any replica took the write. Any
 * other 503 or 504 of a write (a quorum not reached, a replica that timed
 * out, a view change spreading) may have been applied on some replicas
 * (docs/errors.md, KVMESH_ERR_KV_QUORUM).
 */
const NOT_APPLIED_UNAVAILABLE = new Set([
  'KVMESH_ERR_HTTP_NOT_READY',
  'KVMESH_ERR_KV_NOT_JOINED',
  'KVMESH_ERR_KV_FROZEN',
  'KVMESH_ERR_PLACEMENT_EMPTY',
  'KVMESH_ERR_KERNEL_STATE',
]);

/**
 * A client of kvmesh's native API (`/v1/kv/{key}`) for a whole cluster:
 * it reads the members and the placement's routing table
 * (`GET /v1/cluster`, `GET /v1/cluster/routes`) and sends each request to a
 * replica of its key (a write to its primary), so no node forwards it; with
 * no table (routed placements), to any node. Keep-alive connections per node
 * (undici Pool); retries with exponential backoff and jitter for failures
 * that allow them; typed errors with the server's codes. See docs/client.md.
 */
export class KvClient {
  readonly #nodes: NodePools;
  readonly #topology: Topology;
  readonly #timeoutMs: number;
  readonly #retry: Required<RetryOptions>;
  readonly #closed = new AbortController();
  #stats = { calls: 0, requests: 0, routed: 0, retries: 0, failovers: 0, forwarded: 0 };

  constructor(options: KvClientOptions) {
    // Every call in flight listens to it.
    setMaxListeners(0, this.#closed.signal);
    if (options.seeds.length === 0) throw new TypeError('KvClient needs at least one seed node');
    this.#nodes = new NodePools({
      connectionsPerNode: options.connectionsPerNode ?? 16,
      connectTimeoutMs: options.connectTimeoutMs ?? 2_000,
    });
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#retry = { ...RETRY_DEFAULTS, ...(options.retry ?? {}) };
    this.#topology = new Topology(
      {
        seeds: options.seeds,
        minConnections: options.minConnections ?? 2,
        refreshIntervalMs: options.refreshIntervalMs ?? 5_000,
        routing: options.routing ?? true,
        requestTimeoutMs: options.connectTimeoutMs ?? 2_000,
      },
      this.#nodes,
    );
  }

  /**
   * Reads the members and routing table now (the client also does on its
   * first call, periodically and on hints). Resolves once read; rejects
   * when no node answers.
   */
  async connect(): Promise<void> {
    await this.#topology.refresh();
  }

  /** The routing table in use; undefined when the placement publishes none (or it was not read yet). */
  get routingTable(): RoutingTable | undefined {
    return this.#topology.table;
  }

  /** The members as last read: id → node origin and state. */
  members(): ReadonlyMap<string, { readonly origin: string; readonly state: string }> {
    return this.#topology.members();
  }

  /** Nodes with an answering connection now. */
  connectedNodes(): string[] {
    return this.#nodes.connected();
  }

  stats(): KvClientStats {
    return { ...this.#stats, refreshes: this.#topology.refreshes };
  }

  /** Reads the members and routing table again now. */
  refresh(): Promise<void> {
    return this.#topology.refresh();
  }

  /** The value of `key`; undefined when it does not exist (or was deleted). */
  async get(key: string, options?: GetOptions): Promise<GetResult | undefined> {
    const { answer, node } = await this.#call({
      intent: 'read',
      key,
      request: { method: 'GET', path: keyPath(key) },
      conditional: false,
      answers: [200, 404],
      options,
    });
    if (answer.status === 404) return undefined;
    return {
      value: answer.body,
      contentType: header(answer, 'content-type') ?? 'application/octet-stream',
      version: bare(header(answer, 'etag') ?? ''),
      servedBy: header(answer, 'x-kvmesh-served-by'),
      node,
    };
  }

  /** Writes `value` under `key`; with `ifMatch` / `ifNoneMatch` only if the condition holds (else KVMESH_ERR_KV_PRECONDITION_FAILED). */
  async put(key: string, value: Uint8Array | string, options?: PutOptions): Promise<PutResult> {
    const body = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    const headers: Record<string, string> = {
      'content-type':
        options?.contentType ?? (typeof value === 'string' ? 'text/plain; charset=utf-8' : 'application/octet-stream'),
    };
    if (options?.ifMatch !== undefined) headers['if-match'] = quoted(options.ifMatch);
    if (options?.ifNoneMatch !== undefined) headers['if-none-match'] = options.ifNoneMatch;
    const { answer, node } = await this.#call({
      intent: 'write',
      key,
      request: { method: 'PUT', path: keyPath(key), headers, body },
      conditional: options?.ifMatch !== undefined || options?.ifNoneMatch !== undefined,
      answers: [200, 201],
      options,
    });
    return {
      created: answer.status === 201,
      version: bare(header(answer, 'etag') ?? ''),
      servedBy: header(answer, 'x-kvmesh-served-by'),
      node,
    };
  }

  /** Deletes `key`; with `ifMatch` only that version (else KVMESH_ERR_KV_PRECONDITION_FAILED). */
  async delete(key: string, options?: DeleteOptions): Promise<DeleteResult> {
    const headers: Record<string, string> = {};
    if (options?.ifMatch !== undefined) headers['if-match'] = quoted(options.ifMatch);
    const { answer, node } = await this.#call({
      intent: 'write',
      key,
      request: { method: 'DELETE', path: keyPath(key), headers },
      conditional: options?.ifMatch !== undefined,
      answers: [204, 404],
      options,
    });
    return { existed: answer.status === 204, servedBy: header(answer, 'x-kvmesh-served-by'), node };
  }

  /** Stops refreshing and closes every connection; calls in flight fail with KVMESH_ERR_CLIENT_CLOSED. */
  async close(): Promise<void> {
    this.#closed.abort(new KvClientError('KVMESH_ERR_CLIENT_CLOSED', 'the client is closed'));
    this.#topology.close();
    await this.#nodes.close();
  }

  async #call(op: Operation): Promise<{ answer: NodeAnswer; node: string }> {
    if (this.#closed.signal.aborted) throw this.#closed.signal.reason as KvClientError;
    this.#stats.calls++;
    const timeoutMs = op.options?.timeoutMs ?? this.#timeoutMs;
    const user = op.options?.signal;
    // One controller and timer per call, released when it ends: AbortSignal.timeout and AbortSignal.any cost
    // about 40 µs a call and keep a timer alive for the whole timeout.
    const controller = new AbortController();
    const signal = controller.signal;
    const abort = (): void => controller.abort();
    const timer = setTimeout(abort, timeoutMs);
    if (user?.aborted || this.#closed.signal.aborted) abort();
    user?.addEventListener('abort', abort, { once: true });
    this.#closed.signal.addEventListener('abort', abort, { once: true });
    /** Set once a request of a write may have been applied. */
    let maybeApplied = false;
    let attempts = 0;
    let retries = 0;
    let failed: KvClientError | undefined;
    let targets = this.#topology.targets(op.key, op.intent);
    if (targets.routed) this.#stats.routed++;
    let at = 0;
    const stop = (err: KvClientError): KvClientError =>
      err.withCall({
        attempts,
        ...(op.intent === 'write' ? { outcome: (maybeApplied ? 'unknown' : 'not-applied') as WriteOutcome } : {}),
      });
    const stopped = (): KvClientError => {
      if (this.#closed.signal.aborted) return stop(this.#closed.signal.reason as KvClientError);
      if (user?.aborted)
        return stop(
          new KvClientError('KVMESH_ERR_CLIENT_ABORTED', 'the call was cancelled by its caller', {
            cause: user.reason,
          }),
        );
      return stop(
        new KvClientError('KVMESH_ERR_CLIENT_TIMEOUT', `no answer within ${timeoutMs} ms (${attempts} requests)`, {
          ...(failed === undefined ? {} : { cause: failed }),
        }),
      );
    };
    /** Waits the backoff of the next retry, or fails when none is left. */
    const retry = async (err: KvClientError, after: number | undefined): Promise<void> => {
      failed = err;
      if (++retries >= this.#retry.attempts) throw stop(err);
      this.#stats.retries++;
      try {
        await sleep(backoffMs(retries, this.#retry, after), signal);
      } catch {
        throw stopped();
      }
    };
    try {
      for (;;) {
        if (at >= targets.nodes.length) {
          // Every node refused the connection: wait, then try them all again.
          await retry(
            failed ?? new KvClientError('KVMESH_ERR_CLIENT_UNREACHABLE', 'no node to send the request to'),
            undefined,
          );
          targets = this.#topology.targets(op.key, op.intent);
          at = 0;
          if (targets.nodes.length === 0)
            throw stop(new KvClientError('KVMESH_ERR_CLIENT_UNREACHABLE', 'no node known'));
        }
        const node = targets.nodes[at]!;
        attempts++;
        this.#stats.requests++;
        let answer: NodeAnswer;
        try {
          answer = await this.#nodes.send(node, { ...op.request, signal });
        } catch (err) {
          if (signal.aborted) {
            if (op.intent === 'write') maybeApplied = true;
            throw stopped();
          }
          this.#nodes.down(node);
          this.#topology.stale();
          if (neverSent(err)) {
            // No node saw it: any request may go to the next node at once.
            failed = new KvClientError('KVMESH_ERR_CLIENT_UNREACHABLE', `cannot connect to ${node}: ${reason(err)}`, {
              node,
              cause: err,
            });
            this.#stats.failovers++;
            at++;
            continue;
          }
          const lost = new KvClientError(
            'KVMESH_ERR_CLIENT_CONNECTION',
            `the connection to ${node} failed after the request was sent: ${reason(err)}`,
            { node, cause: err },
          );
          if (op.intent === 'write') {
            maybeApplied = true;
            if (op.conditional) throw stop(lost);
          }
          await retry(lost, undefined);
          at++;
          continue;
        }
        this.#nodes.up(node);
        if (op.answers.includes(answer.status)) {
          this.#checkServedBy(op, targets, node, answer);
          return { answer, node };
        }
        const err = answerError(node, answer);
        if (err.code === 'KVMESH_ERR_KV_NOT_OWNER') this.#topology.stale();
        if (answer.status !== 503 && answer.status !== 504) {
          // A refusal (4xx) wrote nothing; a 500 or 502 of a write may have.
          if (op.intent === 'write' && answer.status >= 500) maybeApplied = true;
          throw stop(err);
        }
        const safe = answer.body.length === 0 || NOT_APPLIED_UNAVAILABLE.has(err.code);
        if (op.intent === 'write' && !safe) {
          maybeApplied = true;
          // A conditional write that may have been applied is not resent: its own success could refuse the retry.
          if (op.conditional) throw stop(err);
        }
        await retry(err, err.details['retryAfterMs'] as number | undefined);
        // The same node again when it is not serving yet is pointless: the next one (a replica, or any node).
        at = (at + 1) % targets.nodes.length;
      }
    } finally {
      clearTimeout(timer);
      user?.removeEventListener('abort', abort);
      this.#closed.signal.removeEventListener('abort', abort);
      this.#topology.touch();
    }
  }

  /** A write the table sent to its primary that another member served was forwarded: the table is stale. */
  #checkServedBy(op: Operation, targets: Targets, node: string, answer: NodeAnswer): void {
    if (op.intent !== 'write' || targets.primary === undefined || targets.primary.origin !== node) return;
    const servedBy = header(answer, 'x-kvmesh-served-by');
    if (servedBy !== undefined && servedBy !== targets.primary.id) {
      this.#stats.forwarded++;
      this.#topology.stale();
    }
  }
}

/** The KvClientError of a node's error answer: its code, message and status (docs/errors.md). */
function answerError(node: string, answer: NodeAnswer): KvClientError {
  const after = retryAfterMs(header(answer, 'retry-after'));
  const facts = after === undefined ? {} : { retryAfterMs: after };
  let parsed: unknown;
  try {
    parsed = answer.body.length === 0 ? undefined : JSON.parse(answer.body.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const error = (parsed as { error?: Record<string, unknown> } | undefined)?.error;
  if (error !== undefined && typeof error['code'] === 'string') {
    const { code, message, ...rest } = error;
    return new KvClientError(code as string, typeof message === 'string' ? message : `HTTP ${answer.status}`, {
      status: answer.status,
      details: { ...rest, ...facts },
      node,
    });
  }
  if (answer.status === 503 || answer.status === 504) {
    return new KvClientError('KVMESH_ERR_HTTP_NOT_READY', `${node} answered ${answer.status} without a body`, {
      status: answer.status,
      details: facts,
      node,
    });
  }
  return new KvClientError(
    'KVMESH_ERR_CLIENT_RESPONSE',
    `${node} answered ${answer.status}, not an error of the native API`,
    {
      status: answer.status,
      details: facts,
      node,
    },
  );
}

/**
 * The path of `key`: every character but the unreserved ones percent-encoded,
 * dots too, so that no key is a dot segment (`.`, `..`) a URL parser would
 * remove (docs/api.md).
 */
export function keyPath(key: string): string {
  return `/v1/kv/${encodeURIComponent(key).replace(/\./g, '%2E')}`;
}

function header(answer: NodeAnswer, name: string): string | undefined {
  const value = answer.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function quoted(tag: string): string {
  return tag === '*' || tag.startsWith('"') ? tag : `"${tag}"`;
}

function bare(etag: string): string {
  return etag.length >= 2 && etag.startsWith('"') && etag.endsWith('"') ? etag.slice(1, -1) : etag;
}

function reason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  return typeof e?.code === 'string' ? e.code : String(e?.message ?? err);
}
