import { KvError } from '@kvmesh/core';
import type { FacadeOpenApi } from '@kvmesh/core';

/**
 * The OpenAPI 3.1 description of the native API, served at
 * `GET /v1/openapi.json` (with the node's facades added, see
 * `nodeOpenApiDocument`). A test keeps its paths and methods equal to the
 * router's routes.
 */

const errorResponse = (description: string): Record<string, unknown> => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

const keyParameter = {
  name: 'key',
  in: 'path',
  required: true,
  description:
    'The key: UTF-8 text, percent-encoded. Everything after /v1/kv/ up to ? is the key, slashes included (a/b and a%2Fb name the same key). At most limits.maxKeyBytes bytes (default 1024).',
  schema: { type: 'string', minLength: 1 },
};

const etagHeader = {
  description: 'The version of the record, quoted: "<12 hex wall ms>-<4 hex logical>-<writer node id>".',
  schema: { type: 'string' },
};

const common = {
  '400': errorResponse('Malformed key or condition header.'),
  '405': errorResponse('Method not allowed; see the Allow header.'),
  '414': errorResponse('The key is longer than limits.maxKeyBytes.'),
  '503': errorResponse('The node is not serving yet (or any more), or too few replicas answered.'),
  '504': errorResponse('A replica did not answer in time.'),
};

/** One member as `GET /v1/cluster` and `GET /v1/cluster/routes` list it. */
const MEMBER_SCHEMA = {
  type: 'object',
  required: ['id', 'address', 'state'],
  properties: {
    id: { type: 'string' },
    address: { type: 'string', description: 'Transport URI, e.g. http://127.0.0.1:7700' },
    state: { enum: ['alive', 'suspect', 'dead', 'left'] },
    incarnation: {
      type: 'integer',
      description: "The member's own counter, bumped to refute a suspicion or on a restart",
    },
    role: { type: 'string', description: 'Its node.role, when it has one' },
  },
} as const;

/** A static file of the dashboard (`GET /ui`). */
function uiFile(operationId: string, summary: string, type: string): Record<string, unknown> {
  return {
    get: {
      operationId,
      summary,
      responses: { '200': { description: summary, content: { [type]: { schema: { type: 'string' } } } } },
    },
  };
}

