import type { Member, MemberState } from '@kvmesh/core';

/** Fully qualified names of the messages in proto/controller.proto. */
export const CONTROLLER_MESSAGES = {
  heartbeat: 'kvmesh.membership.controller.ControllerHeartbeat',
  list: 'kvmesh.membership.controller.ControllerList',
  report: 'kvmesh.membership.controller.ControllerReport',
  leave: 'kvmesh.membership.controller.ControllerLeave',
  probe: 'kvmesh.membership.controller.ControllerProbe',
} as const;

export const EMPTY_MESSAGE = 'kvmesh.core.Empty';

const TO_WIRE: Readonly<Record<MemberState, string>> = {
  alive: 'CONTROLLER_STATE_ALIVE',
  suspect: 'CONTROLLER_STATE_SUSPECT',
  dead: 'CONTROLLER_STATE_DEAD',
  left: 'CONTROLLER_STATE_LEFT',
};

const FROM_WIRE = new Map(Object.entries(TO_WIRE).map(([state, wire]) => [wire, state as MemberState]));

export interface WireMember {
  readonly id: string;
  readonly address: string;
  readonly state: string;
  readonly incarnation: number;
  readonly meta: Record<string, string>;
}

export interface WireHeartbeat {
  readonly member: WireMember | null;
  readonly generation: number;
  readonly version: number;
}

export interface WireList {
  readonly generation: number;
  readonly version: number;
  readonly full: boolean;
  readonly baseVersion: number;
  readonly members: readonly WireMember[];
}

export function toWire(member: Member): WireMember {
  return {
    id: member.id,
    address: member.address,
    state: TO_WIRE[member.state],
    incarnation: member.incarnation,
    meta: { ...member.meta },
  };
}

/** The member a wire message describes, or undefined when it is unusable (no id or address). */
export function fromWire(wire: WireMember | null): Member | undefined {
  if (wire === null || wire.id === '' || wire.address === '') return undefined;
  return {
    id: wire.id,
    address: wire.address,
    state: FROM_WIRE.get(wire.state) ?? 'alive',
    incarnation: wire.incarnation,
    meta: { ...wire.meta },
  };
}
