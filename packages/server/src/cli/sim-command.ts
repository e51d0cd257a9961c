import { Command, InvalidArgumentError, Option } from 'commander';
import type {
  FrameLimits,
  MembershipSimOptions,
  MembershipSimResult,
  MembershipSimulation,
  PlacementSimOptions,
  PlacementSimResult,
  PluginRegistry,
} from '@kvmesh/core';
import { CliError, EXIT } from './exit-codes.js';
import { simKvCommand } from './sim-kv-command.js';

// The simulator, the kernel and the plugins load inside the action, so the other commands start fast.

export interface SimMembershipCommandOptions {
  /** Membership plugin. Default: the built-ins' `DEFAULT_MEMBERSHIP`. */
  readonly plugin?: string;
  /** Cluster sizes: one run per size (and per loss rate). */
  readonly nodes: readonly number[];
  readonly loss: readonly number[];
  readonly seed: number;
  readonly periods: number;
  readonly crashes?: number;
  /**
   * Frame profile of the simulated endpoints: `mixed` (the simulator's
   * default) or the name of a transport plugin that declares `frameLimits`.
   * Default: the frame limits the membership plugin's `simulation` hint asks for.
   */
  readonly transport?: string;
  readonly codec?: string;
  /** The plugin's options on every node. */
  readonly options?: Record<string, unknown>;
  readonly json?: boolean;
}

/** One run as `--json` prints it: the simulator's figures, the transport profile and the options used. */
export interface SimMembershipRecord extends Omit<MembershipSimResult, 'detectionBoundMs'> {
  /** The frame profile's name; `custom` for a plugin's limits that match no profile. */
  readonly transport: string;
  readonly options: Readonly<Record<string, unknown>>;
  /** `bounds.detectionMs` the plugin declares, or null when it detects no failure. */
  readonly detectionBoundMs: number | null;
}

/** Profile name of frame limits that equal none of the known profiles. */
const CUSTOM_PROFILE = 'custom';

/** `kvmesh sim`: simulations on a virtual clock and an in-memory network. */
export function simCommand(): Command {
  const sim = new Command('sim').description(
    'Run a plugin on many simulated nodes in one process (virtual clock, in-memory network) and measure it',
  );
  sim
    .command('membership')
    .description(
      'Run a membership plugin at N simulated nodes: converge, then crash members one after another at the given packet loss, and report detection times (first suspicion, first death, every member), false positives and messages per member per period',
    )
    .option(
      '-p, --plugin <name>',
      'membership plugin (default: the built-in default membership, the one built for thousands of members)',
    )
    .addOption(
      new Option('-n, --nodes <n,...>', 'cluster sizes, one run each (comma-separated)')
        .argParser(integerList('--nodes', 2))
        .default([10], '10'),
    )
    .addOption(
      new Option('--loss <rate,...>', 'packet loss rates in [0, 1), one run each (comma-separated)')
        .argParser(lossList)
        .default([0], '0'),
    )
    .option('--seed <n>', 'seed of every random draw; the same seed replays the same run', integer('--seed', 0), 1)
    .option('--periods <n>', 'length of the measured run in protocol periods', integer('--periods', 1), 100)
    .option(
      '--crashes <n>',
      'members crashed one after another during the run (default: min(10, N/4))',
      integer('--crashes', 0),
    )
    .option(
      '--transport <profile>',
      "frame limits of the simulated endpoints: mixed (one-way messages in one datagram, requests up to 64 KiB) or a transport plugin's name to mimic its frames (see kvmesh plugins); default: what the membership plugin is deployed with",
    )
    .option('--codec <name>', 'codec of every node (default: the config default)')
    .option('--options <json>', 'options of the plugin on every node, as a JSON object', jsonObject)
    .option('--json', 'print one JSON object per run (one per line) instead of a table')
    .action(async (options: SimMembershipCommandOptions) => {
      await simMembership(options, (line) => process.stdout.write(`${line}\n`));
    });
  sim
    .command('placement')
    .description(
      'Run a routed placement plugin (one whose nodes find each other themselves) at N simulated nodes: bootstrap, then measure lookup hops, success and messages per lookup; with --churn, fail that fraction of the nodes at once and report the lookups that fail, the repair time and the keys lost',
    )
    .requiredOption('-p, --plugin <name>', 'placement plugin (a routed one: its nodes find each other themselves)')
    .addOption(
      new Option('-n, --nodes <n,...>', 'node counts, one run each (comma-separated)')
        .argParser(integerList('--nodes', 1))
        .default([1024], '1024'),
    )
    .addOption(
      new Option(
        '--churn <fraction>',
        'fraction of the nodes, in [0, 1), that fail at once after the steady-state lookups',
      )
        .argParser(fraction('--churn'))
        .default(0, '0'),
    )
    .option('--seed <n>', 'seed of every random draw; the same seed replays the same run', integer('--seed', 0), 1)
    .option('--lookups <n>', 'lookups per measurement', integer('--lookups', 1), 2000)
    .option('--keys <n>', 'keys followed through the failures (with --churn)', integer('--keys', 1), 1000)
    .option('--codec <name>', 'codec of every node (default: protobuf)')
    .option('--options <json>', 'options of the plugin on every node, as a JSON object', jsonObject)
    .option('--json', 'print one JSON object per run (one per line) instead of a table')
    .action(async (options: SimPlacementCommandOptions) => {
      await simPlacement(options, (line) => process.stdout.write(`${line}\n`));
    });
  sim.addCommand(simKvCommand());
  return sim;
}

