import type { Clock } from './contracts/clock.js';
import type { Cluster } from './contracts/cluster.js';
import type { Codec } from './contracts/codec.js';
import type { Facade } from './contracts/facade.js';
import type { KvService } from './contracts/kv.js';
import type { Logger } from './contracts/logger.js';
import type { Membership } from './contracts/membership.js';
import type { Placement } from './contracts/placement.js';
import type { Random } from './contracts/random.js';
import type { MessageRegistry, Rpc } from './contracts/rpc.js';
import type { Storage } from './contracts/storage.js';
import type { Transport } from './contracts/transport.js';
import semver from 'semver';
import { KvError } from './errors.js';
import type { ComponentName } from './tokens.js';

export const PLUGIN_FAMILIES = ['codec', 'transport', 'membership', 'placement', 'storage', 'facade'] as const;
export type PluginFamily = (typeof PLUGIN_FAMILIES)[number];

/**
 * Families of which a node runs one strategy, chosen in the config section
 * named after the family (`"placement": { "name": ... }`). Facades are the
 * other kind: any number per node, listed in the config's `facades` array.
 */
export const STRATEGY_FAMILIES = ['codec', 'transport', 'membership', 'placement', 'storage'] as const;
export type StrategyFamily = (typeof STRATEGY_FAMILIES)[number];

/** Facts about the node being built, from its config and command line. */
export interface NodeInfo {
  /** Unique node id. */
  readonly id: string;
  /** `host:port` the node listens on (the transport turns it into its URI). */
  readonly address: string;
  /** Role in topologies that have several (`storage`, `frontend`, `controller`). */
  readonly role: string;
  /** Absolute directory for this node's persistent files. */
  readonly dataDir: string;
  /** Absolute directory of the config file (relative paths resolve against it). */
  readonly configDir: string;
}

/** The codecs a node can decode: its own plus every other registered one. */
export interface CodecSet {
  /** The configured codec: used for everything this node sends first. */
  readonly primary: Codec;
  /** The codec whose frame tag is `tag`, if this node knows it. */
  byTag(tag: number): Codec | undefined;
  readonly all: readonly Codec[];
}

/** Everything the kernel can hand a plugin. A plugin asks for the names it needs. */
export interface Components {
  node: NodeInfo;
  clock: Clock;
  random: Random;
  logger: Logger;
  messages: MessageRegistry;
  codec: Codec;
  codecs: CodecSet;
  transport: Transport;
  rpc: Rpc;
  membership: Membership;
  placement: Placement;
  storage: Storage;
  kv: KvService;
  /** The cluster view and the operator's view change (what `GET /v1/cluster` answers). */
  cluster: Cluster;
  config: Readonly<Record<string, unknown>>;
}

/** What each family's factory builds. */
export interface FamilyTypes {
  codec: Codec;
  transport: Transport;
  membership: Membership;
  placement: Placement;
  storage: Storage;
  facade: Facade;
}

/** A JSON Schema (draft 2020-12 subset that ajv accepts). */
export type JsonSchema = Record<string, unknown>;

/**
 * Largest frames a transport carries, as its instances report them in
 * `Transport.maxMessageBytes` and `Transport.maxFrameBytes`. A simulated
 * endpoint with the same limits refuses what the real transport would.
 */
export interface FrameLimits {
  /** Largest one-way frame (`send`) in bytes: a datagram-safe size on datagram transports. */
  readonly maxMessageBytes: number;
  /** Largest request or response frame in bytes. */
  readonly maxFrameBytes: number;
}

/** One member of a simulated cluster, as a `MembershipSimulation` sees it. */
export interface SimulatedMember {
  /** Position in the cluster, 0-based. */
  readonly index: number;
  /** Node id (`n1`, `n2`, ...). */
  readonly id: string;
  /** The member's `node.address` (`host:port`). */
  readonly hostPort: string;
  /** Its transport URI. */
  readonly address: string;
}

/**
 * How a membership strategy runs as a simulated cluster of N members the way
 * it is deployed, so that a simulator (`simulateMembership`, `kvmesh sim
 * membership`) needs no knowledge of any strategy. Every function is pure:
 * called once per member while the cluster is built (and again on a
 * restart), with the same member list each time; it must not keep state or
 * throw. Every field is optional; without one, every member runs alike.
 */
