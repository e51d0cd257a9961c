import { readFileSync } from 'node:fs';
import type { MessageRegistry } from '../contracts/rpc.js';
import { defineKvMessages } from '../kv/kv-messages.js';
import type { StoredRecord } from '../contracts/storage.js';

/** Names of the message types in `proto/movement.proto`. */
export const MOVEMENT_MESSAGES = {
  /** Request `{ records, epoch, source, purpose }`: store each record if newer and owned. Answered with `putBatchReply`. */
  putBatch: 'kvmesh.movement.PutBatch',
  /** `{ outcomes }`: one PutOutcome per record. */
  putBatchReply: 'kvmesh.movement.PutBatchReply',
  /** Request `{ range, epoch, source, view }`: a move to the receiver is complete. Answered with kvmesh.core.Empty. */
  moveDone: 'kvmesh.movement.MoveDone',
  /** Request `{ target }`: is a move to `target` still running here? Answered with `moveQueryReply`. */
  moveQuery: 'kvmesh.movement.MoveQuery',
  /** `{ busy, view }`. */
  moveQueryReply: 'kvmesh.movement.MoveQueryReply',
  /** Request `{ target, targetAddress, record }`: keep a hint. Answered with kvmesh.core.Empty once stored. */
  hint: 'kvmesh.movement.Hint',
  /** Request `{ peer, buckets }`: digests of the records both hold. Answered with `digestReply`. */
  digest: 'kvmesh.movement.DigestRequest',
  /** `{ sums, xors, counts }`, one entry per bucket. */
  digestReply: 'kvmesh.movement.DigestReply',
  /** Request `{ peer, buckets, differing }`: send me your records of these buckets. Answered with `repairReply`. */
  repair: 'kvmesh.movement.RepairRequest',
  /** `{ sent, written }`. */
  repairReply: 'kvmesh.movement.RepairReply',
} as const;

/** What a receiver did with one record of a PutBatch. */
export type PutOutcome = 'PUT_WRITTEN' | 'PUT_ALREADY_NEWER' | 'PUT_REFUSED';

/** Why a batch travels. */
export type BatchPurpose = 'PURPOSE_REBALANCE' | 'PURPOSE_HINT' | 'PURPOSE_REPAIR';

/** A record as it arrives in canonical form: an unset version is null. */
export type WireRecord = Omit<StoredRecord, 'version'> & { readonly version: StoredRecord['version'] | null };

/** Payload of `kvmesh.movement.PutBatch` in canonical form. */
export interface PutBatchPayload {
  readonly records: readonly WireRecord[];
  readonly epoch: number;
  readonly source: string;
  readonly purpose: BatchPurpose;
}

/** Payload of `kvmesh.movement.PutBatchReply`. */
export interface PutBatchReplyPayload {
  readonly outcomes: readonly PutOutcome[];
}

/** Payload of `kvmesh.movement.MoveDone`. */
export interface MoveDonePayload {
  readonly range: string;
  readonly epoch: number;
  readonly source: string;
  readonly view: string;
}

/** Payload of `kvmesh.movement.MoveQuery`. */
export interface MoveQueryPayload {
  readonly target: string;
}

/** Payload of `kvmesh.movement.MoveQueryReply`. */
export interface MoveQueryReplyPayload {
  readonly busy: boolean;
  readonly view: string;
}

/** Payload of `kvmesh.movement.Hint`. */
export interface HintPayload {
  readonly target: string;
  readonly targetAddress: string;
  readonly record: WireRecord | null;
}

/** Payload of `kvmesh.movement.DigestRequest`. */
export interface DigestRequestPayload {
  readonly peer: string;
  readonly buckets: number;
}

/** Payload of `kvmesh.movement.DigestReply`. */
export interface DigestReplyPayload {
  readonly sums: readonly number[];
  readonly xors: readonly number[];
  readonly counts: readonly number[];
}

/** Payload of `kvmesh.movement.RepairRequest`. */
export interface RepairRequestPayload {
  readonly peer: string;
  readonly buckets: number;
  readonly differing: readonly number[];
}

/** Payload of `kvmesh.movement.RepairReply`. */
export interface RepairReplyPayload {
  readonly sent: number;
  readonly written: number;
}

// Relative to dist/src/movement/, where this module runs from; the package ships proto/.
const MOVEMENT_PROTO_URL = new URL('../../../proto/movement.proto', import.meta.url);

let movementProto: string | undefined;

/** The text of `proto/movement.proto`. */
export function movementProtoSource(): string {
  movementProto ??= readFileSync(MOVEMENT_PROTO_URL, 'utf8');
  return movementProto;
}

/**
 * Defines the movement message types in `registry`, and the KV messages whose
 * Record they carry (harmless when they are there already).
 */
export function defineMovementMessages(registry: MessageRegistry): string[] {
  defineKvMessages(registry);
  return registry.define(movementProtoSource());
}
