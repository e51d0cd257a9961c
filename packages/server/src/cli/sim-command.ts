import { Command, InvalidArgumentError, Option } from 'commander';
import type { MembershipSimOptions, MembershipSimResult, PluginRegistry, SimNodeSpec } from '@kvmesh/core';
import { CliError, EXIT } from './exit-codes.js';

// The simulator, the kernel and the plugins load inside the action, so the other commands start fast.

/**
 * Frame limits of the simulated endpoints. `udp` and `http`: as the real
 * transport of that name has them (every frame one datagram; 16 MiB frames).
 * `mixed`, the simulator's default: one-way messages in one datagram,
 * requests up to 64 KiB.
 */
export type SimTransportProfile = 'mixed' | 'udp' | 'http';
export const SIM_TRANSPORT_PROFILES: readonly SimTransportProfile[] = ['mixed', 'udp', 'http'];
/** Largest request of the `mixed` profile (simulateMembership's default). */
const MIXED_FRAME_BYTES = 65_536;

export interface SimMembershipCommandOptions {
  readonly plugin: string;
  /** Cluster sizes: one run per size (and per loss rate). */
  readonly nodes: readonly number[];
  readonly loss: readonly number[];
  readonly seed: number;
  readonly periods: number;
  readonly crashes?: number;
  readonly transport?: SimTransportProfile;
  readonly codec?: string;
  /** The plugin's options on every node. */
  readonly options?: Record<string, unknown>;
  readonly json?: boolean;
}

/** One run as `--json` prints it: the simulator's figures, the transport profile and the options used. */
export interface SimMembershipRecord extends Omit<MembershipSimResult, 'detectionBoundMs'> {
  readonly transport: SimTransportProfile;
  readonly options: Readonly<Record<string, unknown>>;
  /** `bounds.detectionMs` the plugin declares, or null when it detects no failure (static). */
  readonly detectionBoundMs: number | null;
}

/**
 * How a built-in strategy runs in the simulator: the transport its real
 * deployments use, the roles or view it needs, the nodes never crashed.
 * Any other plugin runs on every node alike, on the simulator's default frames.
 */
interface SimSetup {
  readonly transport: SimTransportProfile;
  readonly configure?: (spec: SimNodeSpec) => Record<string, unknown>;
  readonly essential?: (spec: SimNodeSpec) => boolean;
  /** The strategy detects no failure: a crash would never be seen, so none is simulated. */
  readonly noDetection?: boolean;
}

function setupFor(plugin: string, nodes: number, options: Record<string, unknown>): SimSetup {
  switch (plugin) {
    case 'controller':
      // Velour Fog: n1 keeps the list, n2 is a frontend, the rest store data; the controller never crashes.
      return {
        transport: 'http',
        configure: (spec) => ({
          node: { role: spec.index === 0 ? 'controller' : spec.index === 1 ? 'frontend' : 'storage' },
        }),
        essential: (spec) => spec.index === 0,
      };
    case 'heartbeat':
      // Whole counter tables do not fit one datagram past a couple of dozen members (see its failAfterMs option).
      return { transport: 'http' };
    case 'static':
      // Every node is configured with the whole view; simulated nodes are n1..nN, all on the same port.
      return {
        transport: 'http',
        configure: (spec) => {
          const port = spec.hostPort.slice(spec.id.length);
          const view = Array.from({ length: nodes }, (_, i) => `n${i + 1}@n${i + 1}${port}`);
          return { membership: { name: 'static', options: { ...options, view } } };
        },
        noDetection: true,
      };
    default:
      // SWIM's probes, acks and gossip are one-way datagrams either way; one-datagram join pages (`udp`)
      // only make 1,000 nodes joining at once copy the list in ~200 requests each, twice as slow to simulate.
      return { transport: 'mixed' };
  }
}

