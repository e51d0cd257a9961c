/**
 * The environment `kvmesh up` gives every node, so a config can describe the
 * cluster it runs in (a static view, a fixed peer's address) with `${VAR}`
 * references. Documented in docs/cli.md; the names are stable. Kept free of
 * imports: `kvmesh start` reads the parent pid without loading the planner.
 */
export const UP_ENV = Object.freeze({
  /** 1-based position of this node (`1` for n1). */
  index: 'KVMESH_NODE_INDEX',
  /** This node's id (`n3`). */
  id: 'KVMESH_NODE_ID',
  /** This node's role. */
  role: 'KVMESH_NODE_ROLE',
  /** This node's `host:port`. */
  address: 'KVMESH_NODE_ADDRESS',
  /** How many nodes the cluster has. */
  count: 'KVMESH_NODE_COUNT',
  /** Every node's `host:port`, comma-separated, in node order. */
  nodes: 'KVMESH_NODES',
  /** Every node as `id@host:port`, comma-separated, in node order. */
  members: 'KVMESH_MEMBERS',
  /** The `host:port` of the nodes the others join through, comma-separated. */
  seeds: 'KVMESH_SEEDS',
  /** Prefix of one variable per role: `KVMESH_ROLE_<ROLE>` lists that role's nodes' `host:port`. */
  rolePrefix: 'KVMESH_ROLE_',
  /** Pid of the `kvmesh up` process; `kvmesh start` stops when that process is gone. Not needed by hand. */
  parentPid: 'KVMESH_PARENT_PID',
});

/** `KVMESH_ROLE_<ROLE>`: the role upper-cased, every character outside A-Z0-9 as `_`. */
export function roleVariable(role: string): string {
  return `${UP_ENV.rolePrefix}${role.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** Address of n1; n2 gets the next one, and so on (127.0.0.1 stays free for a single node). */
export const DEFAULT_HOST_BASE = '127.0.0.2';
