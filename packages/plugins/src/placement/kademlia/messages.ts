import { defineKvMessages } from '@kvmesh/core';
import type { MessageRegistry, StoredRecord } from '@kvmesh/core';
import type { WireContact } from './contact.js';

/**
 * The Kademlia placement's messages (protobuf schema language, so every
 * codec carries them). Kept in the plugin's source rather than in
 * `proto/`: the placement registers it when it is built. Records are
 * `kvmesh.kv.Record` (core's `proto/kv.proto`), defined first.
 * Field numbers are wire format: never reuse or renumber them.
 */
export const KADEMLIA_PROTO = `
syntax = "proto3";

package kvmesh.placement.kademlia;

// A node of the overlay: its member id (its Kademlia id is SHA-256 of it) and transport URI.
message Contact {
  string id = 1;
  string address = 2;
}

// PING (Maymounkov & Mazieres, section 2.3): is the node alive?
message Ping {
  Contact sender = 1;
}

message Pong {
  Contact sender = 1;
}

// FIND_NODE: the k contacts the receiver knows closest to target.
message FindNode {
  Contact sender = 1;
  // 32 bytes: a Kademlia id.
  bytes target = 2;
}

message Nodes {
  Contact sender = 1;
  repeated Contact contacts = 2;
}

// Who owns a KV key (mode shift): the owner's member id and transport URI, and the
// entry's version, raised by one at every change of owner.
message Entry {
  string key = 1;
  string owner_id = 2;
  string owner_address = 3;
  uint64 version = 4;
  // When the owner last published it (its clock, ms since the Unix epoch): holders
  // drop the entry expiryMs after that unless the owner publishes it again.
  uint64 published_ms = 5;
}

// FIND_VALUE: the entry of key if the receiver holds it, else closer contacts.
message FindValue {
  Contact sender = 1;
  string key = 2;
}

message Value {
  Contact sender = 1;
  bool found = 2;
  Entry entry = 3;
  repeated Contact contacts = 4;
}

// STORE: keep these entries. An entry replaces a held one of a lower version; with
// create set, only a key the receiver holds no entry for is taken (claiming a new key);
// with replaces set, only where the held entry is that one or none is held (taking up a
// key whose named owner answered that it does not own it).
message Store {
  Contact sender = 1;
  repeated Entry entries = 2;
  bool create = 3;
  Entry replaces = 4;
}

// One entry per stored one: what the receiver holds for the key now.
message StoreReply {
  Contact sender = 1;
  repeated Entry current = 2;
}

enum ShiftOutcome {
  // The key is frozen for the sender: record (if any) and token enclosed.
  SHIFT_GRANTED = 0;
  // The owner keeps the key (not enough accesses in a row from the sender yet): use it remotely.
  SHIFT_DECLINED = 1;
  // Another node is shifting the key right now: retry after retry_after_ms.
  SHIFT_FROZEN = 2;
  // The key moved: ask 'to'.
  SHIFT_MOVED = 3;
  // The receiver does not own the key.
  SHIFT_NOT_OWNER = 4;
}

// Accessor to owner: I am accessing key; hand it over.
message ShiftRequest {
  Contact sender = 1;
  string key = 2;
}

message ShiftReply {
  ShiftOutcome outcome = 1;
  // GRANTED: releases the freeze (Release) or ends it (Abort).
  string token = 2;
  // GRANTED: the entry version the new owner publishes.
  uint64 version = 3;
  // GRANTED: the owner's record of the key, tombstones included; unset when it holds none.
  kvmesh.kv.Record record = 4;
  // GRANTED: how long the freeze lasts; FROZEN: when to ask again.
  uint32 freeze_ms = 5;
  uint32 retry_after_ms = 6;
  // MOVED: where the key went; DECLINED: the owner.
  Contact to = 7;
}

enum ReleaseOutcome {
  // The old owner gave the key up to the sender and removed its copy.
  RELEASE_DONE = 0;
  // The freeze ended before the release (or was never the sender's): the old owner kept the key.
  RELEASE_EXPIRED = 1;
  // The receiver knows nothing of the token (it restarted without a record of it).
  RELEASE_UNKNOWN = 2;
}

// New owner to old owner: the record is stored and the new entry published; give the key up.
message Release {
  Contact sender = 1;
  string key = 2;
  string token = 3;
}

message ReleaseReply {
  ReleaseOutcome outcome = 1;
  // DONE: a record newer than the one handed over, if the old owner held one; UNKNOWN:
  // the record the old owner holds, if any (it forgot the hand-over).
  kvmesh.kv.Record newer = 2;
}

// Accessor to owner: the shift failed here; end the freeze now.
message Abort {
  Contact sender = 1;
  string key = 2;
  string token = 3;
}

// Multicast discovery: a node announces itself on the group; nodes of the same
// cluster that hear it ping it back through the transport.
message Announce {
  Contact sender = 1;
  string cluster = 2;
}
`;