export const OPENAPI_DOCUMENT = Object.freeze({
  openapi: '3.1.0',
  info: {
    title: 'kvmesh native API',
    version: '1.0.0',
    description:
      'Keys are UTF-8 strings, values are bytes. Every record has a version (its ETag). Errors are JSON: {"error":{"code","message"}}; docs/errors.md lists the codes.',
  },
  paths: {
    '/v1/kv/{key}': {
      parameters: [keyParameter],
      get: {
        operationId: 'getValue',
        summary: 'Read a value',
        parameters: [
          {
            name: 'If-None-Match',
            in: 'header',
            required: false,
            description: 'Entity tags (or *); 304 when one matches the current version.',
            schema: { type: 'string' },
          },
        ],
        responses: {
          '200': {
            description: 'The value bytes, with the Content-Type given when it was written.',
            headers: { ETag: etagHeader },
            content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
          },
          '304': {
            description: 'Not modified: If-None-Match named the current version.',
            headers: { ETag: etagHeader },
          },
          '404': errorResponse('The key does not exist.'),
          ...common,
        },
      },
      head: {
        operationId: 'headValue',
        summary: 'Read the headers of a value (Content-Type, Content-Length, ETag) without its bytes',
        responses: {
          '200': { description: 'The key exists.', headers: { ETag: etagHeader } },
          '404': { description: 'The key does not exist (no body).' },
        },
      },
      put: {
        operationId: 'putValue',
        summary: 'Write a value',
        parameters: [
          {
            name: 'If-Match',
            in: 'header',
            required: false,
            description: 'Write only if the current version is this entity tag (as returned in ETag).',
            schema: { type: 'string' },
          },
          {
            name: 'If-None-Match',
            in: 'header',
            required: false,
            description: '* : write only if the key does not exist (create only).',
            schema: { const: '*' },
          },
        ],
        requestBody: {
          required: false,
          description:
            'The value bytes, at most limits.maxValueBytes (default 1 MiB). Content-Type is stored (default application/octet-stream).',
          content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
        },
        responses: {
          '200': {
            description: 'Replaced an existing value.',
            headers: { ETag: etagHeader },
            content: { 'application/json': { schema: { $ref: '#/components/schemas/WriteResult' } } },
          },
          '201': {
            description: 'Created the key.',
            headers: { ETag: etagHeader },
            content: { 'application/json': { schema: { $ref: '#/components/schemas/WriteResult' } } },
          },
          '412': errorResponse('If-Match or If-None-Match did not hold; nothing was written.'),
          '413': errorResponse('The value is larger than limits.maxValueBytes; nothing was written.'),
          ...common,
        },
      },
      delete: {
        operationId: 'deleteValue',
        summary: 'Delete a key',
        parameters: [
          {
            name: 'If-Match',
            in: 'header',
            required: false,
            description: 'Delete only if the current version is this entity tag.',
            schema: { type: 'string' },
          },
        ],
        responses: {
          '204': { description: 'Deleted.' },
          '404': errorResponse('The key does not exist.'),
          '412': errorResponse('If-Match did not hold; nothing was deleted.'),
          ...common,
        },
      },
    },
    '/v1/health': {
      get: {
        operationId: 'health',
        summary: 'Liveness: the process answers HTTP',
        responses: { '200': jsonResponse('Alive.', { $ref: '#/components/schemas/Status' }) },
      },
    },
    '/v1/ready': {
      get: {
        operationId: 'ready',
        summary: 'Readiness: the node has started (and joined its cluster) and is not shutting down',
        responses: {
          '200': jsonResponse('Ready to serve.', { $ref: '#/components/schemas/Status' }),
          '503': errorResponse('Starting, joining or draining.'),
        },
      },
    },
    '/v1/cluster': {
      get: {
        operationId: 'cluster',
        summary: 'This node, the members it knows and the placement summary',
        responses: {
          '200': jsonResponse('The cluster as this node sees it.', { $ref: '#/components/schemas/Cluster' }),
        },
      },
    },
    '/v1/cluster/routes': {
      get: {
        operationId: 'routes',
        summary:
          "Where every key lives: the placement's routing table (ranges of a named key hash to replica lists), for clients that send each request to a replica",
        responses: {
          '200': jsonResponse('The routing table at the placement epoch it names, and the members it names.', {
            type: 'object',
            required: ['epoch', 'hash', 'order', 'replicaSets', 'ends', 'sets', 'members'],
            properties: {
              epoch: { type: 'integer' },
              hash: {
                enum: ['xxhash32', 'sha1', 'md5'],
                description: "The key hash: a 32-bit number of the key's UTF-8 bytes.",
              },
              order: {
                enum: ['listed', 'fmix32'],
                description:
                  "listed: a key's replicas are its list in order; fmix32: the list rotated left by fmix32(hash) mod its length.",
              },
              replicaSets: { type: 'array', items: { type: 'array', items: { type: 'string' } } },
              ends: {
                type: 'array',
                items: { type: 'integer' },
                description:
                  'Inclusive upper ends of the ranges, ascending; a key belongs to the first range whose end is at or above its hash (past the last, the first).',
              },
              sets: { type: 'array', items: { type: 'integer' }, description: 'Index in replicaSets of each range.' },
              members: { type: 'array', items: MEMBER_SCHEMA },
            },
          }),
          '404': errorResponse(
            'The placement publishes no routing table (its nodes locate keys by lookups): send requests to any node.',
          ),
        },
      },
    },
    '/v1/cluster/view': {
      put: {
        operationId: 'setView',
        summary: "Replace the member list by an operator's view (memberships whose view is administered)",
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['view'],
                additionalProperties: false,
                properties: {
                  view: {
                    type: 'array',
                    minItems: 1,
                    items: { type: 'string', description: 'host:port of a node, or id@host:port' },
                    examples: [['10.10.0.2:8085', '10.10.0.3:8085']],
                  },
                  parameters: {
                    type: 'object',
                    additionalProperties: { type: 'integer' },
                    description:
                      'Parameters for the placement that travel with the view, e.g. {"replicationFactor":1} for a placement that takes a replication factor from the view; omitted ones keep their current values. A placement that takes none refuses them (400 KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID).',
                  },
                },
              },
            },
          },
        },
        responses: {
          '200': jsonResponse('The view is installed here and was sent to every member of the old and the new view.', {
            $ref: '#/components/schemas/Cluster',
          }),
          '400': errorResponse(
            'The body is not {"view":[...]}, or the view is empty or has an entry that is not host:port.',
          ),
          '409': errorResponse("This node's membership finds its members itself and takes no view."),
          '413': errorResponse('The body is larger than api.maxJsonBodyBytes.'),
          '503': errorResponse('The node is not running.'),
        },
      },
    },
    '/metrics': {
      get: {
        operationId: 'metrics',
        summary: 'Prometheus metrics of this node',
        responses: {
          '200': {
            description: 'Prometheus text exposition format 0.0.4.',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
        },
      },
    },
    '/v1/openapi.json': {
      get: {
        operationId: 'openapi',
        summary: 'This document',
        responses: { '200': jsonResponse('OpenAPI 3.1 document.', { type: 'object' }) },
      },
    },
    '/ui': uiFile('dashboard', 'The dashboard: members, placement, data movement and traffic, live', 'text/html'),
    '/ui/dashboard.js': uiFile('dashboardScript', "The dashboard's script", 'text/javascript'),
    '/ui/dashboard.css': uiFile('dashboardStyle', "The dashboard's style sheet", 'text/css'),
  },
  components: {
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: {
              code: { type: 'string', pattern: '^KVMESH_ERR_[A-Z0-9_]+$', examples: ['KVMESH_ERR_HTTP_KEY_NOT_FOUND'] },
              message: { type: 'string' },
            },
          },
        },
      },
      WriteResult: {
        type: 'object',
        required: ['key', 'version'],
        properties: { key: { type: 'string' }, version: { type: 'string' } },
      },
      Status: { type: 'object', required: ['status'], properties: { status: { type: 'string' } } },
      Cluster: {
        type: 'object',
        required: ['self', 'members', 'placement'],
        properties: {
          self: {
            type: 'object',
            required: ['id', 'address'],
            properties: {
              id: { type: 'string' },
              address: { type: 'string', description: 'host:port from node.address' },
            },
          },
          members: { type: 'array', items: MEMBER_SCHEMA },
          placement: {
            type: 'object',
            description: "The placement strategy's own summary (ring, shards, partitions...).",
          },
        },
      },
    },
  },
});

