import { performance } from 'node:perf_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KvError, checkKey, formatVersion, isFieldValue } from '@kvmesh/core';
import type { KvService, Logger } from '@kvmesh/core';
import { errorBody, httpFailure } from '../http-errors.js';
import type { ServerMetrics } from '../metrics.js';
import { TOO_LARGE, readBody } from '../read-body.js';
import { KV_METHODS, KV_ROUTE, etagListMatches, keyNotFound, keyOf, notReady, writeConditions } from './kv-request.js';

export interface KvHttpOptions {
  readonly kv: KvService;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly metrics: ServerMetrics;
  readonly logger: Logger;
  /** False while the node is not started (or stopped): data requests get 503. */
  readonly serving: () => boolean;
  /** True once the server drains for shutdown: responses close their connection. */
  readonly draining?: () => boolean;
  /** How long a connection whose body was refused as too large stays open so the client reads the answer. */
  readonly lingerMs?: number;
}

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
const JSON_TYPE = 'application/json; charset=utf-8';
const DEFAULT_LINGER_MS = 1_000;
/**
 * The member whose answer a response carries: a read's replica, a write's
 * primary. A client that routes by the placement's table compares it with
 * the node it sent the write to: another id means a forward, so its table is stale.
 */
export const SERVED_BY_HEADER = 'X-Kvmesh-Served-By';

/**
 * `GET|HEAD|PUT|DELETE /v1/kv/{key}` on the raw request and response. This is
 * the data path: the app's first Koa middleware hands `/v1/kv/` requests here
 * with `ctx.respond = false`, skipping the router and Koa's body handling
 * (measured in docs/performance.md). Failures are answered through the same
 * table as the rest of the API (`httpFailure`).
 */
export class KvHttpHandler {
  readonly #kv: KvService;
  readonly #limits: { maxKeyBytes: number; maxValueBytes: number };
  readonly #metrics: ServerMetrics;
  readonly #logger: Logger;
  readonly #serving: () => boolean;
  readonly #draining: () => boolean;
  readonly #lingerMs: number;

  constructor(options: KvHttpOptions) {
    this.#kv = options.kv;
    this.#limits = { maxKeyBytes: options.maxKeyBytes, maxValueBytes: options.maxValueBytes };
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#serving = options.serving;
    this.#draining = options.draining ?? (() => false);
    this.#lingerMs = options.lingerMs ?? DEFAULT_LINGER_MS;
  }

