import { STRATEGY_FAMILIES } from '../plugin.js';
import type { JsonSchema, PluginFamily, StrategyFamily } from '../plugin.js';
import type { PluginCatalog } from './catalog.js';

/** Plugin names used when a config leaves a family out. */
export const DEFAULT_PLUGINS: Partial<Record<PluginFamily, string>> = {
  codec: 'json',
  transport: 'http',
  storage: 'lmdb',
};

/** The config section listing the facades a node serves. */
export const FACADES_SECTION = 'facades';

const HOST_PORT = '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$';

/** The kernel's own sections; plugin sections are added by `familySection`. */
export const CORE_PROPERTIES: Record<string, JsonSchema> = {
  $schema: { type: 'string', description: 'Path or URL of the JSON Schema that editors use to check this file.' },
  node: {
    type: 'object',
    description: 'This node.',
    additionalProperties: false,
    required: ['address'],
    properties: {
      id: {
        type: 'string',
        pattern: '^[A-Za-z0-9._:-]{1,128}$',
        description: 'Unique node id in the cluster. Default: the address.',
      },
      address: {
        type: 'string',
        pattern: HOST_PORT,
        description: 'host:port this node listens on and announces (e.g. 127.0.0.1:4000).',
      },
      role: {
        type: 'string',
        default: 'storage',
        description: 'Role in topologies that have several: storage, frontend, controller.',
      },
      dataDir: {
        type: 'string',
        description: "Directory for this node's files, relative to the working directory. Default: ./data/<id>.",
      },
    },
  },
  join: {
    type: 'array',
    items: { type: 'string', minLength: 1 },
    default: [],
    description: 'Seed addresses (host:port) to join through at start.',
  },
  plugins: {
    type: 'array',
    items: { type: 'string', minLength: 1 },
    uniqueItems: true,
    default: [],
    description: 'Third-party plugin modules: paths relative to this file, or package names.',
  },
  rpc: {
    type: 'object',
    additionalProperties: false,
    default: {},
    description: 'Node-to-node requests.',
    properties: {
      timeoutMs: { type: 'integer', minimum: 1, default: 2000, description: 'Default deadline of a request.' },
    },
  },
  cluster: {
    type: 'object',
    additionalProperties: false,
    default: {},
    description:
      'Who may speak to this node as a member of its cluster (see docs/security.md). Secrets and tokens are never logged.',
    properties: {
      secrets: {
        type: 'array',
        // No type per item: a schema error would print the value; the kernel checks each without showing it.
        items: {},
        description:
          'Cluster secrets (each at least 16 characters; `${VAR}` takes one from the environment). The first seals every frame this node sends; every one opens incoming frames, so a rotation runs with two. Default: the lines of secretFile, else the comma-separated list in KVMESH_CLUSTER_SECRET, else the file KVMESH_CLUSTER_SECRET_FILE names; with none, kvmesh start seals frames with the local secret of its user (~/.config/kvmesh/cluster.secret, docs/security.md) and a kernel built in-process sends them unsigned.',
      },
      secretFile: {
        type: 'string',
        minLength: 1,
        description:
          'File holding the cluster secrets, one a line, the sealing one first (relative to this config file). Used when secrets is not given.',
      },
      adminToken: {
        type: 'string',
        description:
          'Token an admin operation (a view change, by the native API or a facade) must bring as `Authorization: Bearer <token>`. Default: KVMESH_ADMIN_TOKEN, else none (admin operations are open).',
      },
      replayWindowMs: {
        type: 'integer',
        minimum: 1000,
        default: 30000,
        description:
          "A frame whose timestamp is further than this from the receiver's clock is refused (keep clocks in sync within it).",
      },
      maxNonces: {
        type: 'integer',
        minimum: 1024,
        default: 200000,
        description: 'Frame nonces remembered to refuse replays within the window.',
      },
      encrypt: {
        type: 'boolean',
        default: false,
        description:
          'With secrets: seal every frame with AES-256-GCM instead of HMAC-SHA256, so gossip, member lists and values cannot be read on the wire. Nodes open both kinds, so it can be turned on one node at a time.',
      },
    },
  },
  limits: {
    type: 'object',
    additionalProperties: false,
    default: {},
    description: 'Data limits; over a limit is a 4xx, never a truncated write.',
    properties: {
      maxKeyBytes: { type: 'integer', minimum: 1, default: 1024, description: 'Longest key in UTF-8 bytes.' },
      maxValueBytes: { type: 'integer', minimum: 0, default: 1048576, description: 'Largest value in bytes.' },
    },
  },
};