export interface SimPlacementCommandOptions {
  readonly plugin: string;
  readonly nodes: readonly number[];
  readonly churn: number;
  readonly seed: number;
  readonly lookups: number;
  readonly keys: number;
  readonly codec?: string;
  readonly options?: Record<string, unknown>;
  readonly json?: boolean;
}

/** One run as `--json` prints it: the simulator's figures and the options used. */
export interface SimPlacementRecord extends PlacementSimResult {
  readonly options: Readonly<Record<string, unknown>>;
}

/**
 * Runs `simulatePlacement` once per node count, with the built-in plugins,
 * and writes each run as it finishes: a table row, or a JSON line with `--json`.
 * @throws CliError for an unknown plugin, or a run that never settled.
 */
export async function simPlacement(
  options: SimPlacementCommandOptions,
  write: (line: string) => void,
): Promise<SimPlacementRecord[]> {
  const [{ PluginRegistry, simulatePlacement }, plugins] = await Promise.all([
    import('@kvmesh/core'),
    import('@kvmesh/plugins'),
  ]);
  const registry: PluginRegistry = new PluginRegistry(plugins.builtinPlugins);
  if (!registry.has('placement', options.plugin)) {
    const available = registry.entries('placement').map((e) => e.manifest.name);
    throw new CliError(`unknown placement plugin '${options.plugin}'; available: ${available.join(', ')}`, EXIT.usage);
  }
  const pluginOptions = options.options ?? {};
  const table = new SimTable(PLACEMENT_COLUMNS, 1);
  const records: SimPlacementRecord[] = [];
  for (const nodes of options.nodes) {
    const simOptions: PlacementSimOptions = {
      registry,
      plugin: options.plugin,
      options: pluginOptions,
      nodes,
      churn: options.churn,
      seed: options.seed,
      lookups: options.lookups,
      keys: options.keys,
      ...(options.codec !== undefined ? { codec: options.codec } : {}),
    };
    let result: PlacementSimResult;
    try {
      result = await simulatePlacement(simOptions);
    } catch (err) {
      if (typeof (err as { code?: unknown }).code === 'string') throw err;
      throw new CliError((err as Error).message, EXIT.runtime);
    }
    const record: SimPlacementRecord = { ...result, options: pluginOptions };
    if (!options.json && records.length === 0) write(table.header());
    records.push(record);
    write(options.json ? JSON.stringify(record) : table.row(record));
  }
  return records;
}

/**
 * Runs `simulateMembership` once per cluster size and loss rate, with the
 * built-in plugins, and writes each run as it finishes: a table row, or a
 * JSON line with `--json`.
 * @throws CliError for an unknown plugin, options that cannot apply, or a cluster that never converged.
 */
