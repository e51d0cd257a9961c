/**
 * Codes the client gives failures that are not a server's answer. A server's
 * answer keeps the server's own `KVMESH_ERR_*` code (docs/errors.md).
 */
export const CLIENT_ERROR_CODES = [
  /** No node answered: every seed and known member refused the connection or is marked down. */
  'KVMESH_ERR_CLIENT_UNREACHABLE',
  /** The call's `timeoutMs` passed before an answer. */
  'KVMESH_ERR_CLIENT_TIMEOUT',
  /** The caller's AbortSignal fired. */
  'KVMESH_ERR_CLIENT_ABORTED',
  /** A node answered something that is not the native API (not JSON where JSON was due, an unknown status). */
  'KVMESH_ERR_CLIENT_RESPONSE',
  /** The connection failed after the request was sent, and no retry was allowed or left. */
  'KVMESH_ERR_CLIENT_CONNECTION',
  /** The client was closed. */
  'KVMESH_ERR_CLIENT_CLOSED',
] as const;

export type ClientErrorCode = (typeof CLIENT_ERROR_CODES)[number];

/**
 * What became of a write that failed:
 * - `not-applied`: nothing was written (a refusal such as 412, 400, 413, or a
 *   failure before the request reached a node);
 * - `unknown`: the request reached a node and may have been applied on some
 *   replicas (a 503 quorum failure, a timeout, a connection lost after
 *   sending). Read the key to learn its state; a conditional write is never
 *   retried in this state, since a retry could be refused by its own success.
 */
export type WriteOutcome = 'not-applied' | 'unknown';

export interface KvClientErrorOptions {
  readonly status?: number;
  readonly details?: Readonly<Record<string, unknown>>;
  readonly outcome?: WriteOutcome;
  /** The node (URL) whose answer or failure this is. */
  readonly node?: string;
  readonly attempts?: number;
  readonly cause?: unknown;
}

/**
 * Every failure of a KvClient call. Compare by `code` (a server's
 * `KVMESH_ERR_*`, or one of CLIENT_ERROR_CODES), not by message.
 */
export class KvClientError extends Error {
  override readonly name = 'KvClientError';
  readonly code: string;
  /** The HTTP status the node answered; undefined when no node answered. */
  readonly status: number | undefined;
  /** What the error body carried besides code and message, and the client's own facts (e.g. `retryAfterMs`). */
  readonly details: Readonly<Record<string, unknown>>;
  /** Set for writes: whether it may have been applied. */
  readonly outcome: WriteOutcome | undefined;
  readonly node: string | undefined;
  /** Requests sent (or tried) for the call, retries included. */
  readonly attempts: number;

  constructor(code: string, message: string, options: KvClientErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
    this.details = Object.freeze({ ...(options.details ?? {}) });
    this.outcome = options.outcome;
    this.node = options.node;
    this.attempts = options.attempts ?? 1;
  }

  /** The same error with the call's facts filled in. */
  withCall(call: { outcome?: WriteOutcome; attempts: number }): KvClientError {
    return new KvClientError(this.code, this.message, {
      ...(this.status === undefined ? {} : { status: this.status }),
      details: this.details,
      ...(call.outcome === undefined ? {} : { outcome: call.outcome }),
      ...(this.node === undefined ? {} : { node: this.node }),
      attempts: call.attempts,
      cause: this.cause,
    });
  }
}

/** True when `err` is a KvClientError, with `code` when given (compared by code, not by class). */
export function isKvClientError(err: unknown, code?: string): err is KvClientError {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; code?: unknown };
  return e.name === 'KvClientError' && typeof e.code === 'string' && (code === undefined || e.code === code);
}
