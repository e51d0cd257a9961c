import { kvConfigSchema } from '@kvmesh/core';
import type { JsonSchema, KvmeshConfig } from '@kvmesh/core';
import { LOG_LEVELS } from './log-levels.js';
import type { LogLevel } from './log-levels.js';

export { LOG_LEVELS, type LogLevel };

/**
 * The config sections the server understands besides the kernel's own, with
 * their schemas; passed to `loadConfig` and `editorConfigSchema` as
 * `extensions`.
 */
export const SERVER_CONFIG_EXTENSIONS: Readonly<Record<string, JsonSchema>> = Object.freeze({
  api: {
    type: 'object',
    additionalProperties: false,
    default: {},
    description: 'The HTTP API server (native API, admin and metrics endpoints).',
    properties: {
      host: {
        type: 'string',
        minLength: 1,
        description:
          "Interface the API listens on. Default: the host of node.address. Use '0.0.0.0' for every interface.",
      },
      port: {
        type: 'integer',
        minimum: 0,
        maximum: 65535,
        description:
          'TCP port of the API. Default: the port of node.address, shared with the internal rpc endpoint when the transport can be served by the API server.',
      },
      maxJsonBodyBytes: {
        type: 'integer',
        minimum: 1,
        default: 65_536,
        description:
          'Largest JSON request body (admin and facade endpoints). Values are limited by limits.maxValueBytes.',
      },
      keepAliveTimeoutMs: {
        type: 'integer',
        minimum: 0,
        default: 5_000,
        description: 'How long an idle client connection stays open.',
      },
      requestTimeoutMs: {
        type: 'integer',
        minimum: 0,
        default: 60_000,
        description:
          'Longest time to receive a whole request (headers and body) before the connection is closed; 0 disables.',
      },
      drainTimeoutMs: {
        type: 'integer',
        minimum: 0,
        default: 10_000,
        description: 'On SIGTERM/SIGINT: longest wait for in-flight requests to finish before connections are closed.',
      },
    },
  },
  log: {
    type: 'object',
    additionalProperties: false,
    default: {},
    description: 'Structured logs (JSON lines on stdout; readable when stdout is a terminal).',
    properties: {
      level: { enum: [...LOG_LEVELS], default: 'info', description: 'Lowest level written.' },
    },
  },
  kv: kvConfigSchema,
  up: {
    type: 'object',
    additionalProperties: false,
    description:
      'How `kvmesh up` lays out a local cluster from this file (ignored by `kvmesh start`). It is read before the nodes are planned: the KVMESH_* variables that `up` gives its nodes cannot be used inside it.',
    properties: {
      nodes: {
        type: 'integer',
        minimum: 1,
        description:
          'Nodes to start when --nodes is not given. Default: the sum of roles[].nodes when every role is counted, else 3.',
      },
      roles: {
        type: 'array',
        default: [],
        description:
          'Roles of the nodes in order: n1 gets the first entry, and so on. Empty: every node gets node.role.',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['role'],
          properties: {
            role: { type: 'string', minLength: 1, description: 'The node.role these nodes run with.' },
            nodes: {
              type: 'integer',
              minimum: 1,
              description:
                "How many nodes get this role. Leave it out on one entry: that role takes the nodes the others leave. `--role-count ROLE=N` (or this entry's `flag`) overrides it.",
            },
            flag: {
              type: 'string',
              pattern: '^[a-z][a-z0-9]*(-[a-z0-9]+)*$',
              description:
                'A flag of `kvmesh up` that sets how many nodes get this role: "frontends" makes `--frontends N` the same as `--role-count ROLE=N`. Must not be one of up\'s own options.',
            },
          },
        },
      },
      seeds: {
        type: 'integer',
        minimum: 1,
        default: 1,
        description:
          'How many of the first nodes every node joins through (--join); they start, and get ready, before the others.',
      },
      layout: {
        enum: ['hosts', 'ports'],
        default: 'hosts',
        description:
          "Where the nodes listen. hosts: consecutive loopback addresses from --host-base (127.0.0.2, 127.0.0.3, ...), all on one port. ports: one host, node.address's, on consecutive ports from node.address's (localhost:8000, 8001, 8002, ...).",
      },
      clientRole: {
        type: 'string',
        minLength: 1,
        description:
          "Role of the node the printed curl lines talk to. Default: node.role when a node has it, else n1's role.",
      },
    },
  },
});

export interface ApiSettings {
  readonly host: string;
  readonly port: number;
  readonly maxJsonBodyBytes: number;
  readonly keepAliveTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly drainTimeoutMs: number;
}

/** The `api` section with node.address filled in where host or port is left out. */
export function apiSettings(config: KvmeshConfig): ApiSettings {
  const section = (config['api'] ?? {}) as Partial<ApiSettings>;
  const { host, port } = splitHostPort(config.node.address);
  return {
    host: section.host ?? host,
    port: section.port ?? port,
    maxJsonBodyBytes: section.maxJsonBodyBytes ?? 65_536,
    keepAliveTimeoutMs: section.keepAliveTimeoutMs ?? 5_000,
    requestTimeoutMs: section.requestTimeoutMs ?? 60_000,
    drainTimeoutMs: section.drainTimeoutMs ?? 10_000,
  };
}

/** One entry of `up.roles`. */
export interface UpRoleEntry {
  readonly role: string;
  /** Absent on at most one entry: it takes the nodes the others leave. */
  readonly nodes?: number;
  /** The `kvmesh up` flag (without `--`) that sets this role's count. */
  readonly flag?: string;
}

/** The `up` section: how `kvmesh up` lays out a local cluster. */
export interface UpSettings {
  readonly nodes?: number;
  readonly roles: readonly UpRoleEntry[];
  readonly seeds: number;
  /** hosts: consecutive addresses on one port; ports: one host, consecutive ports. */
  readonly layout: 'hosts' | 'ports';
  readonly clientRole?: string;
}

/** The `up` section of a validated config (or of a document validated with it), defaults filled in. */
export function upSettings(config: Readonly<Record<string, unknown>>): UpSettings {
  const section = (config['up'] ?? {}) as Partial<UpSettings>;
  return {
    ...(section.nodes !== undefined ? { nodes: section.nodes } : {}),
    roles: section.roles ?? [],
    seeds: section.seeds ?? 1,
    layout: section.layout ?? 'hosts',
    ...(section.clientRole !== undefined ? { clientRole: section.clientRole } : {}),
  };
}

export function logLevel(config: KvmeshConfig): LogLevel {
  return ((config['log'] as { level?: LogLevel } | undefined)?.level ?? 'info') as LogLevel;
}

/** `host:port` or `[v6]:port` (already checked by the config schema) into its parts, brackets removed. */
export function splitHostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon);
  return {
    host: host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host,
    port: Number(address.slice(colon + 1)),
  };
}

/** `host:port`, bracketing IPv6 hosts. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
