import type { Cluster, Logger, MessageRegistry, Placement, Rpc, Storage } from '@kvmesh/core';
import { shardView } from './shard-view.js';

/**
 * The facade's one node-to-node message: what another node stores and
 * whether its data movement settled, for `/kvs/shards/<id>` and the answer
 * of `/kvs/view-change`. Field numbers are wire format: never reuse them.
 */
export const CSE138_PROTO = `
syntax = "proto3";

package kvmesh.facade.cse138;

// Asks a node for its status; empty.
message StatusQuery {
  string from = 1;
}

message Status {
  // Live records in the node's storage (the CSE138 key-count).
  uint64 count = 1;
  // The placement's epoch: equal on nodes that agree on the members holding data.
  uint64 epoch = 2;
  // True while a move of data from or to the node is unfinished.
  bool moving = 3;
  // Fingerprint of the member view its data movement was planned for.
  string view = 4;
  // True when the node belongs to its installed view.
  bool member = 5;
}
`;

export const CSE138_MESSAGES = {
  query: 'kvmesh.facade.cse138.StatusQuery',
  status: 'kvmesh.facade.cse138.Status',
} as const;

export interface NodeStatus {
  readonly count: number;
  readonly epoch: number;
  readonly moving: boolean;
  readonly view: string;
  readonly member: boolean;
}

export interface NodeStatusComponents {
  readonly cluster: Cluster;
  readonly storage: Storage;
  readonly placement: Placement;
  readonly rpc: Rpc;
  readonly messages: MessageRegistry;
  readonly logger: Logger;
}

/** This node's status, and other nodes' through the facade's message. */
export class NodeStatusService {
  readonly #c: NodeStatusComponents;

  constructor(components: NodeStatusComponents) {
    this.#c = components;
    components.messages.define(CSE138_PROTO);
    components.rpc.handle(CSE138_MESSAGES.query, async () => ({
      type: CSE138_MESSAGES.status,
      payload: await this.local(),
    }));
  }

  async local(): Promise<NodeStatus> {
    const view = this.#c.cluster.view();
    return {
      count: await this.#c.storage.count(),
      epoch: this.#c.placement.epoch,
      moving: view.movement?.state === 'moving',
      view: view.movement?.view ?? '',
      member: shardView(view).member,
    };
  }

  /** The status of the node at transport URI `uri` (this node's own when it is this node). */
  async of(uri: string, timeoutMs: number, signal?: AbortSignal): Promise<NodeStatus> {
    if (uri === this.#c.rpc.address) return this.local();
    const reply = await this.#c.rpc.request<NodeStatus>(
      uri,
      CSE138_MESSAGES.query,
      { from: this.#c.rpc.address },
      { timeoutMs, ...(signal ? { signal } : {}) },
    );
    const p = reply.payload;
    return { count: Number(p.count), epoch: Number(p.epoch), moving: p.moving, view: p.view, member: p.member };
  }
}
