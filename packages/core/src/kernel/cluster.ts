import type { Cluster, ClusterView } from '../contracts/cluster.js';
import type { Membership, ViewParameters } from '../contracts/membership.js';
import type { Placement } from '../contracts/placement.js';
import type { Transport } from '../contracts/transport.js';
import { KvError } from '../errors.js';
import type { MovementStatus } from '../movement/movement.js';
import type { NodeInfo } from '../plugin.js';
import { TOKENS } from '../tokens.js';
import { requireAdminToken } from './admin-token.js';
import type { ComponentDefinition } from './graph.js';

/** What the cluster component reads; all but `node` are optional (a node may run without them). */
export interface NodeClusterComponents {
  readonly node: NodeInfo;
  /** The node's config: `cluster.adminToken` guards `setView`. */
  readonly config?: { readonly cluster?: { readonly adminToken?: string } };
  readonly membership?: Membership;
  readonly placement?: Placement;
  readonly transport?: Transport;
  /** The KV service, when it reports movement (`CoordinatorKvService.movementStatus`). */
  readonly kv?: { movementStatus?(): MovementStatus };
}

/**
 * The `cluster` component of every node: its view of the cluster from the
 * membership, placement and KV service, and the operator's view change
 * through `Membership.setView`. Started after them and stopped before them,
 * so a view change never reaches a membership that is not running.
 */
export class NodeCluster implements Cluster {
  readonly #c: NodeClusterComponents;
  #running = false;

  constructor(components: NodeClusterComponents) {
    this.#c = components;
  }

  get administered(): boolean {
    return typeof this.#c.membership?.setView === 'function';
  }

  start(): void {
    this.#running = true;
  }

  stop(): void {
    this.#running = false;
  }

  view(): ClusterView {
    const { node, membership, placement, transport, kv } = this.#c;
    const members = membership
      ? membership.members().map((m) => ({
          id: m.id,
          address: m.address,
          state: m.state,
          incarnation: m.incarnation,
          ...(typeof m.meta['role'] === 'string' ? { role: m.meta['role'] } : {}),
        }))
      : [
          {
            id: node.id,
            address: transport?.address ?? node.address,
            state: 'alive' as const,
            incarnation: 0,
            ...(node.role !== undefined ? { role: node.role } : {}),
          },
        ];
    return {
      self: { id: node.id, address: node.address },
      members,
      placement: placement ? { epoch: placement.epoch, ...placement.describe() } : {},
      ...(typeof kv?.movementStatus === 'function' ? { movement: kv.movementStatus() } : {}),
    };
  }

  async setView(view: readonly string[], parameters?: ViewParameters): Promise<void> {
    requireAdminToken(this.#c.config?.cluster?.adminToken, 'a view change');
    const membership = this.#c.membership;
    if (membership?.setView === undefined) {
      throw new KvError(
        'KVMESH_ERR_MEMBERSHIP_VIEW_UNSUPPORTED',
        membership === undefined
          ? 'this node runs without a membership, so it has no view to change; nothing was changed'
          : `this node's membership (${membership.name}) finds its members itself and takes no view from an operator; nothing was changed`,
      );
    }
    if (!this.#running) {
      throw new KvError(
        'KVMESH_ERR_KERNEL_STATE',
        'the node is not running, so its view cannot change; nothing was changed',
      );
    }
    if (parameters !== undefined && Object.keys(parameters).length > 0) this.#checkParameters(parameters, view);
    await membership.setView(view, parameters);
  }

  /** The placement's word on a view change's parameters, before anything changes. */
  #checkParameters(parameters: ViewParameters, view: readonly string[]): void {
    const bad = Object.entries(parameters).filter(([, v]) => typeof v !== 'number' || !Number.isSafeInteger(v));
    if (bad.length > 0) {
      throw new KvError(
        'KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID',
        `view parameters are whole numbers; found ${bad.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}; nothing was changed`,
      );
    }
    const placement = this.#c.placement;
    if (placement?.checkViewParameters === undefined) {
      throw new KvError(
        'KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID',
        placement === undefined
          ? `this node runs without a placement, which would read the view's parameters (${Object.keys(parameters).join(', ')}); nothing was changed`
          : `placement '${placement.name}' takes no view parameters (${Object.keys(parameters).join(', ')}); nothing was changed`,
      );
    }
    placement.checkViewParameters(parameters, new Set(view.map((e) => e.trim())).size);
  }
}

/** The definition of the `cluster` component; `coreDefinitions` includes it in every node. */
export function clusterDefinition(): ComponentDefinition<Cluster> {
  return {
    name: 'cluster',
    token: TOKENS.cluster,
    label: 'cluster',
    needs: ['node', 'config'],
    optionalNeeds: ['membership', 'placement', 'transport', 'kv'],
    build: (c) => new NodeCluster(c as unknown as NodeClusterComponents),
  };
}
