import { join } from 'node:path';
import { joinHostPort } from '../settings.js';
import type { UpRoleEntry, UpSettings } from '../settings.js';
import { CliError, EXIT } from './exit-codes.js';
import { DEFAULT_HOST_BASE, UP_ENV, roleVariable } from './up-env.js';

/** Node count of a local cluster when neither `--nodes` nor the config's `up` section says. */
export const DEFAULT_UP_NODES = 3;
const MAX_PORT = 65_535;

/** Port of every node when the config's node.address gives none we can use (it is interpolated from the plan). */
export const DEFAULT_UP_PORT = 7700;

export interface UpPlanInput {
  /** Absolute path of the config file (children may run from any directory). */
  readonly configFile: string;
  readonly settings: UpSettings;
  /** `--nodes`, when given. */
  readonly nodes?: number;
  /** Nodes per role from `--role-count ROLE=N` and the flags `up.roles[].flag` declares, when given. */
  readonly roleCounts?: ReadonlyMap<string, number>;
  /** First node's IPv4 address. */
  readonly hostBase: string;
  readonly port: number;
  /** Absolute folder holding one data directory per node. */
  readonly dataDir: string;
  /** node.role of the config: every node's role when the `up` section declares none. */
  readonly defaultRole: string;
  /** `--log-level`, passed to every node. */
  readonly logLevel?: string;
}

/** One node of a local cluster, everything needed to start it by hand. */
export interface UpNodePlan {
  /** 1-based. */
  readonly index: number;
  readonly id: string;
  readonly role: string;
  readonly host: string;
  /** `host:port`. */
  readonly address: string;
  /** True for the nodes the others join through; they start first. */
  readonly seed: boolean;
  readonly dataDir: string;
  /** Where the node's stdout and stderr are appended. */
  readonly logFile: string;
  /** The `KVMESH_*` variables of this node (UP_ENV), without the parent pid. */
  readonly env: Readonly<Record<string, string>>;
  /** Arguments after the `kvmesh` launcher: `start --config ... --id ...`. */
  readonly args: readonly string[];
}

export interface UpPlan {
  readonly configFile: string;
  readonly nodes: readonly UpNodePlan[];
  /** `host:port` of the seed nodes. */
  readonly seeds: readonly string[];
  readonly port: number;
}

/** File each node's output is appended to, inside its data directory. */
export const NODE_LOG_FILE = 'node.log';

/**
 * Lays out a local cluster: ids n1..nN on consecutive addresses from
 * `hostBase`, all on one port (layout `hosts`), or all on `hostBase` on
 * consecutive ports from `port` (layout `ports`), roles in the order the
 * `up` section lists them, the first `seeds` nodes as everybody's join seeds.
 * @throws CliError (usage) when the role counts and the node count disagree or addresses run out.
 */
export function planCluster(input: UpPlanInput): UpPlan {
  let roles: string[];
  try {
    roles = assignRoles(input.settings, input.nodes, input.defaultRole, input.roleCounts);
  } catch (err) {
    throw err instanceof CliError ? usage(`${input.configFile}: ${err.message}`) : err;
  }
  const byPorts = input.settings.layout === 'ports';
  if (byPorts && input.port + roles.length - 1 > MAX_PORT) {
    throw usage(`${input.configFile}: ${roles.length} nodes from port ${input.port} run past port ${MAX_PORT}`);
  }
  const hosts = byPorts ? roles.map(() => input.hostBase) : consecutiveHosts(input.hostBase, roles.length);
  const seedCount = Math.min(input.settings.seeds, roles.length);
  const addresses = hosts.map((host, i) => joinHostPort(host, byPorts ? input.port + i : input.port));
  const ids = roles.map((_, i) => `n${i + 1}`);
  const seeds = addresses.slice(0, seedCount);
  const shared: Record<string, string> = {
    [UP_ENV.count]: String(roles.length),
    [UP_ENV.nodes]: addresses.join(','),
    [UP_ENV.members]: addresses.map((a, i) => `${ids[i]}@${a}`).join(','),
    [UP_ENV.seeds]: seeds.join(','),
  };
  for (const role of new Set(roles)) {
    shared[roleVariable(role)] = addresses.filter((_, i) => roles[i] === role).join(',');
  }
  const nodes = roles.map((role, i): UpNodePlan => {
    const id = ids[i]!;
    const dataDir = join(input.dataDir, id);
    const args = [
      'start',
      '--config',
      input.configFile,
      '--id',
      id,
      '--role',
      role,
      '--address',
      addresses[i]!,
      '--join',
      seeds.join(','),
      '--data-dir',
      dataDir,
      ...(input.logLevel !== undefined ? ['--log-level', input.logLevel] : []),
    ];
    return Object.freeze({
      index: i + 1,
      id,
      role,
      host: hosts[i]!,
      address: addresses[i]!,
      seed: i < seedCount,
      dataDir,
      logFile: join(dataDir, NODE_LOG_FILE),
      env: Object.freeze({
        ...shared,
        [UP_ENV.index]: String(i + 1),
        [UP_ENV.id]: id,
        [UP_ENV.role]: role,
        [UP_ENV.address]: addresses[i]!,
      }),
      args: Object.freeze(args),
    });
  });
  return Object.freeze({
    configFile: input.configFile,
    nodes: Object.freeze(nodes),
    seeds: Object.freeze(seeds),
    port: input.port,
  });
}

