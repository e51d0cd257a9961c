import type { ConfigDefault, JsonSchema } from '@kvmesh/core';

/**
 * The options of the dyschord facade: the keys of dyschord's `dyschord.conf`
 * (its design document, "Running the server"), spelled as there, so a node's config can
 * carry them as they are. Besides `log_requests`, they say nothing about the
 * facade itself: `configDefaults` maps them to the config sections kvmesh
 * reads them from.
 */
export interface DyschordOptions {
  /** Nodes to join the ring through: dyschord's peer URLs (`http://localhost:10000`) or `host:port`. */
  readonly cloud_members: readonly string[];
  /** Seconds between checks of the mesh (the ring's heartbeat). */
  readonly heartbeat: number;
  /** This node's id. */
  readonly node_id: string | number | null;
  /** The port the node listens on. */
  readonly port: number | null;
  readonly metric: 'md5' | 'trivial';
  /** Log every XML-RPC call (dyschord's logRequests). */
  readonly log_requests: boolean;
  /** dyschord's verbosity of its node-to-node XML-RPC proxies; kvmesh nodes talk through its own rpc instead. */
  readonly proxy_verbose: boolean;
}

/** Host a node listens on when the config names none and `port` gives only the port (dyschord binds localhost). */
const DEFAULT_HOST = '127.0.0.1';
const PEER_URL = /^https?:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})\/?$/;
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/;

export const DYSCHORD_OPTIONS_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    cloud_members: {
      type: 'array',
      items: { type: 'string', pattern: '^(?:https?://)?(?:\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}/?$' },
      default: [],
      description:
        "dyschord.conf's cloud_members: nodes to join through at start, as dyschord's peer URLs (http://host:port) or host:port. Written, it gives the config's join list.",
    },
    heartbeat: {
      type: 'number',
      minimum: 0.01,
      default: 1,
      description:
        "dyschord.conf's heartbeat: seconds between checks of the mesh. Written, it gives placement.options.heartbeatMs (in ms).",
    },
    node_id: {
      type: ['integer', 'string', 'null'],
      pattern: '^[A-Za-z0-9._:-]{1,128}$',
      default: null,
      description:
        "dyschord.conf's node_id: this node's id (with the trivial metric, its position is the integer the id ends with). Written, it gives node.id; kvmesh start --id wins over it.",
    },
    port: {
      type: ['integer', 'null'],
      minimum: 0,
      maximum: 65535,
      default: null,
      description:
        "dyschord.conf's port: the port the node listens on, XML-RPC included. Written, it gives the port of node.address (host from node.address, else 127.0.0.1); kvmesh start --port wins over it.",
    },
    metric: {
      enum: ['md5', 'trivial'],
      default: 'md5',
      description:
        "dyschord.conf's metric: md5 (keys by the MD5 of their name on a 128-bit circle) or trivial (integer keys mod 16, at most 16 nodes). Written, it gives placement.options.metric.",
    },
    log_requests: {
      type: 'boolean',
      default: false,
      description: "dyschord.conf's log_requests: log every XML-RPC call (method, key, outcome) at info.",
    },
    proxy_verbose: {
      type: 'boolean',
      default: false,
      description:
        "dyschord.conf's proxy_verbose, accepted so a dyschord.conf's keys validate: kvmesh nodes talk through its rpc, whose requests log.level debug shows.",
    },
  },
};

/**
 * What the options give the rest of the config (`PluginManifest.configDefaults`):
 * node_id → node.id, port → node.address's port, cloud_members → join,
 * heartbeat → placement.options.heartbeatMs, metric → placement.options.metric.
 * @throws Error for a cloud member that is neither a peer URL nor host:port.
 */
export function dyschordConfigDefaults(
  options: DyschordOptions,
  config: Readonly<Record<string, unknown>>,
): ConfigDefault[] {
  const given: ConfigDefault[] = [
    { path: '/join', value: options.cloud_members.map(peerAddress), option: '/cloud_members' },
    { path: '/placement/options/heartbeatMs', value: Math.round(options.heartbeat * 1000), option: '/heartbeat' },
    { path: '/placement/options/metric', value: options.metric, option: '/metric' },
  ];
  if (options.node_id !== null) given.push({ path: '/node/id', value: String(options.node_id), option: '/node_id' });
  if (options.port !== null) {
    const address = (config['node'] as { address?: unknown } | undefined)?.address;
    const host = typeof address === 'string' && HOST_PORT.test(address) ? HOST_PORT.exec(address)![1]! : DEFAULT_HOST;
    given.push({ path: '/node/address', value: `${host}:${options.port}`, option: '/port' });
  }
  return given;
}

/** `http://localhost:10001` → `localhost:10001`; `host:port` as it is. */
function peerAddress(member: string): string {
  const url = PEER_URL.exec(member);
  if (url) return `${url[1]}:${url[2]}`;
  if (HOST_PORT.test(member)) return member;
  throw new Error(`cloud_members: ${JSON.stringify(member)} is neither a peer URL (http://host:port) nor host:port`);
}
