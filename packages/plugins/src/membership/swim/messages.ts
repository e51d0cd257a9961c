import { readFileSync } from 'node:fs';
import type { MemberState } from '@kvmesh/core';

/** Fully qualified names of the types in `proto/swim.proto`. */
export const SWIM_MESSAGES = {
  update: 'kvmesh.membership.swim.Update',
  ping: 'kvmesh.membership.swim.Ping',
  ack: 'kvmesh.membership.swim.Ack',
  nack: 'kvmesh.membership.swim.Nack',
  pingReq: 'kvmesh.membership.swim.PingReq',
  gossip: 'kvmesh.membership.swim.Gossip',
  syncRequest: 'kvmesh.membership.swim.SyncRequest',
  syncResponse: 'kvmesh.membership.swim.SyncResponse',
} as const;

// Relative to dist/src/membership/swim/, where this module runs from; the package ships proto/.
const SWIM_PROTO_URL = new URL('../../../../proto/swim.proto', import.meta.url);

let source: string | undefined;

export function swimProtoSource(): string {
  source ??= readFileSync(SWIM_PROTO_URL, 'utf8');
  return source;
}

export type WireState = 'ALIVE' | 'SUSPECT' | 'DEAD' | 'LEFT';

export const TO_WIRE: Readonly<Record<MemberState, WireState>> = {
  alive: 'ALIVE',
  suspect: 'SUSPECT',
  dead: 'DEAD',
  left: 'LEFT',
};

export const FROM_WIRE: Readonly<Record<WireState, MemberState>> = {
  ALIVE: 'alive',
  SUSPECT: 'suspect',
  DEAD: 'dead',
  LEFT: 'left',
};

export interface WireUpdate {
  readonly id: string;
  readonly state: WireState;
  readonly incarnation: number;
  readonly address: string;
  /** Key, value, key, value... */
  readonly meta: readonly string[];
  readonly from: string;
  readonly ageMs: number;
  readonly confirmations: number;
}

export interface PingMessage {
  readonly seq: number;
  readonly target: string;
  readonly source: string;
  readonly updates: readonly WireUpdate[];
  readonly members: number;
}

export interface AckMessage {
  readonly seq: number;
  readonly updates: readonly WireUpdate[];
  readonly members: number;
}

export interface NackMessage {
  readonly seq: number;
}

export interface PingReqMessage {
  readonly seq: number;
  readonly target: string;
  readonly targetAddress: string;
  readonly source: string;
  readonly updates: readonly WireUpdate[];
}

export interface GossipMessage {
  readonly updates: readonly WireUpdate[];
}

export interface SyncRequestMessage {
  readonly self: WireUpdate;
  readonly updates: readonly WireUpdate[];
  readonly cursor: number;
  readonly full: boolean;
  readonly maxBytes: number;
}

export interface SyncResponseMessage {
  readonly members: readonly WireUpdate[];
  readonly next: number;
  readonly more: boolean;
}

/** Largest uint32: ages and counts are measured with it, so the size estimate covers any real value. */
export const MAX_AGE_MS = 0xffffffff;

/** Meta as it travels: key, value, key, value... */
export function flattenMeta(meta: Readonly<Record<string, string>>): string[] {
  const out: string[] = [];
  for (const key of Object.keys(meta).sort()) out.push(key, meta[key]!);
  return out;
}

/** Meta from its wire form; a trailing key without a value and a `__proto__` key are dropped. */
export function unflattenMeta(flat: readonly string[]): Readonly<Record<string, string>> {
  const meta: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const key = flat[i]!;
    if (key !== '__proto__') meta[key] = flat[i + 1]!;
  }
  return Object.freeze(meta);
}
