import { isKvError } from '@kvmesh/core';
import type { ErrorCode } from '@kvmesh/core';

/**
 * The one table from error codes to HTTP statuses, one entry for every code
 * (the type makes a new code without a status a compile error). A `500`
 * entry is a fault of the node itself, not of the request: it is answered
 * as KVMESH_ERR_HTTP_INTERNAL with a generic message, the details go to the
 * log only. `499` (client aborted) is never sent, only counted.
 */
export const HTTP_STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = Object.freeze({
  // Configuration and plugins: a bad view or config sent by a client is a 400; loading is the node's own.
  KVMESH_ERR_CONFIG_INVALID: 400,
  KVMESH_ERR_CONFIG_READ: 400,
  KVMESH_ERR_CONFIG_ENV: 400,
  KVMESH_ERR_PLUGIN_UNKNOWN: 500,
  KVMESH_ERR_PLUGIN_LOAD: 500,
  KVMESH_ERR_PLUGIN_INVALID: 500,
  KVMESH_ERR_PLUGIN_DUPLICATE: 500,
  KVMESH_ERR_PLUGIN_CORE_VERSION: 500,
  KVMESH_ERR_PLUGIN_FAILED: 500,
  KVMESH_ERR_KERNEL_DEPENDENCY: 500,
  KVMESH_ERR_KERNEL_STATE: 503,
  // Frames and messages: what a sender got wrong is a 400; a schema the node itself got wrong is a 500.
  KVMESH_ERR_CODEC_DECODE: 400,
  KVMESH_ERR_CODEC_ENCODE: 500,
  KVMESH_ERR_CODEC_UNKNOWN: 400,
  KVMESH_ERR_MESSAGE_UNKNOWN: 400,
  KVMESH_ERR_MESSAGE_DUPLICATE: 500,
  KVMESH_ERR_MESSAGE_INVALID: 400,
  KVMESH_ERR_MESSAGE_SCHEMA: 500,
  // Peers: one that cannot be reached or answers nothing usable (502) makes the request unavailable, not wrong.
  KVMESH_ERR_RPC_TIMEOUT: 504,
  KVMESH_ERR_RPC_ABORTED: 503,
  KVMESH_ERR_RPC_NO_HANDLER: 502,
  KVMESH_ERR_RPC_REMOTE: 502,
  KVMESH_ERR_RPC_UNAUTHENTICATED: 502,
  KVMESH_ERR_ADMIN_UNAUTHORIZED: 401,
  KVMESH_ERR_TRANSPORT_UNREACHABLE: 503,
  KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE: 413,
  KVMESH_ERR_TRANSPORT_ADDRESS: 500,
  KVMESH_ERR_TRANSPORT_CLOSED: 503,
  KVMESH_ERR_TRANSPORT_LISTEN: 500,
  KVMESH_ERR_VERSION_INVALID: 400,
  KVMESH_ERR_VERSION_DRIFT: 503,
  // Storage: a key it cannot hold is the request's; its files are the node's.
  KVMESH_ERR_STORAGE_KEY_INVALID: 400,
  KVMESH_ERR_STORAGE_RECORD_INVALID: 400,
  KVMESH_ERR_STORAGE_CORRUPT: 500,
  KVMESH_ERR_STORAGE_CLOSED: 503,
  KVMESH_ERR_STORAGE_IO: 500,
  KVMESH_ERR_DATA_DIR_LOCKED: 500,
  KVMESH_ERR_PLACEMENT_EMPTY: 503,
  KVMESH_ERR_PLACEMENT_INCOMPATIBLE: 503,
  KVMESH_ERR_PLACEMENT_KEY_INVALID: 400,
  KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID: 400,
  KVMESH_ERR_MOVEMENT_UNSUPPORTED: 503,
  KVMESH_ERR_KV_NOT_OWNER: 503,
  KVMESH_ERR_KV_NOT_JOINED: 503,
  KVMESH_ERR_KV_FROZEN: 503,
  KVMESH_ERR_MEMBERSHIP_VIEW_INVALID: 400,
  KVMESH_ERR_MEMBERSHIP_VIEW_UNSUPPORTED: 409,
  KVMESH_ERR_KV_KEY_INVALID: 400,
  KVMESH_ERR_KV_KEY_TOO_LONG: 414,
  KVMESH_ERR_KV_VALUE_TOO_LARGE: 413,
  KVMESH_ERR_KV_REQUEST_INVALID: 400,
  KVMESH_ERR_KV_PRECONDITION_FAILED: 412,
  KVMESH_ERR_KV_QUORUM: 503,
  KVMESH_ERR_HTTP_BAD_REQUEST: 400,
  KVMESH_ERR_HTTP_NOT_FOUND: 404,
  KVMESH_ERR_HTTP_KEY_NOT_FOUND: 404,
  KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED: 405,
  KVMESH_ERR_HTTP_BODY_TOO_LARGE: 413,
  KVMESH_ERR_HTTP_NOT_READY: 503,
  KVMESH_ERR_HTTP_CLIENT_ABORTED: 499,
  KVMESH_ERR_HTTP_REQUEST_TIMEOUT: 408,
  KVMESH_ERR_HTTP_URI_TOO_LONG: 414,
  KVMESH_ERR_HTTP_HEADERS_TOO_LARGE: 431,
  KVMESH_ERR_HTTP_INTERNAL: 500,
  KVMESH_ERR_HTTP_LISTEN: 500,
});

/** What `/metrics` counts for a request whose client went away before it was read: no answer is sent. */
export const CLIENT_ABORTED_STATUS = 499;

export const INTERNAL_ERROR_CODE = 'KVMESH_ERR_HTTP_INTERNAL';
const INTERNAL_MESSAGE = 'internal error; the server log has the details';

/** What the client sees for a failure: status and `{"error":{"code","message"}}`. */
export interface HttpFailure {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  /** True for a failure nobody planned for (500): it belongs in the error log with its stack. */
  readonly unexpected: boolean;
  /** True when the client went away before its request was read: nothing is answered, nothing is logged above debug. */
  readonly aborted: boolean;
}

/**
 * Decides what the client sees for `err`. Known codes keep their message (it
 * tells the user what to do); anything else becomes a 500 whose message and
 * stack stay in the log.
 */
export function httpFailure(err: unknown): HttpFailure {
  if (isKvError(err)) {
    const status = HTTP_STATUS_BY_CODE[err.code];
    if (status !== 500) {
      return {
        status,
        code: err.code,
        message: err.message,
        unexpected: false,
        aborted: status === CLIENT_ABORTED_STATUS,
      };
    }
  }
  return { status: 500, code: INTERNAL_ERROR_CODE, message: INTERNAL_MESSAGE, unexpected: true, aborted: false };
}

/** The JSON body of a failure. */
export function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}