export interface MembershipSimulation {
  /** The `node.role` of a member, for strategies whose members play different parts. Default: the config default. */
  readonly role?: (member: SimulatedMember, members: readonly SimulatedMember[]) => string;
  /**
   * The plugin options of a member, given the options the user chose for
   * every member (not yet validated): e.g. the user's options plus the whole
   * member list as a configured view. Default: the user's options.
   */
  readonly options?: (
    member: SimulatedMember,
    members: readonly SimulatedMember[],
    options: Readonly<Record<string, unknown>>,
  ) => Record<string, unknown>;
  /** Members a simulation must never crash (one that keeps the list for the others). Default: none. */
  readonly essential?: (member: SimulatedMember, members: readonly SimulatedMember[]) => boolean;
  /**
   * False when the strategy detects no failure (its view changes only by an
   * operator): a crash would never be seen, so a simulation crashes no member.
   * Default true.
   */
  readonly detectsFailures?: boolean;
  /**
   * Frame limits of the endpoints the strategy is deployed on, which the
   * simulator gives every member. Default: the simulator's (one-way messages
   * in one datagram, requests up to 64 KiB; `SIM_DEFAULT_FRAME_LIMITS`).
   */
  readonly frameLimits?: FrameLimits;
}

/**
 * How a placement strategy that routes (its nodes find each other through
 * its own messages, without a membership) runs on N simulated nodes, so a
 * simulator (`simulatePlacement`, `kvmesh sim placement`) needs no knowledge
 * of any strategy. Functions are pure: called once per member, with the
 * same arguments for the same run. Every field is optional.
 */
export interface PlacementSimulation {
  /**
   * The plugin options of a member, given the options the user chose for
   * every member (not yet validated): e.g. the user's options plus the member
   * to join through. Members start in waves, in index order; `contact` is a
   * member of an earlier wave (started, and given time to settle), drawn from
   * the run's seed, or undefined for the first member. Default: the user's options.
   */
  readonly options?: (
    member: SimulatedMember,
    members: readonly SimulatedMember[],
    options: Readonly<Record<string, unknown>>,
    contact: SimulatedMember | undefined,
  ) => Record<string, unknown>;
  /**
   * The strategy's maintenance period in ms at `options` (validated, defaults
   * filled): the simulator samples lookups once per period while the nodes
   * settle or repair. Default 1000.
   */
  readonly periodMs?: (options: Readonly<Record<string, unknown>>) => number;
}

/** One problem `PluginManifest.checkConfig` found: where in the config, and what is wrong. */
export interface ConfigCheckProblem {
  /** JSON Pointer of the setting to change: `/limits/maxKeyBytes`. */
  readonly path: string;
  readonly message: string;
}

/**
 * A value a plugin's options give another part of the node's config
 * (`PluginManifest.configDefaults`): a facade that accepts the option names
 * of the system it imitates fills the sections kvmesh reads them from.
 */
export interface ConfigDefault {
  /** JSON Pointer of the value in the config document: `/node/id`, `/placement/options/heartbeatMs`. */
  readonly path: string;
  /** The value, as the config would hold it. */
  readonly value: unknown;
  /** JSON Pointer, inside the plugin's own options, of the option it comes from: `/heartbeat`. */
  readonly option: string;
}

/**
 * A plugin's manifest. The kernel validates `options` against `optionsSchema`
 * (filling defaults), resolves the components named in `needs` from the
 * node's container, and calls `create(options)(components)`; the result is
 * registered under the family's token. No decorators, no tsyringe.
 */
export interface PluginManifest<
  F extends PluginFamily = PluginFamily,
  O = any,
  N extends ComponentName = ComponentName,