/** One entry of `facades` before its plugin is known (the first validation pass). */
export const FACADE_ENTRY: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', description: 'Name of a registered facade plugin.' },
    options: { type: 'object', default: {}, description: "The facade's options (see its schema)." },
  },
};

/** The `facades` section: client APIs besides the native one, mounted in this order. */
export function facadesSection(entry: JsonSchema = FACADE_ENTRY): JsonSchema {
  return {
    type: 'array',
    default: [],
    description:
      'Client APIs this node serves besides the native API (which every node serves): facade plugins, each listed once with its options, mounted in this order.',
    items: entry,
  };
}

/** Shape of a family section before its plugin is known (the first validation pass). */
export function familySection(family: StrategyFamily): JsonSchema {
  const fallback = DEFAULT_PLUGINS[family];
  return {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    ...(fallback ? { default: { name: fallback } } : {}),
    description: `The ${family} strategy.`,
    properties: {
      name: { type: 'string', description: `Name of a registered ${family} plugin.` },
      options: { type: 'object', default: {}, description: "The plugin's options (see its schema)." },
    },
  };
}

/** The first-pass schema: core sections, family sections with opaque options, plus host sections. */
export function coreConfigSchema(extensions: Readonly<Record<string, JsonSchema>> = {}): JsonSchema {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['node'],
    properties: {
      ...CORE_PROPERTIES,
      ...Object.fromEntries(STRATEGY_FAMILIES.map((f) => [f, familySection(f)])),
      [FACADES_SECTION]: facadesSection(),
      ...extensions,
    },
  };
}

/**
 * The whole schema for editors: every registered plugin's options schema is
 * chosen by the section's `name`, so completion and checking work inside
 * `options` too. Written to `configs/kvmesh.schema.json` by `kvmesh schema`.
 */
export function editorConfigSchema(
  registry: PluginCatalog,
  extensions: Readonly<Record<string, JsonSchema>> = {},
): JsonSchema {
  const base = coreConfigSchema(extensions);
  const properties = { ...(base['properties'] as Record<string, JsonSchema>) };
  for (const family of STRATEGY_FAMILIES) {
    const entries = registry.entries(family);
    const section = familySection(family);
    properties[family] = {
      ...section,
      properties: {
        name: { enum: entries.map((e) => e.manifest.name), description: `Name of a ${family} plugin.` },
        options: { type: 'object' },
      },
      allOf: entries.map((e) => ({
        if: { properties: { name: { const: e.manifest.name } } },
        then: { properties: { options: { ...e.manifest.optionsSchema, description: e.manifest.description } } },
      })),
    };
  }
  const facades = registry.entries('facade');
  properties[FACADES_SECTION] = facadesSection({
    ...FACADE_ENTRY,
    properties: {
      name: { enum: facades.map((e) => e.manifest.name), description: 'Name of a facade plugin.' },
      options: { type: 'object' },
    },
    allOf: facades.map((e) => ({
      if: { properties: { name: { const: e.manifest.name } } },
      then: { properties: { options: { ...e.manifest.optionsSchema, description: e.manifest.description } } },
    })),
  });
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'kvmesh node configuration',
    ...base,
    properties,
  };
}