export async function simMembership(
  options: SimMembershipCommandOptions,
  write: (line: string) => void,
): Promise<SimMembershipRecord[]> {
  const [{ PluginRegistry, frameProfiles, matchFrameProfile, simulateMembership, SIM_DEFAULT_FRAME_LIMITS }, plugins] =
    await Promise.all([import('@kvmesh/core'), import('@kvmesh/plugins')]);
  const registry: PluginRegistry = new PluginRegistry(plugins.builtinPlugins);
  const plugin = options.plugin ?? plugins.DEFAULT_MEMBERSHIP;
  if (!registry.has('membership', plugin)) {
    const available = registry.entries('membership').map((e) => e.manifest.name);
    throw new CliError(`unknown membership plugin '${plugin}'; available: ${available.join(', ')}`, EXIT.usage);
  }
  const profiles = frameProfiles(registry);
  const chosen = options.transport === undefined ? undefined : profiles.find((p) => p.name === options.transport);
  if (options.transport !== undefined && chosen === undefined) {
    throw new CliError(
      `option '--transport <profile>' argument '${options.transport}' is invalid. Allowed choices are ${profiles.map((p) => p.name).join(', ')}.`,
      EXIT.usage,
    );
  }
  const hint = (registry.get('membership', plugin).simulation as MembershipSimulation | undefined) ?? {};
  if (hint.detectsFailures === false && (options.crashes ?? 0) > 0) {
    throw new CliError(
      `membership '${plugin}' detects no failure (its view changes only by an operator): --crashes must be 0`,
      EXIT.usage,
    );
  }
  const limits: FrameLimits = chosen?.limits ?? hint.frameLimits ?? SIM_DEFAULT_FRAME_LIMITS;
  const transport = chosen?.name ?? matchFrameProfile(profiles, limits)?.name ?? CUSTOM_PROFILE;
  const pluginOptions = options.options ?? {};
  const table = new SimTable(COLUMNS, 2);
  const records: SimMembershipRecord[] = [];
  for (const nodes of options.nodes) {
    for (const loss of options.loss) {
      // Roles, per-node options, essential members and crashes come from the plugin's simulation hint.
      const simOptions: MembershipSimOptions = {
        registry,
        plugin,
        options: pluginOptions,
        nodes,
        loss,
        seed: options.seed,
        periods: options.periods,
        transport: { ...limits },
        ...(options.crashes !== undefined ? { crashes: options.crashes } : {}),
        ...(options.codec !== undefined ? { codec: options.codec } : {}),
      };
      let result: MembershipSimResult;
      try {
        result = await simulateMembership(simOptions);
      } catch (err) {
        // Config problems keep their kvmesh code (exit 1); anything else is a failed run.
        if (typeof (err as { code?: unknown }).code === 'string') throw err;
        throw new CliError((err as Error).message, EXIT.runtime);
      }
      const record: SimMembershipRecord = {
        ...result,
        detectionBoundMs: Number.isFinite(result.detectionBoundMs) ? result.detectionBoundMs : null,
        transport,
        options: pluginOptions,
      };
      if (!options.json && records.length === 0) write(table.header());
      records.push(record);
      write(options.json ? JSON.stringify(record) : table.row(record));
    }
  }
  return records;
}

interface Column<R> {
  readonly title: string;
  readonly value: (r: R) => string | number | null;
}

const COLUMNS: readonly Column<SimMembershipRecord>[] = [
  { title: 'PLUGIN', value: (r) => r.plugin },
  { title: 'TRANSPORT', value: (r) => r.transport },
  { title: 'NODES', value: (r) => r.nodes },
  { title: 'LOSS', value: (r) => r.loss },
  { title: 'PERIODS', value: (r) => r.periods },
  { title: 'PERIOD_MS', value: (r) => r.protocolPeriodMs },
  { title: 'SUSPICION_MS', value: (r) => r.suspicionTimeoutMs },
  { title: 'BOUND_MS', value: (r) => r.detectionBoundMs },
  { title: 'CRASHES', value: (r) => r.crashes },
  { title: 'FIRST_SUSPECT_PERIODS', value: (r) => r.firstSuspicionPeriodsMean },
  { title: 'FIRST_DEAD_PERIODS', value: (r) => r.firstDeathPeriodsMean },
  { title: 'P50_MS', value: (r) => r.detectionMsP50 },
  { title: 'P99_MS', value: (r) => r.detectionMsP99 },
  { title: 'MAX_MS', value: (r) => r.detectionMsMax },
  { title: 'UNDETECTED', value: (r) => r.undetected },
  { title: 'FALSE_POS', value: (r) => r.falsePositives },
  { title: 'MSG/MEMBER/PERIOD', value: (r) => r.messagesPerMemberPerPeriod },
  { title: 'CONVERGE_MS', value: (r) => r.convergeMs },
  { title: 'WALL_MS', value: (r) => r.wallMs },
];