function jsonResponse(description: string, schema: Record<string, unknown>): Record<string, unknown> {
  return { description, content: { 'application/json': { schema } } };
}

/** One facade of a node as its OpenAPI document describes it. */
export interface FacadeDocument {
  /** The plugin's name: the tag of its operations. */
  readonly name: string;
  /** The plugin's description, unless the facade's `openapi()` gives one. */
  readonly description: string;
  /** Where the facade answers: its own port's URL, or the node's. */
  readonly url: string;
  /** True when it has a port of its own: its paths carry `servers`. */
  readonly ownPort: boolean;
  readonly openapi?: FacadeOpenApi;
  /** Its curl lines for `url` (`Facade.examples`). */
  readonly examples: readonly string[];
}

/** What `x-kvmesh-facades` lists for each facade: where it answers and how to try it (`kvmesh up` prints these). */
export interface FacadeSummary {
  readonly name: string;
  readonly url: string;
  readonly port: 'own' | 'node';
  readonly examples: readonly string[];
}

/** The document's extension listing the node's facades. */
export const FACADES_EXTENSION = 'x-kvmesh-facades';

const OPERATIONS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/**
 * The OpenAPI document of a node: the native API plus every facade's paths
 * (each operation tagged with the facade's name; `servers` on the paths of a
 * facade with a port of its own) and schemas, and `x-kvmesh-facades`, so API
 * consumers see every route the node answers. Without facades: exactly
 * `OPENAPI_DOCUMENT`.
 * @throws KvError KVMESH_ERR_PLUGIN_INVALID when a facade documents a path
 *   or schema that the native API or another facade of the node documents.
 */
