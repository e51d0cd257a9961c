import type {
  Admission,
  Intent,
  LocateOptions,
  Member,
  Move,
  NodeInfo,
  Placement,
  ReplicaSet,
  Rpc,
} from '@kvmesh/core';

const OWN: Admission = Object.freeze({ kind: 'own' });

export interface SinglePlacementComponents {
  readonly node: NodeInfo;
  readonly rpc: Rpc;
}

/**
 * Every key lives on this node alone: one replica, W = R = 1. For one-node
 * deployments and development; nothing ever moves.
 */
export class SinglePlacement implements Placement {
  readonly name = 'single';
  /** The view never changes. */
  readonly epoch = 1;
  readonly #components: SinglePlacementComponents;
  #set: ReplicaSet | undefined;

  constructor(components: SinglePlacementComponents) {
    this.#components = components;
  }

  /** This node as a member. */
  get self(): Member {
    return this.#replicaSet().replicas[0]!;
  }

  // The transport learns its final address (a port chosen at listen) in its
  // own start(), which runs before this one; so the member is built here.
  start(): void {
    this.#set = undefined;
    this.#replicaSet();
  }

  async locate(_key: string, _options: LocateOptions): Promise<ReplicaSet> {
    return this.#replicaSet();
  }

  admit(_key: string, _intent: Intent, _epoch: number): Admission {
    return OWN;
  }

  plan(_before: readonly Member[], _after: readonly Member[]): readonly Move[] {
    return [];
  }

  describe(): Record<string, unknown> {
    const owner = this.#components.node.id;
    return {
      strategy: 'single',
      owner,
      drawing: {
        shape: 'groups',
        caption: 'one node holds every key',
        groups: [{ id: owner, members: [owner], weight: 1 }],
      },
    };
  }

  #replicaSet(): ReplicaSet {
    if (this.#set === undefined) {
      const { node, rpc } = this.#components;
      const self: Member = Object.freeze({
        id: node.id,
        address: rpc.address,
        state: 'alive',
        incarnation: 0,
        meta: Object.freeze({ api: `http://${node.address}`, role: node.role }),
      });
      this.#set = Object.freeze({
        replicas: Object.freeze([self]),
        fallbacks: Object.freeze([]),
        writeQuorum: 1,
        conditionalWriteQuorum: 1,
        readQuorum: 1,
        epoch: this.epoch,
        hops: 0,
      });
    }
    return this.#set;
  }
}
