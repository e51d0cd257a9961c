#!/usr/bin/env node
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { KvClient } from '@kvmesh/client';
import { Command, InvalidArgumentError, Option } from 'commander';
import { LOG_LEVELS } from '../log-levels.js';
import {
  ApiClient,
  DEFAULT_NODE_URL,
  clientFailure,
  keyClient,
  keyNotFound,
  readStdin,
  responseError,
} from './client.js';
import { CliError, EXIT } from './exit-codes.js';
import { launchParent, launcherPid, watchParent } from './parent-watch.js';
import { simCommand } from './sim-command.js';
import { upCommand } from './up-command.js';

/** Where `kvmesh schema` writes when not told otherwise (relative to the working directory). */
export const DEFAULT_SCHEMA_FILE = 'configs/kvmesh.schema.json';

// Heavy modules (kernel, plugins, Koa) load inside the commands that need them,
// so the client commands start fast.

// Failures that come from what the user wrote (exit 1) rather than from running (exit 2).
const USER_ERROR_CODES = new Set([
  'KVMESH_ERR_CONFIG_INVALID',
  'KVMESH_ERR_CONFIG_READ',
  'KVMESH_ERR_CONFIG_ENV',
  'KVMESH_ERR_PLUGIN_UNKNOWN',
  'KVMESH_ERR_PLUGIN_LOAD',
  'KVMESH_ERR_PLUGIN_INVALID',
  'KVMESH_ERR_PLUGIN_DUPLICATE',
  'KVMESH_ERR_KERNEL_DEPENDENCY',
]);

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/;

/** The `kvmesh` program. Actions report failures by throwing CliError or KvError. */
export function buildProgram(): Command {
  const program = new Command('kvmesh')
    .description('kvmesh: a distributed key-value store whose topology is chosen by a JSON config file')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      '\nExit status: 0 ok, 1 usage or validation error (or a 4xx answer), 2 runtime failure (or a 5xx answer).',
    );

  program
    .command('start')
    .description('Start one node and serve until SIGTERM or SIGINT (which drain requests and close storage cleanly)')
    .requiredOption('-c, --config <file>', 'config file')
    .option('--address <host:port>', 'node address (overrides node.address)', hostPort)
    .option('--data-dir <dir>', 'data directory (overrides node.dataDir)')
    .option('--id <id>', 'node id (overrides node.id)')
    .option('--port <n>', 'port of node.address (keeps its host, from the file or --address)', portNumber)
    .option('--join <host:port,...>', 'seed addresses to join through (overrides join)', hostPortList)
    .option('--role <role>', 'node role (overrides node.role)')
    .addOption(new Option('--log-level <level>', 'log level (overrides log.level)').choices([...LOG_LEVELS]))
    .action(async (options: StartOptions) => {
      process.exitCode = await startCommand(options);
    });

  program
    .command('validate')
    .description('Check a config file without starting anything: every problem is listed with its JSON path')
    .argument('<file>', 'config file')
    .action(async (file: string) => {
      await validateCommand(file);
    });

  const nodeOption = (): Option =>
    new Option('-n, --node <url>', 'base URL of a node').env('KVMESH_NODE').default(DEFAULT_NODE_URL);

  program
    .command('get')
    .description('Print the value of a key to stdout (bytes as stored)')
    .argument('<key>', 'the key')
    .addOption(nodeOption())
    .option('-v, --verbose', 'print status, content type and version to stderr')
    .action(async (key: string, options: { node: string; verbose?: boolean }) => {
      const got = await withKeyClient(options.node, (client) => client.get(key));
      if (got === undefined) throw keyNotFound(key);
      if (options.verbose) process.stderr.write(`200 ${got.contentType} etag "${got.version}"\n`);
      await writeOut(got.value);
    });

  program
    .command('put')
    .description("Write a value; VALUE '-' reads it from stdin. Prints the key and its new version as JSON")
    .argument('<key>', 'the key')
    .argument('<value>', "the value, or '-' for stdin")
    .addOption(nodeOption())
    .option('-t, --content-type <type>', 'Content-Type stored with the value', 'application/octet-stream')
    .option('--if-match <version>', 'write only if the current version is this one')
    .option('--create-only', 'write only if the key does not exist (If-None-Match: *)')
    .action(async (key: string, value: string, options: PutOptions) => {
      const body = value === '-' ? await readStdin() : Buffer.from(value, 'utf8');
      const put = await withKeyClient(options.node, (client) =>
        client.put(key, body, {
          contentType: options.contentType,
          ...(options.ifMatch === undefined ? {} : { ifMatch: options.ifMatch.replace(/^"|"$/g, '') }),
          ...(options.createOnly ? { ifNoneMatch: '*' as const } : {}),
        }),
      );
      await writeOut(`${JSON.stringify({ key, version: put.version })}\n`);
    });

  program
    .command('del')
    .alias('delete')
    .description('Delete a key (exit 1 when it does not exist)')
    .argument('<key>', 'the key')
    .addOption(nodeOption())
    .option('--if-match <version>', 'delete only if the current version is this one')
    .action(async (key: string, options: { node: string; ifMatch?: string }) => {
      const deleted = await withKeyClient(options.node, (client) =>
        client.delete(key, options.ifMatch === undefined ? {} : { ifMatch: options.ifMatch.replace(/^"|"$/g, '') }),
      );
      if (!deleted.existed) throw keyNotFound(key);
      await writeOut(`deleted ${key}\n`);
    });

  program
    .command('status')
    .description("Show a node's readiness, the members it knows and its placement")
    .addOption(nodeOption())
    .option('--json', 'print GET /v1/cluster as JSON')
    .action(async (options: { node: string; json?: boolean }) => {
      const client = new ApiClient(options.node);
      const res = await client.request('GET', `${client.base}/v1/cluster`);
      if (res.status !== 200) throw responseError(res);
      if (options.json) {
        await writeOut(`${res.body.toString('utf8')}\n`);
        return;
      }
      const ready = await client.request('GET', `${client.base}/v1/ready`);
      await writeOut(formatStatus(JSON.parse(res.body.toString('utf8')) as ClusterJson, ready.status === 200));
    });

  program
    .command('schema')
    .description('Write the JSON Schema of config files (for editors) with every registered plugin')
    .option('-o, --out <file>', "output file, or '-' for stdout", DEFAULT_SCHEMA_FILE)
    .action(async (options: { out: string }) => {
      const { serverEditorSchema } = await import('../editor-schema.js');
      const schema = serverEditorSchema();
      const text = `${JSON.stringify(schema, null, 2)}\n`;
      if (options.out === '-') {
        await writeOut(text);
        return;
      }
      const file = resolve(options.out);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, text);
      process.stderr.write(`wrote ${file}\n`);
    });

  program
    .command('plugins')
    .description('List the registered plugins by family')
    .option('-c, --config <file>', "also load the config's third-party plugins")
    .action(async (options: { config?: string }) => {
      const [{ PLUGIN_FAMILIES, PluginRegistry, loadConfig }, { builtinPlugins }, { SERVER_CONFIG_EXTENSIONS }] =
        await Promise.all([import('@kvmesh/core'), import('@kvmesh/plugins'), import('../settings.js')]);
      let registry = new PluginRegistry(builtinPlugins);
      if (options.config !== undefined) {
        registry = (await loadConfig(options.config, { registry, extensions: SERVER_CONFIG_EXTENSIONS })).registry;
      }
      const lines: string[] = [];
      for (const family of PLUGIN_FAMILIES) {
        lines.push(`${family}:`);
        const entries = registry.entries(family);
        if (entries.length === 0) lines.push('  (none)');
        const width = Math.max(0, ...entries.map((e) => e.manifest.name.length));
        for (const { manifest, origin } of entries) {
          const from = origin === 'built-in' ? '' : ` [${origin}]`;
          lines.push(`  ${manifest.name.padEnd(width)}  ${manifest.description}${from}`);
        }
      }
      await writeOut(`${lines.join('\n')}\n`);
    });

  program.addCommand(simCommand());
  program.addCommand(upCommand());

  return program;
}