export function nodeOpenApiDocument(facades: readonly FacadeDocument[]): Record<string, unknown> {
  if (facades.length === 0) return OPENAPI_DOCUMENT;
  const paths: Record<string, unknown> = { ...OPENAPI_DOCUMENT.paths };
  const schemas: Record<string, unknown> = { ...OPENAPI_DOCUMENT.components.schemas };
  const pathOwner = new Map<string, string>(Object.keys(paths).map((p) => [p, 'the native API']));
  const schemaOwner = new Map<string, string>(Object.keys(schemas).map((s) => [s, 'the native API']));
  const tags: Record<string, unknown>[] = [];
  for (const facade of facades) {
    const fragment = facade.openapi;
    tags.push({ name: facade.name, description: fragment?.description ?? facade.description });
    for (const [path, item] of Object.entries(fragment?.paths ?? {})) {
      const owner = pathOwner.get(path);
      if (owner !== undefined) throw clash(facade.name, `path ${path}`, owner);
      pathOwner.set(path, `facade '${facade.name}'`);
      paths[path] = tagged(item, facade);
    }
    for (const [name, schema] of Object.entries(fragment?.schemas ?? {})) {
      const owner = schemaOwner.get(name);
      if (owner !== undefined) throw clash(facade.name, `schema ${name}`, owner);
      schemaOwner.set(name, `facade '${facade.name}'`);
      schemas[name] = schema;
    }
  }
  const summaries: FacadeSummary[] = facades.map((f) => ({
    name: f.name,
    url: f.url,
    port: f.ownPort ? 'own' : 'node',
    examples: f.examples,
  }));
  return {
    ...OPENAPI_DOCUMENT,
    info: {
      ...OPENAPI_DOCUMENT.info,
      description: `${OPENAPI_DOCUMENT.info.description} Besides the native API this node serves the facades ${facades.map((f) => f.name).join(', ')}: their operations carry the facade's name as a tag, and their errors are in the facade's own format.`,
    },
    tags,
    paths,
    components: { ...OPENAPI_DOCUMENT.components, schemas },
    [FACADES_EXTENSION]: summaries,
  };
}

function tagged(item: Readonly<Record<string, unknown>>, facade: FacadeDocument): Record<string, unknown> {
  const result: Record<string, unknown> = { ...item };
  for (const method of OPERATIONS) {
    const operation = result[method];
    if (typeof operation !== 'object' || operation === null) continue;
    const own = (operation as { tags?: unknown }).tags;
    const existing = Array.isArray(own) ? own.filter((t) => t !== facade.name) : [];
    result[method] = { ...operation, tags: [facade.name, ...existing] };
  }
  if (facade.ownPort) result['servers'] = [{ url: facade.url, description: `the port of facade '${facade.name}'` }];
  return result;
}

function clash(facade: string, what: string, owner: string): KvError {
  return new KvError(
    'KVMESH_ERR_PLUGIN_INVALID',
    `facade '${facade}' documents ${what}, which ${owner} documents already; a node's OpenAPI document names each once, so mount only one of them on a node`,
  );
}
