import type { ClusterMember, ClusterView } from '@kvmesh/core';

/** One shard as the CSE138 API names it: an id ("1", "2"...) and its replicas' addresses. */
export interface Shard {
  /** 1-based, as a JSON string in every answer (`"shard-id": "1"`). */
  readonly id: string;
  /** `host:port` of each replica, in the placement's member order. */
  readonly replicas: readonly string[];
  /** Transport URIs of the replicas, same order, for node-to-node requests. */
  readonly uris: readonly string[];
  /** Member ids of the replicas, same order. */
  readonly ids: readonly string[];
}

/** The CSE138 picture of the cluster a node sees now. */
export interface ShardView {
  /** This node's member id. */
  readonly selfId: string;
  /** Whether this node belongs to its installed view (a node started outside it, or dropped, does not). */
  readonly member: boolean;
  /** Replicas per shard: the placement's `replicationFactor`, 1 when it names none. */
  readonly factor: number;
  readonly shards: readonly Shard[];
  /** The shard this node is a replica of, when it is one. */
  readonly own: Shard | undefined;
  /** `host:port` → transport URI of every member the view lists. */
  readonly uris: ReadonlyMap<string, string>;
}

/**
 * `host:port` of a member: its transport URI's authority (the http
 * transport shares the API port, so this is the address CSE138 clients use).
 */
export function hostPortOf(address: string): string {
  try {
    const url = new URL(address);
    if (url.host !== '') return url.host;
  } catch {
    // Not a URI: already host:port.
  }
  return address;
}

interface DescribedShard {
  readonly members?: unknown;
}

/**
 * Reads shards from the cluster view: a placement that cuts members into
 * shards describes them as `shards: [{members: [ids]}]` (consistent-hash in
 * `shards` mode); any other placement is read as one shard per member
 * holding data, in id order, with a factor of 1.
 */
export function shardView(view: ClusterView): ShardView {
  const byId = new Map<string, ClusterMember>(view.members.map((m) => [m.id, m]));
  const selfMember = view.members.find((m) => hostPortOf(m.address) === view.self.address) ?? byId.get(view.self.id);
  const selfId = selfMember?.id ?? view.self.id;
  const uris = new Map(view.members.map((m) => [hostPortOf(m.address), m.address] as const));
  const described = view.placement['shards'];
  const factor = typeof view.placement['replicationFactor'] === 'number' ? view.placement['replicationFactor'] : 1;
  let groups: ClusterMember[][];
  if (Array.isArray(described)) {
    groups = (described as DescribedShard[]).map((s) =>
      (Array.isArray(s.members) ? (s.members as unknown[]) : [])
        .map((id) => byId.get(String(id)))
        .filter((m): m is ClusterMember => m !== undefined),
    );
  } else {
    groups = view.members
      .filter((m) => m.state !== 'left')
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((m) => [m]);
  }
  const shards = groups.map((members, i): Shard => ({
    id: String(i + 1),
    replicas: members.map((m) => hostPortOf(m.address)),
    uris: members.map((m) => m.address),
    ids: members.map((m) => m.id),
  }));
  const member = selfMember !== undefined && selfMember.state !== 'left';
  return {
    selfId,
    member,
    factor: Array.isArray(described) ? factor : 1,
    shards,
    own: member ? shards.find((s) => s.ids.includes(selfId)) : undefined,
    uris,
  };
}