  /** Serves one request whose URL starts with KV_PREFIX. Never rejects. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    let status: number;
    try {
      status = await this.#serve(req, res);
    } catch (err) {
      status = this.#fail(req, res, err);
    }
    this.#metrics.observe(KV_ROUTE, req.method!, status, (performance.now() - started) / 1000);
  }

  // Not async: it hands back the operation's own promise (or throws), so a
  // request does not pay for one more promise and its microtask turns.
  #serve(req: IncomingMessage, res: ServerResponse): Promise<number> {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD' && method !== 'PUT' && method !== 'DELETE') {
      res.setHeader('Allow', KV_METHODS);
      throw new KvError(
        'KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED',
        `${method} is not allowed on ${KV_ROUTE}; use ${KV_METHODS}`,
      );
    }
    if (!this.#serving()) throw notReady();
    const key = keyOf(req.url!);
    // The KV service checks keys too; a PUT checks first so a bad key is refused before its body is read.
    if (method === 'PUT') return this.#put(req, res, checkKey(key, this.#limits));
    if (method === 'DELETE') return this.#delete(req, res, key);
    return this.#get(req, res, key, method === 'HEAD');
  }

  async #get(req: IncomingMessage, res: ServerResponse, key: string, head: boolean): Promise<number> {
    const { record, servedBy } = await this.#kv.get(key);
    if (record === undefined) throw keyNotFound(key);
    const etag = `"${formatVersion(record.version)}"`;
    const ifNoneMatch = req.headers['if-none-match'];
    if (ifNoneMatch !== undefined && etagListMatches(ifNoneMatch, etag)) {
      this.#closeIfDraining(res);
      res.writeHead(304, ['ETag', etag, SERVED_BY_HEADER, servedBy.id]);
      res.end();
      return 304;
    }
    const value = record.value;
    this.#closeIfDraining(res);
    // A record stored before content types were checked may hold one that is no header: serve its bytes anyway.
    const type = isFieldValue(record.contentType) ? record.contentType : DEFAULT_CONTENT_TYPE;
    res.writeHead(200, [
      'Content-Type',
      type,
      'ETag',
      etag,
      'Content-Length',
      String(value.byteLength),
      SERVED_BY_HEADER,
      servedBy.id,
    ]);
    if (head) res.end();
    else res.end(value);
    return 200;
  }

  async #put(req: IncomingMessage, res: ServerResponse, key: string): Promise<number> {
    const headers = req.headers;
    const conditions = writeConditions(headers, true);
    const contentType = headers['content-type'] || DEFAULT_CONTENT_TYPE;
    const body = await readBody(req, this.#limits.maxValueBytes);
    if (body === TOO_LARGE) {
      const declared = headers['content-length'];
      throw new KvError(
        'KVMESH_ERR_KV_VALUE_TOO_LARGE',
        `the value is ${declared === undefined ? 'more than' : `${declared} bytes; the limit is`} ${this.#limits.maxValueBytes} bytes (limits.maxValueBytes)`,
      );
    }
    const requestId = requestIdOf(headers);
    const result = await this.#kv.put(
      key,
      body,
      contentType,
      conditions,
      requestId === undefined ? undefined : { requestId },
    );
    const version = formatVersion(result.version);
    const text = `{"key":${JSON.stringify(key)},"version":"${version}"}`;
    const status = result.created ? 201 : 200;
    this.#closeIfDraining(res);
    res.writeHead(status, [
      'ETag',
      `"${version}"`,
      'Content-Type',
      JSON_TYPE,
      'Content-Length',
      String(Buffer.byteLength(text)),
      SERVED_BY_HEADER,
      result.servedBy.id,
      ...(requestId ? [REQUEST_ID_HEADER, requestId] : []),
    ]);
    res.end(text);
    return status;
  }

  async #delete(req: IncomingMessage, res: ServerResponse, key: string): Promise<number> {
    const requestId = requestIdOf(req.headers);
    const result = await this.#kv.delete(
      key,
      writeConditions(req.headers, false),
      requestId === undefined ? undefined : { requestId },
    );
    if (!result.existed) throw keyNotFound(key);
    this.#closeIfDraining(res);
    res.writeHead(204, [SERVED_BY_HEADER, result.servedBy.id, ...(requestId ? [REQUEST_ID_HEADER, requestId] : [])]);
    res.end();
    return 204;
  }

  // Checked when the answer is written, not when the request came: a request
  // in flight when draining began must close its connection too.
  #closeIfDraining(res: ServerResponse): void {
    if (this.#draining()) res.shouldKeepAlive = false;
  }

  #fail(req: IncomingMessage, res: ServerResponse, err: unknown): number {
    const failure = httpFailure(err);
    const requestId = requestIdOf(req.headers);
    if (failure.unexpected) this.#logger.error({ err, method: req.method, url: req.url, requestId }, 'request failed');
    if (failure.aborted) {
      this.#logger.debug({ method: req.method, url: req.url, reason: failure.message }, 'client aborted');
      res.destroy();
      return failure.status;
    }
    if (res.headersSent) {
      res.destroy();
      return failure.status;
    }
    const text = errorBody(failure.code, failure.message);
    this.#closeIfDraining(res);
    res.statusCode = failure.status;
    if (requestId) res.setHeader(REQUEST_ID_HEADER, requestId);
    res.setHeader('Content-Type', JSON_TYPE);
    res.setHeader('Content-Length', Buffer.byteLength(text));
    res.end(req.method === 'HEAD' ? undefined : text);
    if (failure.status === 413 && !req.complete) lingerThenClose(req, this.#lingerMs);
    return failure.status;
  }
}

/** A client's request id, echoed in the answer and carried to the primary of a forwarded write. */
const REQUEST_ID_HEADER = 'X-Request-Id';
/** What a request id may be: up to 128 visible ASCII characters (anything else is ignored). */
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** The request's `X-Request-Id`, when it is one; undefined (the common case) without allocating. */
function requestIdOf(headers: IncomingMessage['headers']): string | undefined {
  const id = headers['x-request-id'];
  return typeof id === 'string' && REQUEST_ID.test(id) ? id : undefined;
}

/**
 * The rest of a refused body is not read. Closing at once could make the
 * kernel reset the connection before the client reads the 413, so the
 * socket stays open, paused, for `lingerMs`.
 */
export function lingerThenClose(req: IncomingMessage, lingerMs: number): void {
  req.pause();
  const socket = req.socket;
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}
