import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { KvClient, KvClientError } from '@kvmesh/client';
import { CliError, EXIT } from './exit-codes.js';

/** Where client commands go when neither `--node` nor KVMESH_NODE says. */
export const DEFAULT_NODE_URL = 'http://127.0.0.1:7700';

export interface ClientResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

/** A small HTTP client for the native API of one node. */
export class ApiClient {
  readonly base: string;

  constructor(nodeUrl: string) {
    let url: URL;
    try {
      url = new URL(nodeUrl);
    } catch {
      throw new CliError(`--node must be a URL like ${DEFAULT_NODE_URL} (found '${nodeUrl}')`, EXIT.usage);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new CliError(`--node must be an http:// or https:// URL (found '${nodeUrl}')`, EXIT.usage);
    }
    this.base = url.href.replace(/\/+$/, '');
  }

  /**
   * The URL of `key`. Every character but the unreserved ones is
   * percent-encoded, dots too: a key `.` or `..` would otherwise be a dot
   * segment, which URL parsers remove (`/v1/kv/..` is `/v1/`).
   */
  keyUrl(key: string): string {
    return `${this.base}/v1/kv/${encodeKey(key)}`;
  }

  /**
   * Sends one request to `url` (under `base`) and reads the whole answer.
   * The path goes out exactly as given: node:http does not resolve dot
   * segments or re-encode, as fetch's URL parser would.
   */
  request(
    method: string,
    url: string,
    init: { headers?: Record<string, string>; body?: Buffer } = {},
  ): Promise<ClientResponse> {
    const origin = new URL(this.base);
    const path = url.startsWith(this.base) ? url.slice(origin.origin.length) || '/' : url;
    const send = origin.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(
        {
          protocol: origin.protocol,
          hostname: origin.hostname.replace(/^\[|\]$/g, ''),
          port: origin.port,
          method,
          path,
          headers: { ...(init.headers ?? {}), ...(init.body ? { 'content-length': String(init.body.length) } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const headers = new Headers();
            for (const [name, value] of Object.entries(res.headers)) {
              if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
            }
            resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks) });
          });
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        const reason = err.code ?? err.message;
        reject(new CliError(`cannot reach ${this.base}: ${reason} (is the node running? set --node)`, EXIT.runtime));
      });
      req.end(init.body);
    });
  }
}

/**
 * The @kvmesh/client of the key commands (get, put, del) for the node at
 * `nodeUrl`: that node only, no routing table (one call per process would
 * pay two more requests for it), and no retry but the client's move to
 * another node, which one node does not have. Loaded when a key command
 * runs, so the other commands start without undici. Close it when done.
 * @throws CliError (exit 1) when `nodeUrl` is not an http(s) URL.
 */
export async function keyClient(nodeUrl: string): Promise<{ client: KvClient; base: string }> {
  const base = new ApiClient(nodeUrl).base;
  const { KvClient } = await import('@kvmesh/client');
  const client = new KvClient({
    seeds: [base],
    routing: false,
    minConnections: 1,
    refreshIntervalMs: 0,
    retry: { attempts: 1 },
  });
  return { client, base };
}

/**
 * What a failed key command means for a shell user: the server's status,
 * code and message (exit 1 for 4xx, the request was wrong; 2 for 5xx), or
 * that the node could not be reached (exit 2).
 */
export function clientFailure(base: string, err: unknown): unknown {
  // Compared by name and code, as the client's isKvClientError does, without loading the client for it.
  if (typeof err !== 'object' || err === null || (err as { name?: unknown }).name !== 'KvClientError') return err;
  if (typeof (err as { code?: unknown }).code !== 'string') return err;
  return failure(base, err as KvClientError);
}

function failure(base: string, err: KvClientError): CliError {
  if (err.status !== undefined) {
    return new CliError(
      `HTTP ${err.status} ${err.code}: ${err.message}`,
      err.status >= 500 ? EXIT.runtime : EXIT.usage,
    );
  }
  if (err.code === 'KVMESH_ERR_CLIENT_UNREACHABLE' || err.code === 'KVMESH_ERR_CLIENT_CONNECTION') {
    const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
    const reason = typeof cause?.code === 'string' ? cause.code : String(cause?.message ?? err.message);
    return new CliError(`cannot reach ${base}: ${reason} (is the node running? set --node)`, EXIT.runtime);
  }
  return new CliError(`${err.code}: ${err.message}`, EXIT.runtime);
}

/** The answer a command gives for a key that does not exist, as the server words it. */
export function keyNotFound(key: string): CliError {
  const shown = key.length > 64 ? `${key.slice(0, 64)}…` : key;
  return new CliError(
    `HTTP 404 KVMESH_ERR_HTTP_KEY_NOT_FOUND: key ${JSON.stringify(shown)} does not exist`,
    EXIT.usage,
  );
}

/**
 * The failure a non-2xx answer means for a shell user: the server's error
 * code and message, exit 1 for 4xx (the request was wrong) and 2 for 5xx.
 */
export function responseError(res: ClientResponse): CliError {
  let text = res.body.toString('utf8');
  try {
    const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (parsed.error?.code !== undefined) text = `${parsed.error.code}: ${parsed.error.message ?? ''}`;
  } catch {
    // Not JSON: the raw text is the best there is.
  }
  return new CliError(`HTTP ${res.status}${text ? ` ${text}` : ''}`, res.status >= 500 ? EXIT.runtime : EXIT.usage);
}

/** Reads all of stdin. */
export async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** `encodeURIComponent`, and `.` as `%2E`, so that no key is a dot segment. */
export function encodeKey(key: string): string {
  return encodeURIComponent(key).replace(/\./g, '%2E');
}
