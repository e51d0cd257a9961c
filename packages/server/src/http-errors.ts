import { isKvError } from '@kvmesh/core';

/**
 * The one table from error codes to HTTP statuses. Codes not listed answer
 * 500 with a generic message; their details go to the log only.
 */
export const HTTP_STATUS_BY_CODE: Readonly<Record<string, number>> = Object.freeze({
  KVMESH_ERR_HTTP_BAD_REQUEST: 400,
  KVMESH_ERR_HTTP_NOT_FOUND: 404,
  KVMESH_ERR_HTTP_KEY_NOT_FOUND: 404,
  KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED: 405,
  KVMESH_ERR_HTTP_BODY_TOO_LARGE: 413,
  KVMESH_ERR_HTTP_NOT_READY: 503,
  KVMESH_ERR_KV_KEY_INVALID: 400,
  KVMESH_ERR_KV_KEY_TOO_LONG: 414,
  KVMESH_ERR_KV_VALUE_TOO_LARGE: 413,
  KVMESH_ERR_KV_PRECONDITION_FAILED: 412,
  KVMESH_ERR_KV_QUORUM: 503,
  KVMESH_ERR_VERSION_INVALID: 400,
  KVMESH_ERR_STORAGE_KEY_INVALID: 400,
  KVMESH_ERR_CONFIG_INVALID: 400,
  KVMESH_ERR_CONFIG_READ: 400,
  KVMESH_ERR_CODEC_DECODE: 400,
  KVMESH_ERR_MESSAGE_INVALID: 400,
  KVMESH_ERR_MEMBERSHIP_VIEW_INVALID: 400,
  KVMESH_ERR_MEMBERSHIP_VIEW_UNSUPPORTED: 409,
  KVMESH_ERR_MOVEMENT_UNSUPPORTED: 503,
  KVMESH_ERR_PLACEMENT_EMPTY: 503,
  KVMESH_ERR_PLACEMENT_INCOMPATIBLE: 503,
  KVMESH_ERR_PLACEMENT_KEY_INVALID: 400,
  KVMESH_ERR_KV_NOT_OWNER: 503,
  KVMESH_ERR_KV_FROZEN: 503,
  KVMESH_ERR_STORAGE_CLOSED: 503,
  KVMESH_ERR_KERNEL_STATE: 503,
  KVMESH_ERR_TRANSPORT_UNREACHABLE: 503,
  KVMESH_ERR_TRANSPORT_CLOSED: 503,
  KVMESH_ERR_RPC_TIMEOUT: 504,
});

export const INTERNAL_ERROR_CODE = 'KVMESH_ERR_HTTP_INTERNAL';
const INTERNAL_MESSAGE = 'internal error; the server log has the details';

/** What the client sees for a failure: status and `{"error":{"code","message"}}`. */
export interface HttpFailure {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  /** True for a failure nobody planned for (500): it belongs in the error log with its stack. */
  readonly unexpected: boolean;
}

/**
 * Decides what the client sees for `err`. Known codes keep their message (it
 * tells the user what to do); anything else becomes a 500 whose message and
 * stack stay in the log.
 */
export function httpFailure(err: unknown): HttpFailure {
  if (isKvError(err)) {
    const status = HTTP_STATUS_BY_CODE[err.code];
    if (status !== undefined) return { status, code: err.code, message: err.message, unexpected: false };
  }
  return { status: 500, code: INTERNAL_ERROR_CODE, message: INTERNAL_MESSAGE, unexpected: true };
}

/** The JSON body of a failure. */
export function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}