interface StartOptions {
  config: string;
  address?: string;
  dataDir?: string;
  id?: string;
  port?: number;
  join?: string[];
  role?: string;
  logLevel?: string;
}

interface PutOptions {
  node: string;
  contentType: string;
  ifMatch?: string;
  createOnly?: boolean;
}

/** Runs a node until a signal stops it; resolves to the exit status. */
async function startCommand(options: StartOptions): Promise<number> {
  // The parent as the launcher read it: one killed while the node starts must still be the one watched.
  const launcher = launcherPid(process.env, launchParent());
  const overrides: Record<string, unknown> = {
    '/node/address': options.port === undefined ? options.address : withPort(options.address, options.port),
    '/node/dataDir': options.dataDir,
    '/node/id': options.id,
    '/node/role': options.role,
    '/join': options.join,
    '/log/level': options.logLevel,
  };
  const { startNodeServer } = await import('../node-server.js');
  const server = await startNodeServer({ configFile: options.config, overrides, lockDataDir: true });
  const logger = server.logger;
  return new Promise((resolveExit) => {
    const crash = (err: unknown): void => {
      logger.error({ err }, 'unexpected failure; exiting');
      resolveExit(EXIT.runtime);
    };
    process.on('uncaughtException', crash);
    process.on('unhandledRejection', crash);
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal: exiting without waiting');
        resolveExit(EXIT.runtime);
        return;
      }
      logger.info({ signal }, 'stopping');
      server.shutdown().then(
        () => {
          logger.info({}, 'stopped cleanly');
          resolveExit(EXIT.ok);
        },
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          resolveExit(EXIT.runtime);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // `kvmesh up`, `npm start` or `npx`: the node stops when what started it is gone, even when it was SIGKILLed.
    watchParent(launcher, () => {
      logger.warn({ parentPid: launcher }, 'the process that started this node is gone');
      onSignal('SIGTERM');
    });
  });
}

