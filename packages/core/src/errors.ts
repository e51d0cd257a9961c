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
  KVMESH_ERR_PLUGIN_FAILED: 'A plugin failed while being built, started or stopped.',
  KVMESH_ERR_KERNEL_DEPENDENCY: 'A component needs another that nothing provides, or needs form a cycle.',
  KVMESH_ERR_KERNEL_STATE: 'A node operation was called in a lifecycle state that does not allow it.',
  KVMESH_ERR_CODEC_DECODE: 'Bytes could not be decoded into a registered message.',
  KVMESH_ERR_CODEC_ENCODE: 'A message could not be encoded.',
  KVMESH_ERR_CODEC_UNKNOWN: 'A frame carries a codec tag that this node does not know.',
  KVMESH_ERR_MESSAGE_UNKNOWN: 'A message type is not registered.',
  KVMESH_ERR_MESSAGE_DUPLICATE: 'A message type is registered twice with different schemas.',
  KVMESH_ERR_MESSAGE_INVALID: 'A message does not match the schema of its type.',
  KVMESH_ERR_RPC_TIMEOUT: 'A request got no response before its deadline.',
  KVMESH_ERR_RPC_ABORTED: 'A request was cancelled by its caller.',
  KVMESH_ERR_RPC_NO_HANDLER: 'The receiving node has no handler for the request type.',
  KVMESH_ERR_RPC_REMOTE: 'The remote handler failed without a kvmesh error code.',
  KVMESH_ERR_TRANSPORT_UNREACHABLE: 'The peer could not be reached.',
  KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE: 'A frame is larger than the transport accepts.',
  KVMESH_ERR_TRANSPORT_ADDRESS: 'An address is not a valid URI for the transport.',
  KVMESH_ERR_TRANSPORT_CLOSED: 'The transport is not listening (not started, or stopped).',
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