> {
  readonly family: F;
  /** kebab-case name used in configs: `"membership": { "name": "<name>" }`. */
  readonly name: string;
  /** One sentence for `kvmesh plugins` and error messages. */
  readonly description: string;
  /** The plugin's own version, for logs. */
  readonly version?: string;
  /**
   * The `@kvmesh/core` versions the plugin works with, as a semver range
   * (`^0.1.0`, `>=0.1.0 <0.3.0`). The registry refuses a plugin whose range
   * excludes the running core (KVMESH_ERR_PLUGIN_CORE_VERSION, naming both).
   * Pre-releases of the core are matched too. Omitted: any core.
   */
  readonly coreVersions?: string;
  /**
   * JSON Schema of the options object: `type: "object"`,
   * `additionalProperties: false`, and a `description` and `default` for
   * every property.
   */
  readonly optionsSchema: JsonSchema;
  /** Components `create` receives. The kernel builds them first and starts them first. */
  readonly needs: readonly N[];
  /** Two-step factory: options first (validated, defaults filled, frozen), then components. */
  readonly create: (options: O) => (components: Pick<Components, N>) => FamilyTypes[F] | Promise<FamilyTypes[F]>;
  /**
   * Values the plugin's options give other sections of the config, for a
   * plugin that takes another system's option names (a facade accepting the
   * keys of its seed's config file). Called once per validation, before the
   * config is checked, with the plugin's options (valid against
   * `optionsSchema`, defaults filled) and the document as the file gives it
   * (after `${VAR}` interpolation, before command-line overrides). Pure: must
   * not keep state; a throw is reported as a problem of the plugin's section.
   *
   * How the validator applies the answer: only an option written in the file
   * gives its value (an option left to its default gives nothing). A value
   * fills its `path` where the file leaves it unset; where the file sets it
   * to a different value, or another plugin's option gave it a different one,
   * the config is invalid and both JSON paths are named. Command-line
   * overrides (`kvmesh start --id ...`) win over both. A problem the schema
   * finds at a filled path names the option it came from.
   */
  readonly configDefaults?: (options: O, config: Readonly<Record<string, unknown>>) => readonly ConfigDefault[];
  /**
   * Checks of the rest of the node's config that this plugin depends on, run
   * by `kvmesh validate` and at every start once the whole config is valid
   * and defaulted: a storage that cannot hold keys of `limits.maxKeyBytes`,
   * a transport that cannot carry values of `limits.maxValueBytes`. Each
   * problem names the JSON Pointer to change (`/limits/maxKeyBytes`) and says
   * what would fit. Must not throw. Omitted: nothing to check.
   */
  readonly checkConfig?: (options: O, config: Readonly<Record<string, unknown>>) => readonly ConfigCheckProblem[];
  /**
   * Transports only: the frame limits an instance has with the default
   * options, for tools that need them without building one (the simulator
   * mimics a transport by these). Omitted: unknown.
   */
  readonly frameLimits?: F extends 'transport' ? FrameLimits : never;
  /**
   * Membership: how to run the strategy as a simulated cluster (omitted: every
   * member alike, default frames). Placement: how to run it on simulated
   * nodes without a membership (omitted: every member alike).
   */
  readonly simulation?: F extends 'membership'
    ? MembershipSimulation
    : F extends 'placement'
      ? PlacementSimulation
      : never;
}

export type AnyPluginManifest = PluginManifest<PluginFamily, any, ComponentName>;