async function validateCommand(file: string): Promise<void> {
  const { checkConfigFile } = await import('../check-config.js');
  const loaded = await checkConfigFile(file);
  await writeOut(`OK ${loaded.file}\n`);
}

interface ClusterJson {
  self: { id: string; address: string };
  members: { id: string; address: string; state: string }[];
  placement: Record<string, unknown>;
}

/** `kvmesh status` output: one line per fact, members in a table. */
export function formatStatus(cluster: ClusterJson, ready: boolean): string {
  const lines = [`node       ${cluster.self.id} at ${cluster.self.address} (${ready ? 'ready' : 'not ready'})`];
  lines.push(`members    ${cluster.members.length}`);
  const idWidth = Math.max(2, ...cluster.members.map((m) => m.id.length));
  const addressWidth = Math.max(7, ...cluster.members.map((m) => m.address.length));
  lines.push(`  ${'ID'.padEnd(idWidth)}  ${'ADDRESS'.padEnd(addressWidth)}  STATE`);
  for (const m of cluster.members)
    lines.push(`  ${m.id.padEnd(idWidth)}  ${m.address.padEnd(addressWidth)}  ${m.state}`);
  lines.push(...placementLines(cluster.placement));
  return `${lines.join('\n')}\n`;
}

/**
 * The placement in two lines: strategy and epoch, then its scalar settings.
 * Lists and nested objects (members, rings, groups, the drawing) are left
 * to `--json`.
 */
function placementLines(placement: Record<string, unknown>): string[] {
  const { strategy, epoch, ...rest } = placement;
  const lines = [`placement  ${String(strategy ?? '?')}, epoch ${String(epoch ?? '?')}`];
  const settings = Object.entries(rest)
    .filter(([, v]) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
    .map(([k, v]) => `${k} ${String(v)}`);
  if (settings.length > 0) lines.push(`  ${settings.join(', ')}`);
  if (Object.values(rest).some((v) => typeof v === 'object' && v !== null)) {
    lines.push('  (kvmesh status --json prints the whole description)');
  }
  return lines;
}

function hostPort(value: string): string {
  if (!HOST_PORT.test(value)) throw new InvalidArgumentError('expected host:port, e.g. 127.0.0.1:7700');
  return value;
}

function portNumber(value: string): number {
  const port = Number(value);
  if (!/^[0-9]{1,5}$/.test(value) || port > 65535) throw new InvalidArgumentError('expected a port 0..65535');
  return port;
}

/**
 * `--port`: the address given (`--address`) with its port replaced, or, without
 * one, a function of the config's own `node.address` (after plugins filled it).
 */
function withPort(address: string | undefined, port: number): string | ((current: unknown) => unknown) {
  const replace = (a: string): string => `${a.slice(0, a.lastIndexOf(':'))}:${port}`;
  if (address !== undefined) return replace(address);
  return (current) => (typeof current === 'string' && HOST_PORT.test(current) ? replace(current) : current);
}

function hostPortList(value: string): string[] {
  const seeds = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const seed of seeds) hostPort(seed);
  return seeds;
}

/** Runs one key command's call through the client of `nodeUrl`, then closes it; failures as a shell user reads them. */
async function withKeyClient<T>(nodeUrl: string, call: (client: KvClient) => Promise<T>): Promise<T> {
  const { client, base } = await keyClient(nodeUrl);
  try {
    return await call(client);
  } catch (err) {
    throw clientFailure(base, err);
  } finally {
    await client.close();
  }
}

function writeOut(data: string | Buffer): Promise<void> {
  return new Promise((resolveWrite, reject) => {
    process.stdout.write(data, (err) => (err ? reject(err) : resolveWrite()));
  });
}

function report(err: unknown): number {
  if (err instanceof CliError) {
    process.stderr.write(`kvmesh: ${err.message}\n`);
    return err.exitCode;
  }
  if (hasCode(err)) {
    process.stderr.write(`kvmesh: ${err.code}: ${err.message}\n`);
    return USER_ERROR_CODES.has(err.code) ? EXIT.usage : EXIT.runtime;
  }
  process.stderr.write(`kvmesh: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return EXIT.runtime;
}

/** A kvmesh error (compared by its code, as core may not be loaded here). */
function hasCode(err: unknown): err is { code: string; message: string } {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('KVMESH_ERR_') && err instanceof Error;
}

/** Runs the CLI on `argv` (process.argv form) and resolves to the exit status. */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  process.exitCode = EXIT.ok;
  try {
    await buildProgram().parseAsync([...argv]);
    return Number(process.exitCode ?? EXIT.ok);
  } catch (err) {
    return report(err);
  }
}

/** Runs `main` and exits with its status (a started node may leave handles the process must not wait for). */
export async function run(argv: readonly string[] = process.argv): Promise<never> {
  const code = await main(argv);
  process.exit(code);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await run();
}