const PLACEMENT_COLUMNS: readonly Column<SimPlacementRecord>[] = [
  { title: 'PLUGIN', value: (r) => r.plugin },
  { title: 'NODES', value: (r) => r.nodes },
  { title: 'LOOKUPS', value: (r) => r.lookups },
  { title: 'SUCCESS', value: (r) => r.successRate },
  { title: 'HOPS_MEAN', value: (r) => r.hopsMean },
  { title: 'HOPS_P99', value: (r) => r.hopsP99 },
  { title: 'MSG/LOOKUP', value: (r) => r.messagesPerLookup },
  { title: 'SETTLE_MS', value: (r) => r.settleMs },
  { title: 'CHURN', value: (r) => r.churn },
  { title: 'FAILED', value: (r) => r.failure?.nodesFailed ?? null },
  { title: 'LOOKUPS_FAILED', value: (r) => r.failure?.lookupsFailedAfterCrash ?? null },
  { title: 'REPAIR_MS', value: (r) => r.failure?.repairMs ?? null },
  { title: 'SUCCESS_AFTER', value: (r) => r.failure?.afterRepair.successRate ?? null },
  { title: 'HOPS_AFTER', value: (r) => r.failure?.afterRepair.hopsMean ?? null },
  { title: 'KEYS', value: (r) => r.failure?.keys ?? null },
  { title: 'LOST', value: (r) => r.failure?.keysLost ?? null },
  { title: 'ALL_REPLICAS_FAILED', value: (r) => r.failure?.keysWithEveryReplicaFailed ?? null },
  { title: 'UNDER_REPLICATED', value: (r) => r.failure?.keysUnderReplicated ?? null },
  { title: 'REPLICATION_MS', value: (r) => r.failure?.replicationRepairMs ?? null },
  { title: 'WALL_MS', value: (r) => r.wallMs },
];

/** Rows are printed as runs finish, so widths are fixed by the titles (and a floor for the numbers). */
class SimTable<R> {
  readonly #columns: readonly Column<R>[];
  readonly #widths: number[];
  /** Leading columns of names, aligned left; the numbers after them align right. */
  readonly #left: number;

  constructor(columns: readonly Column<R>[], left: number) {
    this.#columns = columns;
    this.#left = left;
    this.#widths = columns.map((c) => Math.max(c.title.length, 5));
  }

  header(): string {
    return this.#line(this.#columns.map((c) => c.title));
  }

  row(record: R): string {
    return this.#line(this.#columns.map((c) => String(c.value(record) ?? '-')));
  }

  #line(cells: readonly string[]): string {
    return cells
      .map((cell, i) => (i < this.#left ? cell.padEnd(this.#widths[i]!) : cell.padStart(this.#widths[i]!)))
      .join('  ')
      .trimEnd();
  }
}

function integer(flag: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`${flag} expects an integer >= ${min}`);
    }
    return n;
  };
}

function integerList(flag: string, min: number): (value: string) => number[] {
  const one = integer(flag, min);
  return (value) => list(value).map(one);
}

function fraction(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) {
      throw new InvalidArgumentError(`${flag} expects a fraction from 0 up to (not including) 1, e.g. 0.2`);
    }
    return n;
  };
}

function lossList(value: string): number[] {
  return list(value).map((item) => {
    const n = Number(item);
    if (item.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) {
      throw new InvalidArgumentError('--loss expects packet loss rates from 0 up to (not including) 1, e.g. 0.05');
    }
    return n;
  });
}

function list(value: string): string[] {
  const items = value.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) throw new InvalidArgumentError('expected a comma-separated list without gaps');
  return items;
}

function jsonObject(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('--options expects a JSON object, e.g. \'{"lifeguard":false}\'');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError('--options expects a JSON object, e.g. \'{"lifeguard":false}\'');
  }
  return parsed as Record<string, unknown>;
}