const BRAND = Symbol.for('@kvmesh/plugin-manifest');
const NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/** Problems with a manifest's shape, as sentences; empty when it is valid. */
export function manifestProblems(value: unknown): string[] {
  if (typeof value !== 'object' || value === null) return ['a plugin manifest must be an object'];
  const m = value as Partial<AnyPluginManifest>;
  const problems: string[] = [];
  if (!PLUGIN_FAMILIES.includes(m.family as PluginFamily)) {
    problems.push(`family must be one of ${PLUGIN_FAMILIES.join(', ')} (found ${JSON.stringify(m.family)})`);
  }
  if (typeof m.name !== 'string' || !NAME.test(m.name)) {
    problems.push(`name must be kebab-case (found ${JSON.stringify(m.name)})`);
  }
  if (typeof m.description !== 'string' || m.description === '')
    problems.push('description must be a non-empty string');
  const schema = m.optionsSchema as JsonSchema | undefined;
  if (typeof schema !== 'object' || schema === null || schema['type'] !== 'object') {
    problems.push('optionsSchema must be a JSON Schema with type "object"');
  } else if (schema['additionalProperties'] !== false) {
    problems.push('optionsSchema must set additionalProperties: false so typos in configs are caught');
  }
  if (m.coreVersions !== undefined && !isRange(m.coreVersions)) {
    problems.push(`coreVersions must be a semver range such as "^0.1.0" (found ${JSON.stringify(m.coreVersions)})`);
  }
  if (!Array.isArray(m.needs)) problems.push('needs must be an array of component names');
  if (typeof m.create !== 'function') problems.push('create must be a function (options) => (components) => instance');
  if (m.checkConfig !== undefined && typeof m.checkConfig !== 'function') {
    problems.push('checkConfig must be a function (options, config) => [{ path, message }]');
  }
  if (m.configDefaults !== undefined && typeof m.configDefaults !== 'function') {
    problems.push('configDefaults must be a function (options, config) => [{ path, value, option }]');
  }
  if (m.frameLimits !== undefined) {
    if (m.family !== 'transport') problems.push('frameLimits is for transport plugins only');
    else problems.push(...frameLimitsProblems(m.frameLimits, 'frameLimits'));
  }
  if (m.simulation !== undefined) {
    if (m.family === 'membership') problems.push(...simulationProblems(m.simulation));
    else if (m.family === 'placement') problems.push(...placementSimulationProblems(m.simulation));
    else problems.push('simulation is for membership and placement plugins only');
  }
  return problems;
}

function isRange(value: unknown): boolean {
  return typeof value === 'string' && value.trim() !== '' && semver.validRange(value) !== null;
}

function frameLimitsProblems(value: unknown, label: string): string[] {
  if (typeof value !== 'object' || value === null) return [`${label} must be an object`];
  const limits = value as Record<string, unknown>;
  return (['maxMessageBytes', 'maxFrameBytes'] as const)
    .filter((key) => !Number.isSafeInteger(limits[key]) || (limits[key] as number) < 1)
    .map((key) => `${label}.${key} must be a positive integer (found ${JSON.stringify(limits[key])})`);
}

function simulationProblems(value: unknown): string[] {
  if (typeof value !== 'object' || value === null) return ['simulation must be an object'];
  const hint = value as Record<string, unknown>;
  const problems = (['role', 'options', 'essential'] as const)
    .filter((key) => hint[key] !== undefined && typeof hint[key] !== 'function')
    .map((key) => `simulation.${key} must be a function`);
  if (hint['detectsFailures'] !== undefined && typeof hint['detectsFailures'] !== 'boolean') {
    problems.push('simulation.detectsFailures must be a boolean');
  }
  if (hint['frameLimits'] !== undefined)
    problems.push(...frameLimitsProblems(hint['frameLimits'], 'simulation.frameLimits'));
  return problems;
}

function placementSimulationProblems(value: unknown): string[] {
  if (typeof value !== 'object' || value === null) return ['simulation must be an object'];
  const hint = value as Record<string, unknown>;
  return (['options', 'periodMs'] as const)
    .filter((key) => hint[key] !== undefined && typeof hint[key] !== 'function')
    .map((key) => `simulation.${key} must be a function`);
}

/**
 * Checks and freezes a manifest. Built-in and third-party plugins both use it;
 * the loader also accepts plain objects of the same shape.
 * @throws KvError KVMESH_ERR_PLUGIN_INVALID listing every problem.
 */
export function definePlugin<F extends PluginFamily, O, N extends ComponentName>(
  manifest: PluginManifest<F, O, N>,
): PluginManifest<F, O, N> {
  const problems = manifestProblems(manifest);
  if (problems.length > 0) {
    const label = typeof manifest?.name === 'string' ? `plugin '${manifest.name}'` : 'plugin';
    throw new KvError('KVMESH_ERR_PLUGIN_INVALID', `${label}: ${problems.join('; ')}`);
  }
  return Object.freeze({ ...manifest, needs: Object.freeze([...manifest.needs]), [BRAND]: true });
}

export function isPluginManifest(value: unknown): value is AnyPluginManifest {
  return manifestProblems(value).length === 0;
}
