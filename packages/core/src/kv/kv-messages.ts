import { readFileSync } from 'node:fs';
import type { MessageRegistry } from '../contracts/rpc.js';
import type { StoredRecord, Version } from '../contracts/storage.js';

/** Names of the message types in `proto/kv.proto`, between a coordinator and the replicas of a key. */
export const KV_MESSAGES = {
  /** Request `{ record }`: store the record if newer. Answered with `putReply`. */
  put: 'kvmesh.kv.Put',
  /** `{ written, previous, previousTombstone }`. */
  putReply: 'kvmesh.kv.PutReply',
  /** Request `{ key }`: the replica's record, tombstones included. Answered with `getReply`. */
  get: 'kvmesh.kv.Get',
  /** `{ record }`, `record` null when the replica holds none. */
  getReply: 'kvmesh.kv.GetReply',
} as const;

/** Payload of `kvmesh.kv.PutReply` in canonical form. */
export interface PutReplyPayload {
  readonly written: boolean;
  readonly previous: Version | null;
  readonly previousTombstone: boolean;
}

/** Payload of `kvmesh.kv.GetReply` in canonical form. */
export interface GetReplyPayload {
  readonly record: StoredRecord | null;
}

// Relative to dist/src/kv/, where this module runs from; the package ships proto/.
const KV_PROTO_URL = new URL('../../../proto/kv.proto', import.meta.url);

let kvProto: string | undefined;

/** The text of `proto/kv.proto`. */
export function kvProtoSource(): string {
  kvProto ??= readFileSync(KV_PROTO_URL, 'utf8');
  return kvProto;
}

/** Defines the KV message types in `registry` (harmless when they are there already). */
export function defineKvMessages(registry: MessageRegistry): string[] {
  return registry.define(kvProtoSource());
}
