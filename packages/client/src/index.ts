/** @kvmesh/client: a topology-aware client for kvmesh's native API (docs/client.md). */
export { KvClient, keyPath } from './kv-client.js';
export type {
  CallOptions,
  DeleteOptions,
  DeleteResult,
  GetOptions,
  GetResult,
  KvClientOptions,
  KvClientStats,
  PutOptions,
  PutResult,
} from './kv-client.js';
export { CLIENT_ERROR_CODES, KvClientError, isKvClientError } from './errors.js';
export type { ClientErrorCode, KvClientErrorOptions, WriteOutcome } from './errors.js';
export { RETRY_DEFAULTS, backoffMs, retryAfterMs } from './backoff.js';
export type { RetryOptions } from './backoff.js';
export { RoutingTable, routesProblem } from './routing-table.js';
export type { ClusterMember, RoutesAnswer } from './routing-table.js';
export { KEY_HASHES, fmix32, loadKeyHash } from './key-hash.js';
export type { KeyHash, KeyHashName } from './key-hash.js';
export { nodeOrigin } from './nodes.js';

export const CLIENT_VERSION = '0.1.0';
