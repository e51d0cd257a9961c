/**
 * Every error kvmesh raises on purpose is a KvError with a stable code.
 *
 * Compare errors by `code` (or with `isKvError(err, code)`), never with
 * `instanceof`: a third-party plugin may carry its own copy of core.
 * `docs/errors.md` lists every code; a test keeps that table and ERROR_CODES in step.
 */

export const ERROR_CODES = {
  KVMESH_ERR_CONFIG_INVALID: 'The configuration does not match the schema.',
  KVMESH_ERR_CONFIG_READ: 'The configuration file could not be read or is not JSON.',
  KVMESH_ERR_CONFIG_ENV: 'A ${VAR} reference names an unset environment variable and has no default.',
  KVMESH_ERR_PLUGIN_UNKNOWN: 'No plugin of that family is registered under that name.',
  KVMESH_ERR_PLUGIN_LOAD: 'A plugin module listed in `plugins` could not be imported.',
  KVMESH_ERR_PLUGIN_INVALID: 'A module or manifest does not describe a valid plugin.',
  KVMESH_ERR_PLUGIN_DUPLICATE: 'Two plugins of one family share a name.',
  KVMESH_ERR_PLUGIN_CORE_VERSION: "A plugin's coreVersions range excludes the running @kvmesh/core version.",
  KVMESH_ERR_PLUGIN_FAILED: 'A plugin failed while being built, started or stopped.',
  KVMESH_ERR_KERNEL_DEPENDENCY: 'A component needs another that nothing provides, or needs form a cycle.',
  KVMESH_ERR_KERNEL_STATE: 'A node operation was called in a lifecycle state that does not allow it.',
  KVMESH_ERR_CODEC_DECODE: 'Bytes could not be decoded into a registered message.',
  KVMESH_ERR_CODEC_ENCODE: 'A message could not be encoded.',
  KVMESH_ERR_CODEC_UNKNOWN: 'A frame carries a codec tag that this node does not know.',
  KVMESH_ERR_MESSAGE_UNKNOWN: 'A message type is not registered.',
  KVMESH_ERR_MESSAGE_DUPLICATE: 'A message type is registered twice with different schemas.',
  KVMESH_ERR_MESSAGE_INVALID: 'A message does not match the schema of its type.',
  KVMESH_ERR_MESSAGE_SCHEMA: 'A .proto source could not be parsed or refers to an unknown type.',
  KVMESH_ERR_RPC_TIMEOUT: 'A request got no response before its deadline.',
  KVMESH_ERR_RPC_ABORTED: 'A request was cancelled by its caller.',
  KVMESH_ERR_RPC_NO_HANDLER: 'The receiving node has no handler for the request type.',
  KVMESH_ERR_RPC_REMOTE: 'The remote handler failed without a kvmesh error code.',
  KVMESH_ERR_RPC_UNAUTHENTICATED: 'A frame between nodes was refused: not sealed with a secret of this cluster.',
  KVMESH_ERR_ADMIN_UNAUTHORIZED: 'An admin operation came without the admin token this node is configured with.',
  KVMESH_ERR_TRANSPORT_UNREACHABLE: 'The peer could not be reached.',
  KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE: 'A frame is larger than the transport accepts.',
  KVMESH_ERR_TRANSPORT_ADDRESS: 'An address is not a valid URI for the transport.',
  KVMESH_ERR_TRANSPORT_CLOSED: 'The transport is not listening (not started, or stopped).',
  KVMESH_ERR_TRANSPORT_LISTEN: 'The transport could not listen on its address (in use, or not a local address).',
  KVMESH_ERR_VERSION_INVALID: 'A version or version string (ETag) is malformed.',
  KVMESH_ERR_VERSION_DRIFT: "A remote version is further ahead of this node's clock than maxDriftMs allows.",
  KVMESH_ERR_STORAGE_KEY_INVALID: 'A key is not well-formed UTF-8 text or is longer than the storage accepts.',
  KVMESH_ERR_STORAGE_RECORD_INVALID: 'A record given to storage is malformed (value not bytes, bad version).',
  KVMESH_ERR_STORAGE_CORRUPT: 'A stored record could not be decoded (unknown format version or damaged bytes).',
  KVMESH_ERR_STORAGE_CLOSED: 'The storage is not open (not started yet, or stopped).',
  KVMESH_ERR_STORAGE_IO: 'The storage engine could not open its files or read or write them.',
  KVMESH_ERR_DATA_DIR_LOCKED: 'Another running node holds the data directory this node was given.',
  KVMESH_ERR_PLACEMENT_EMPTY: 'No alive member can hold the key.',
  KVMESH_ERR_PLACEMENT_INCOMPATIBLE:
    'A node cannot join the other nodes: they place keys differently (another identifier metric, or the same position).',
  KVMESH_ERR_PLACEMENT_KEY_INVALID:
    'The placement cannot place the key: it is outside what the configured key metric accepts.',
  KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID:
    'A view change carries a parameter the placement does not take, or a value it cannot meet; nothing was changed.',
  KVMESH_ERR_MOVEMENT_UNSUPPORTED:
    'The storage lacks putBatch or hints, which data movement (rebalancing, hinted hand-off, anti-entropy) needs.',
  KVMESH_ERR_KV_NOT_OWNER:
    'A replica does not hold the key at its view epoch, and locating it again a few times did not find one that does.',
  KVMESH_ERR_KV_NOT_JOINED:
    'The node has not joined its cluster yet, so it coordinates no client reads or writes (knowing only itself, it would decide them alone).',
  KVMESH_ERR_KV_FROZEN: "The key's ownership is moving between nodes, and it stayed frozen past the retries.",
  KVMESH_ERR_MEMBERSHIP_VIEW_INVALID: 'A view given to a view change is empty or has an entry that is not host:port.',
  KVMESH_ERR_MEMBERSHIP_VIEW_UNSUPPORTED:
    'A view change was asked of a node whose membership discovers its members (it has no setView) or that has none.',
  KVMESH_ERR_KV_KEY_INVALID: 'A key is empty or not well-formed Unicode text (it has a lone surrogate).',
  KVMESH_ERR_KV_KEY_TOO_LONG: 'A key is longer in UTF-8 bytes than limits.maxKeyBytes.',
  KVMESH_ERR_KV_VALUE_TOO_LARGE: 'A value is larger than limits.maxValueBytes.',
  KVMESH_ERR_KV_REQUEST_INVALID: 'A KV operation got malformed arguments (value, content type, condition).',
  KVMESH_ERR_KV_PRECONDITION_FAILED: 'A conditional write did not apply: If-Match or If-None-Match did not hold.',
  KVMESH_ERR_KV_QUORUM: 'Fewer replicas than the quorum answered, so the operation was not acknowledged.',
  KVMESH_ERR_HTTP_BAD_REQUEST: 'An HTTP request is malformed (bad percent-encoding, header or JSON body).',
  KVMESH_ERR_HTTP_NOT_FOUND: 'No API route matches the request path.',
  KVMESH_ERR_HTTP_KEY_NOT_FOUND: 'The key does not exist (never written, or deleted).',
  KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED: 'The route exists but not for this HTTP method.',
  KVMESH_ERR_HTTP_BODY_TOO_LARGE: 'A request body is larger than the API accepts.',
  KVMESH_ERR_HTTP_NOT_READY: 'The node is starting or shutting down and does not serve data.',
  KVMESH_ERR_HTTP_CLIENT_ABORTED: 'The client closed the connection before its request body was read.',
  KVMESH_ERR_HTTP_REQUEST_TIMEOUT: 'A request was not received in full within api.requestTimeoutMs.',
  KVMESH_ERR_HTTP_URI_TOO_LONG: 'The request line is longer than the server reads.',
  KVMESH_ERR_HTTP_HEADERS_TOO_LARGE: 'The request headers are larger than the server reads.',
  KVMESH_ERR_HTTP_INTERNAL: 'The server failed unexpectedly; details are in its log.',
  KVMESH_ERR_HTTP_LISTEN: 'The API server could not listen on its address (in use, or not a local address).',
} as const satisfies Record<string, string>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface KvErrorOptions {
  cause?: unknown;
  /** Structured details for logs and API bodies (never secrets, never stacks). */
  details?: Record<string, unknown>;
}

export class KvError extends Error {
  override readonly name = 'KvError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: KvErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }
}

/** True when `err` carries a kvmesh code (and, if given, that code), from any copy of core. */
export function isKvError(err: unknown, code?: ErrorCode): err is KvError {
  if (typeof err !== 'object' || err === null) return false;
  const c = (err as { code?: unknown }).code;
  if (typeof c !== 'string' || !(c in ERROR_CODES)) return false;
  return code === undefined || c === code;
}

/** Prefixes the message of a plugin failure with where it happened, keeping the code when there is one. */
export function wrapError(context: string, err: unknown, fallback: ErrorCode = 'KVMESH_ERR_PLUGIN_FAILED'): KvError {
  const message = err instanceof Error ? err.message : String(err);
  const code = isKvError(err) ? err.code : fallback;
  const details = isKvError(err) ? err.details : undefined;
  return new KvError(code, `${context}: ${message}`, { cause: err, ...(details ? { details } : {}) });
}
