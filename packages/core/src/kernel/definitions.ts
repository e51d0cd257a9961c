import { Ajv } from 'ajv';
import type { PluginCatalog } from '../config/catalog.js';
import type { KvmeshConfig, PluginChoice } from '../config/validate.js';
import type { Codec } from '../contracts/codec.js';
import type { Logger } from '../contracts/logger.js';
import { KvError } from '../errors.js';
import { STRATEGY_FAMILIES } from '../plugin.js';
import type { AnyPluginManifest, CodecSet, Components, NodeInfo, StrategyFamily } from '../plugin.js';
import { FrameAuth } from '../rpc/frame-auth.js';
import { RpcService } from '../rpc/rpc-service.js';
import { createMessageRegistry } from '../rpc/messages.js';
import { defineCoreMessages } from '../rpc/core-messages.js';
import { SystemClock } from '../runtime/system-clock.js';
import { SystemRandom } from '../runtime/system-random.js';
import { TOKENS } from '../tokens.js';
import { clusterDefinition } from './cluster.js';
import { facadeDefinition } from './facades.js';
import type { ComponentDefinition } from './graph.js';

interface CoreContext {
  readonly info: NodeInfo;
  readonly config: KvmeshConfig;
  readonly logger: Logger;
  readonly provided: Partial<Components>;
  /** See CreateNodeOptions.closedWithoutPeers. */
  readonly closedWithoutPeers: boolean;
}

/** Definitions of what every node has regardless of its plugins (the cluster view included). */
export function coreDefinitions({
  info,
  config,
  logger,
  provided,
  closedWithoutPeers,
}: CoreContext): ComponentDefinition[] {
  const peers: { membership?: Components['membership'] } = {};
  const value = (name: keyof Components, make: () => unknown): ComponentDefinition => ({
    name,
    token: TOKENS[name],
    label: name,
    needs: [],
    build: () => provided[name] ?? make(),
  });
  return [
    value('node', () => info),
    value('config', () => config),
    value('logger', () => logger),
    value('clock', () => new SystemClock()),
    value('random', () => new SystemRandom()),
    value('messages', () => {
      const registry = createMessageRegistry();
      defineCoreMessages(registry);
      return registry;
    }),
    {
      name: 'rpc',
      token: TOKENS.rpc,
      label: 'rpc',
      needs: ['transport', 'codecs', 'messages', 'clock', 'logger'],
      build: (c) =>
        provided.rpc ??
        new RpcService({
          transport: c['transport'] as Components['transport'],
          codecs: c['codecs'] as CodecSet,
          messages: c['messages'] as Components['messages'],
          clock: c['clock'] as Components['clock'],
          logger: c['logger'] as Logger,
          timeoutMs: config.rpc.timeoutMs,
          ...frameAuth(config, info, c['clock'] as Components['clock']),
          ...(closedWithoutPeers ? admission(config, info, peers) : {}),
        }),
    },
    {
      // Only lets `admission` see the membership, which is built after rpc (it needs it).
      name: 'rpcAdmission',
      token: RPC_ADMISSION,
      label: 'rpc admission',
      needs: [],
      optionalNeeds: ['membership'],
      build: (c) => {
        peers.membership = c['membership'] as Components['membership'] | undefined;
        return peers;
      },
    },
    provided.cluster
      ? {
          name: 'cluster',
          token: TOKENS.cluster,
          label: 'cluster (provided)',
          needs: [],
          build: () => provided.cluster,
        }
      : clusterDefinition(),
  ];
}

const RPC_ADMISSION = Symbol.for('@kvmesh/rpc-admission');

/**
 * Without secrets, a node with no peers takes no frames at all: its `join`
 * names no address (not even its own: a seed lists itself), its
 * membership, if any, lists no member but this node, and it has sent no
 * frame to another node (a plugin that discovers its peers itself, by
 * multicast say, has once it spoke to one). Once a member is listed (a
 * static view, one that joined through a seed that lists itself), frames
 * are taken. With secrets, the seal decides instead.
 */