/**
 * The role of each node in order. Entries with `nodes` get that many; the one
 * entry without takes what is left (at least one node). `counts` (from
 * `--role-count` and the entries' own flags) replaces the count of the roles
 * it names, the uncounted one's included. Without `--nodes` the total is
 * `up.nodes`, else the sum of the entries when all are counted, else
 * DEFAULT_UP_NODES; when `counts` is given, the roles it leaves alone keep the
 * nodes they would have had without it.
 */
export function assignRoles(
  settings: UpSettings,
  requested: number | undefined,
  defaultRole: string,
  counts: ReadonlyMap<string, number> = new Map(),
): string[] {
  const declared: readonly UpRoleEntry[] = settings.roles.length > 0 ? settings.roles : [{ role: defaultRole }];
  for (const role of counts.keys()) {
    const found = declared.filter((e) => e.role === role).length;
    if (found === 0) {
      throw usage(
        `--role-count ${role}=...: /up/roles declares no role '${role}' (it declares ${declared.map((e) => `'${e.role}'`).join(', ')})`,
      );
    }
    if (found > 1)
      throw usage(`--role-count ${role}=...: /up/roles lists role '${role}' ${found} times; give it one entry`);
  }
  const open = declared.flatMap((e, i) => (e.nodes === undefined ? [i] : []));
  if (open.length > 1) {
    throw usage(
      `/up/roles/${open[1]}: only one role may leave out "nodes" (it takes the nodes the others leave); /up/roles/${open[0]} already does`,
    );
  }
  const sum = (list: readonly UpRoleEntry[]): number => list.reduce((n, e) => n + (e.nodes ?? 0), 0);
  const declaredTotal =
    settings.nodes ?? (open.length === 0 ? sum(declared) : Math.max(DEFAULT_UP_NODES, sum(declared) + 1));
  const entries = declared.map((e) => (counts.has(e.role) ? { ...e, nodes: counts.get(e.role)! } : e));
  const rest = entries.flatMap((e, i) => (e.nodes === undefined ? [i] : []));
  const fixed = sum(entries);
  let total: number;
  if (requested !== undefined) total = requested;
  else if (counts.size === 0) total = declaredTotal;
  else total = fixed + (rest.length === 1 ? Math.max(1, declaredTotal - sum(declared)) : 0);
  const flags = counts.size > 0 ? ' (with the role counts given)' : '';
  if (rest.length === 0 && total !== fixed) {
    throw usage(
      `/up/roles: the roles add up to ${fixed} nodes${flags}, not ${total}; give one role no "nodes" to fill the rest, or leave out --nodes`,
    );
  }
  if (rest.length === 1 && total <= fixed) {
    const role = entries[rest[0]!]!.role;
    throw usage(
      `/up/roles: ${total} nodes leave none for role '${role}' (the counted roles take ${fixed}${counts.size > 0 ? ', with the role counts given' : ''})`,
    );
  }
  return entries.flatMap((e) => Array<string>(e.nodes ?? total - fixed).fill(e.role));
}

/** `count` IPv4 addresses from `base` upward (127.0.0.255 is followed by 127.0.1.0). */
export function consecutiveHosts(base: string, count: number): string[] {
  const parts = base.split('.');
  const octets = parts.map(Number);
  if (parts.length !== 4 || octets.some((o, i) => !/^[0-9]{1,3}$/.test(parts[i]!) || o > 255)) {
    throw usage(`--host-base must be an IPv4 address such as ${DEFAULT_HOST_BASE} (found '${base}')`);
  }
  const first = octets.reduce((n, o) => n * 256 + o, 0);
  if (first + count - 1 > 0xffff_ffff) throw usage(`${count} addresses from ${base} run past 255.255.255.255`);
  return Array.from({ length: count }, (_, i) => {
    const n = first + i;
    return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
  });
}

function usage(message: string): CliError {
  return new CliError(message, EXIT.usage);
}
