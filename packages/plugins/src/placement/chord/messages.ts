import type { WireNode } from './node-ref.js';

/** Fully qualified names of the chord message types. */
export const CHORD_MESSAGES = {
  findSuccessor: 'kvmesh.placement.chord.FindSuccessor',
  findSuccessorReply: 'kvmesh.placement.chord.FindSuccessorReply',
  join: 'kvmesh.placement.chord.Join',
  stabilize: 'kvmesh.placement.chord.Stabilize',
  getNeighbours: 'kvmesh.placement.chord.GetNeighbours',
  neighbours: 'kvmesh.placement.chord.Neighbours',
  leave: 'kvmesh.placement.chord.Leave',
  claim: 'kvmesh.placement.chord.Claim',
} as const;

/**
 * The chord wire format. Field numbers are part of it: never reuse or
 * renumber them. Every request names the sender's metric, and a node refuses
 * requests of another metric (KVMESH_ERR_PLACEMENT_INCOMPATIBLE), so two
 * rings of different metrics never mix.
 */
export const CHORD_PROTO = `
syntax = "proto3";

package kvmesh.placement.chord;

// A node of the ring.
message Node {
  string id = 1;
  // Transport URI.
  string address = 2;
  // Position on the identifier circle: fixed-width lowercase hex.
  string ident = 3;
  // HTTP API base URL.
  string api = 4;
  string role = 5;
}

// One step of an iterative lookup: what do you know about the successor of target?
message FindSuccessor {
  string metric = 1;
  string target = 2;
}

message FindSuccessorReply {
  // True when replicas holds the target's successor and the nodes after it.
  bool done = 1;
  repeated Node replicas = 2;
  // When done: the exclusive start of the arc whose keys live at replicas[0].
  string range_start = 3;
  // When not done: nodes closer to the target than the one answering, best first.
  repeated Node closer = 4;
}

// First contact of a joining node with a member of the ring; answered like FindSuccessor for the joiner's place.
message Join {
  string metric = 1;
  Node node = 2;
}

// Sent every period by a node to its successor: "I think I am your predecessor" (Chord's notify).
message Stabilize {
  string metric = 1;
  Node from = 2;
  // The sender's predecessor list, which becomes the rest of the receiver's.
  repeated Node predecessors = 3;
  // Ask for the finger table too (a joining node seeds its own from it).
  bool want_fingers = 4;
  // Digest of the lists the sender got from this node last time (0: none): when they are still the
  // same, the reply says so instead of repeating them.
  uint32 known = 5;
  // The receiver's last answer showed it holds the sender's predecessors already: they are left out.
  bool tail_known = 6;
}

// Asks a node for its predecessors (check-predecessor, fix-fingers).
message GetNeighbours {
  string metric = 1;
}

message Neighbours {
  // Closest first.
  repeated Node predecessors = 1;
  // Closest first. Only in answers to Stabilize.
  repeated Node successors = 2;
  repeated Node fingers = 3;
  // The lists are those of the digest the request named: left out.
  bool unchanged = 4;
  // Digest of predecessors and successors, to name in the next Stabilize.
  uint32 digest = 5;
}

// A node that became a replica of the arc (start, end] asks a node that holds it to copy it over:
// a write that landed while the lists were settling may have missed it.
message Claim {
  string metric = 1;
  Node node = 2;
  string start = 3;
  string end = 4;
}

// A graceful leave, sent to the leaving node's predecessor and successor.
message Leave {
  string metric = 1;
  Node node = 2;
  repeated Node predecessors = 3;
  repeated Node successors = 4;
}
`;

export interface FindSuccessorPayload {
  readonly metric: string;
  readonly target: string;
}

export interface FindSuccessorReplyPayload {
  readonly done: boolean;
  readonly replicas: readonly WireNode[];
  readonly rangeStart: string;
  readonly closer: readonly WireNode[];
}

export interface JoinPayload {
  readonly metric: string;
  readonly node: WireNode | null;
}

export interface StabilizePayload {
  readonly metric: string;
  readonly from: WireNode | null;
  readonly predecessors: readonly WireNode[];
  readonly wantFingers: boolean;
  readonly known: number;
  readonly tailKnown: boolean;
}

export interface GetNeighboursPayload {
  readonly metric: string;
}

export interface NeighboursPayload {
  readonly predecessors: readonly WireNode[];
  readonly successors: readonly WireNode[];
  readonly fingers: readonly WireNode[];
  readonly unchanged: boolean;
  readonly digest: number;
}

export interface ClaimPayload {
  readonly metric: string;
  readonly node: WireNode | null;
  readonly start: string;
  readonly end: string;
}

export interface LeavePayload {
  readonly metric: string;
  readonly node: WireNode | null;
  readonly predecessors: readonly WireNode[];
  readonly successors: readonly WireNode[];
}