function admission(
  config: KvmeshConfig,
  info: NodeInfo,
  peers: { membership?: Components['membership'] },
): { accepting?: () => boolean } {
  if ((config.cluster?.secrets ?? []).length > 0 || (config.join ?? []).length > 0) return {};
  return { accepting: () => peers.membership?.members().some((m) => m.id !== info.id) ?? false };
}

/** The cluster secrets' seal on every frame, when the config has secrets. */
function frameAuth(config: KvmeshConfig, info: NodeInfo, clock: Components['clock']): { auth?: FrameAuth } {
  const {
    secrets = [],
    replayWindowMs = 30_000,
    maxNonces = 200_000,
    encrypt = false,
  } = config.cluster ?? ({} as Partial<KvmeshConfig['cluster']>);
  if (secrets.length === 0) return {};
  return {
    auth: new FrameAuth({
      secrets: secrets as string[],
      senderId: info.id,
      clock,
      replayWindowMs,
      maxNonces,
      encrypt,
    }),
  };
}

/**
 * One definition per configured strategy family, plus `codecs` (every
 * registered codec, for decoding any peer's frames) and one per entry of
 * `facades`.
 */
export function pluginDefinitions(
  config: KvmeshConfig,
  registry: PluginCatalog,
  provided: Partial<Components>,
): ComponentDefinition[] {
  const definitions: ComponentDefinition[] = [];
  for (const family of STRATEGY_FAMILIES) {
    const choice = config[family] as PluginChoice | undefined;
    if (family === 'codec' || !choice) continue;
    const instance = provided[family];
    definitions.push(
      instance
        ? { name: family, token: TOKENS[family], label: `${family} (provided)`, needs: [], build: () => instance }
        : pluginDefinition(family, registry.get(family, choice.name), choice.options),
    );
  }
  definitions.push(...codecDefinitions(config.codec, registry, provided));
  for (const choice of config.facades ?? []) {
    definitions.push(facadeDefinition(registry.get('facade', choice.name), choice.options));
  }
  return definitions;
}

function pluginDefinition(family: StrategyFamily, manifest: AnyPluginManifest, options: unknown): ComponentDefinition {
  return {
    name: family,
    token: TOKENS[family],
    label: `${family} '${manifest.name}'`,
    needs: manifest.needs,
    build: (components) => manifest.create(options)(components as unknown as Components),
  };
}

const defaults = new Ajv({ useDefaults: true, strict: false });

function codecDefinitions(
  choice: PluginChoice,
  registry: PluginCatalog,
  provided: Partial<Components>,
): ComponentDefinition[] {
  const manifests = registry.entries('codec').map((e) => e.manifest);
  const needs = [...new Set(manifests.flatMap((m) => m.needs))];
  const codecs: ComponentDefinition = {
    name: 'codecs',
    token: TOKENS.codecs,
    label: 'codecs',
    needs,
    build: async (components) => {
      if (provided.codecs) return provided.codecs;
      const all: Codec[] = [];
      let primary: Codec | undefined;
      for (const manifest of manifests) {
        const isPrimary = manifest.name === choice.name;
        const options = isPrimary ? choice.options : defaultOptions(manifest);
        const codec = (await manifest.create(options)(components as unknown as Components)) as Codec;
        if (all.some((c) => c.tag === codec.tag)) {
          throw new KvError('KVMESH_ERR_PLUGIN_INVALID', `codec '${codec.name}' reuses frame tag ${codec.tag}`);
        }
        all.push(codec);
        if (isPrimary) primary = codec;
      }
      if (!primary) throw new KvError('KVMESH_ERR_PLUGIN_UNKNOWN', `codec '${choice.name}' is not registered`);
      const byTag = new Map(all.map((c) => [c.tag, c]));
      const set: CodecSet = { primary, all, byTag: (tag) => byTag.get(tag) };
      return set;
    },
  };
  const codec: ComponentDefinition = {
    name: 'codec',
    token: TOKENS.codec,
    label: `codec '${choice.name}'`,
    needs: ['codecs'],
    build: (c) => provided.codec ?? (c['codecs'] as CodecSet).primary,
  };
  return [codecs, codec];
}

function defaultOptions(manifest: AnyPluginManifest): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  defaults.validate(manifest.optionsSchema, options);
  return Object.freeze(options);
}