/** Fully qualified names of the messages above. */
export const KADEMLIA_MESSAGES = {
  ping: 'kvmesh.placement.kademlia.Ping',
  pong: 'kvmesh.placement.kademlia.Pong',
  findNode: 'kvmesh.placement.kademlia.FindNode',
  nodes: 'kvmesh.placement.kademlia.Nodes',
  findValue: 'kvmesh.placement.kademlia.FindValue',
  value: 'kvmesh.placement.kademlia.Value',
  store: 'kvmesh.placement.kademlia.Store',
  storeReply: 'kvmesh.placement.kademlia.StoreReply',
  shiftRequest: 'kvmesh.placement.kademlia.ShiftRequest',
  shiftReply: 'kvmesh.placement.kademlia.ShiftReply',
  release: 'kvmesh.placement.kademlia.Release',
  releaseReply: 'kvmesh.placement.kademlia.ReleaseReply',
  abort: 'kvmesh.placement.kademlia.Abort',
  announce: 'kvmesh.placement.kademlia.Announce',
} as const;

/** Defines the messages (and core's KV records they carry) in `registry`; harmless when defined already. */
export function defineKademliaMessages(registry: MessageRegistry): void {
  defineKvMessages(registry);
  registry.define(KADEMLIA_PROTO);
}

/** An entry in canonical form. */
export interface EntryPayload {
  readonly key: string;
  readonly ownerId: string;
  readonly ownerAddress: string;
  readonly version: number;
  readonly publishedMs: number;
}

export interface SenderPayload {
  readonly sender: WireContact | null;
}

export interface NodesPayload extends SenderPayload {
  readonly contacts: readonly WireContact[];
}

export interface ValuePayload extends SenderPayload {
  readonly found: boolean;
  readonly entry: EntryPayload | null;
  readonly contacts: readonly WireContact[];
}

export interface StorePayload extends SenderPayload {
  readonly entries: readonly EntryPayload[];
  readonly create: boolean;
  /** Set: each entry is taken only where the held one is this entry, or none is held (absent from older senders). */
  readonly replaces?: EntryPayload | null;
}

export interface StoreReplyPayload extends SenderPayload {
  readonly current: readonly EntryPayload[];
}

export type ShiftOutcome = 'SHIFT_GRANTED' | 'SHIFT_DECLINED' | 'SHIFT_FROZEN' | 'SHIFT_MOVED' | 'SHIFT_NOT_OWNER';

export interface ShiftReplyPayload {
  readonly outcome: ShiftOutcome;
  readonly token: string;
  readonly version: number;
  readonly record: StoredRecord | null;
  readonly freezeMs: number;
  readonly retryAfterMs: number;
  readonly to: WireContact | null;
}

export type ReleaseOutcome = 'RELEASE_DONE' | 'RELEASE_EXPIRED' | 'RELEASE_UNKNOWN';

export interface ReleaseReplyPayload {
  readonly outcome: ReleaseOutcome;
  readonly newer: StoredRecord | null;
}

export interface KeyTokenPayload extends SenderPayload {
  readonly key: string;
  readonly token: string;
}
