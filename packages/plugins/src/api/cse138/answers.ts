/**
 * The CSE138 store's fixed answers (its design document, "API"): messages and errors
 * word for word, and the field names of its JSON bodies.
 */
export const CSE138 = Object.freeze({
  keysPrefix: '/kvs/keys/',
  keyCountPath: '/kvs/key-count',
  viewChangePath: '/kvs/view-change',
  shardsPath: '/kvs/shards',
  /** "If the key ... has length greater than 50" (its design document, "Insert new key"). */
  maxKeyChars: 50,
  /** A request that cannot be served within this many ms answers 503 "Unable to satisfy request". */
  requestTimeoutMs: 5_000,
  added: 'Added successfully',
  updated: 'Updated successfully',
  retrieved: 'Retrieved successfully',
  deleted: 'Deleted successfully',
  keyCount: 'Key count retrieved successfully',
  viewChanged: 'View change successful',
  shardList: 'Shard membership retrieved successfully',
  shardInfo: 'Shard information retrieved successfully',
  valueMissing: 'Value is missing',
  keyTooLong: 'Key is too long',
  keyMissing: 'Key does not exist',
  unavailable: 'Unable to satisfy request',
  viewMissing: 'View is missing',
  shardMissing: 'Shard does not exist',
  methodNotAllowed: 'Method not allowed',
  /** The field a client sends back with every data request, and every data answer carries. */
  context: 'causal-context',
});

/** `Error in <METHOD>`: the `message` of every error answer. */
export function errorIn(method: string): string {
  return `Error in ${method}`;
}

/** The error body: `{"error": ..., "message": "Error in <METHOD>"}`, plus the fields a data answer carries. */
export function errorBody(method: string, error: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { error, message: errorIn(method), ...extra };
}