/** `kvmesh sim`: simulations on a virtual clock and an in-memory network. */
export function simCommand(): Command {
  const sim = new Command('sim').description(
    'Run a plugin on many simulated nodes in one process (virtual clock, in-memory network) and measure it',
  );
  sim
    .command('membership')
    .description(
      'Run a membership plugin at N simulated nodes: converge, then crash members one after another at the given packet loss, and report detection times, false positives and messages per member per period',
    )
    .option('-p, --plugin <name>', 'membership plugin', 'swim')
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
    .addOption(
      new Option(
        '--transport <profile>',
        'frame limits of the simulated endpoints: one datagram for every frame (udp), for one-way messages only (mixed), or large frames (http); default: mixed for swim, http for the others',
      ).choices(SIM_TRANSPORT_PROFILES),
    )
    .option('--codec <name>', 'codec of every node (default: the config default)')
    .option('--options <json>', 'options of the plugin on every node, as a JSON object', jsonObject)
    .option('--json', 'print one JSON object per run (one per line) instead of a table')
    .action(async (options: SimMembershipCommandOptions) => {
      await simMembership(options, (line) => process.stdout.write(`${line}\n`));
    });
  return sim;
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
  const [{ PluginRegistry, simulateMembership }, plugins] = await Promise.all([
    import('@kvmesh/core'),
    import('@kvmesh/plugins'),
  ]);
  const { builtinPlugins, HTTP_TRANSPORT_DEFAULTS, UDP_TRANSPORT_DEFAULTS, UDP_HEADER_BYTES } = plugins;
  const registry: PluginRegistry = new PluginRegistry(builtinPlugins);
  if (!registry.has('membership', options.plugin)) {
    const available = registry.entries('membership').map((e) => e.manifest.name);
    throw new CliError(`unknown membership plugin '${options.plugin}'; available: ${available.join(', ')}`, EXIT.usage);
  }
  const pluginOptions = options.options ?? {};
  const udpBytes = UDP_TRANSPORT_DEFAULTS.maxDatagramBytes - UDP_HEADER_BYTES;
  const frameLimits = {
    mixed: { maxMessageBytes: udpBytes, maxFrameBytes: MIXED_FRAME_BYTES },
    udp: { maxMessageBytes: udpBytes, maxFrameBytes: udpBytes },
    http: {
      maxMessageBytes: HTTP_TRANSPORT_DEFAULTS.maxFrameBytes,
      maxFrameBytes: HTTP_TRANSPORT_DEFAULTS.maxFrameBytes,
    },
  };
  const table = new SimTable();
  const records: SimMembershipRecord[] = [];
  for (const nodes of options.nodes) {
    const setup = setupFor(options.plugin, nodes, pluginOptions);
    if (setup.noDetection && (options.crashes ?? 0) > 0) {
      throw new CliError(
        `membership '${options.plugin}' detects no failure (its view changes only by an operator): --crashes must be 0`,
        EXIT.usage,
      );
    }
    const transport = options.transport ?? setup.transport;
    for (const loss of options.loss) {
      const simOptions: MembershipSimOptions = {
        registry,
        plugin: options.plugin,
        options: pluginOptions,
        nodes,
        loss,
        seed: options.seed,
        periods: options.periods,
        transport: frameLimits[transport],
        ...(setup.noDetection ? { crashes: 0 } : options.crashes !== undefined ? { crashes: options.crashes } : {}),
        ...(options.codec !== undefined ? { codec: options.codec } : {}),
        ...(setup.configure ? { configure: setup.configure } : {}),
        ...(setup.essential ? { essential: setup.essential } : {}),
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

interface Column {
  readonly title: string;
  readonly value: (r: SimMembershipRecord) => string | number | null;
}

const COLUMNS: readonly Column[] = [
  { title: 'PLUGIN', value: (r) => r.plugin },
  { title: 'TRANSPORT', value: (r) => r.transport },
  { title: 'NODES', value: (r) => r.nodes },
  { title: 'LOSS', value: (r) => r.loss },
  { title: 'PERIODS', value: (r) => r.periods },
  { title: 'PERIOD_MS', value: (r) => r.protocolPeriodMs },
  { title: 'SUSPICION_MS', value: (r) => r.suspicionTimeoutMs },
  { title: 'BOUND_MS', value: (r) => r.detectionBoundMs },
  { title: 'CRASHES', value: (r) => r.crashes },
  { title: 'P50_MS', value: (r) => r.detectionMsP50 },
  { title: 'P99_MS', value: (r) => r.detectionMsP99 },
  { title: 'MAX_MS', value: (r) => r.detectionMsMax },
  { title: 'UNDETECTED', value: (r) => r.undetected },
  { title: 'FALSE_POS', value: (r) => r.falsePositives },
  { title: 'MSG/MEMBER/PERIOD', value: (r) => r.messagesPerMemberPerPeriod },
  { title: 'CONVERGE_MS', value: (r) => r.convergeMs },
  { title: 'WALL_MS', value: (r) => r.wallMs },
];

/** Rows are printed as runs finish, so widths are fixed by the titles (and a floor for the numbers). */
class SimTable {
  readonly #widths = COLUMNS.map((c) => Math.max(c.title.length, 5));

  header(): string {
    return this.#line(COLUMNS.map((c) => c.title));
  }

  row(record: SimMembershipRecord): string {
    return this.#line(COLUMNS.map((c) => String(c.value(record) ?? '-')));
  }

  #line(cells: readonly string[]): string {
    return cells
      .map((cell, i) => (i < 2 ? cell.padEnd(this.#widths[i]!) : cell.padStart(this.#widths[i]!)))
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
