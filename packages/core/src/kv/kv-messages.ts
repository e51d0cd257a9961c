import { readFileSync } from 'node:fs';
import type { MessageRegistry } from '../contracts/rpc.js';
import type { StoredRecord, Version } from '../contracts/storage.js';

/** Names of the message types in `proto/kv.proto`, between a coordinator and the replicas of a key. */
export const KV_MESSAGES = {
  /** Request `{ record, epoch, expect }`: store the record if newer (and the expectation holds). Answered with `putReply`. */
  put: 'kvmesh.kv.Put',
  /** `{ written, previous, previousTombstone, conflict }`. */
  putReply: 'kvmesh.kv.PutReply',
  /** Request `{ key, version }`: remove the record if it is exactly that version. Answered with `retractReply`. */
  retract: 'kvmesh.kv.Retract',
  /** `{ removed }`. */
  retractReply: 'kvmesh.kv.RetractReply',
  /** Request `{ key }`: the replica's record, tombstones included. Answered with `getReply`. */
  get: 'kvmesh.kv.Get',
  /** `{ record }`, `record` null when the replica holds none. */
  getReply: 'kvmesh.kv.GetReply',
  /** Request to the key's primary: run a client write there. Answered with `writeReply` or `refused`. */
  write: 'kvmesh.kv.Write',
  /** `{ outcome, created, version, currentVersion, message }`. */
  writeReply: 'kvmesh.kv.WriteReply',
  /** A replica's answer instead of the normal reply when placement does not admit the request. */
  refused: 'kvmesh.kv.Refused',
} as const;

/** Payload of `kvmesh.kv.Write` in canonical form. */
export interface WritePayload {
  readonly key: string;
  readonly tombstone: boolean;
  readonly value: Uint8Array;
  readonly contentType: string;
  readonly ifMatch: string;
  readonly ifNoneMatch: boolean;
  readonly epoch: number;
  /** The client request's id ('' when none): the primary's log lines carry it. */
  readonly requestId: string;
}

/** Payload of `kvmesh.kv.WriteReply` in canonical form. */
export interface WriteReplyPayload {
  readonly outcome: 'APPLIED' | 'PRECONDITION_FAILED' | 'NOTHING_TO_DELETE';
  readonly created: boolean;
  readonly version: Version | null;
  readonly currentVersion: string;
  readonly message: string;
}

/** Payload of `kvmesh.kv.Refused` in canonical form. */
export interface RefusedPayload {
  readonly kind: 'NOT_OWNER' | 'FROZEN' | 'MOVED';
  readonly epoch: number;
  readonly retryAfterMs: number;
  readonly toId: string;
  readonly toAddress: string;
}

/**
 * A conditional write's expectation of a replica (`kvmesh.kv.Expectation`):
 * no live record (`absent`, for If-None-Match: *), or nothing newer than
 * `atMost` (the newest version the primary's quorum read found).
 */
export interface Expectation {
  readonly absent: boolean;
  readonly atMost: Version | null;
}

/** Payload of `kvmesh.kv.Put` in canonical form. */
export interface PutPayload {
  readonly record: StoredRecord | null;
  readonly epoch: number;
  /** Null for a plain write (the newest version wins). */
  readonly expect: Expectation | null;
}

/** Payload of `kvmesh.kv.PutReply` in canonical form. */
export interface PutReplyPayload {
  readonly written: boolean;
  readonly previous: Version | null;
  readonly previousTombstone: boolean;
  readonly conflict: boolean;
}

/** Payload of `kvmesh.kv.Retract` in canonical form. */
export interface RetractPayload {
  readonly key: string;
  readonly version: Version | null;
}

/** Payload of `kvmesh.kv.RetractReply` in canonical form. */
export interface RetractReplyPayload {
  readonly removed: boolean;
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
