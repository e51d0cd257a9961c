/**
 * The OpenAPI 3.1 description of the native API, served at
 * `GET /v1/openapi.json`. A test keeps its paths and methods equal to the
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
          members: {
            type: 'array',
            items: {
              type: 'object',
              required: ['id', 'address', 'state'],
              properties: {
                id: { type: 'string' },
                address: { type: 'string', description: 'Transport URI, e.g. http://127.0.0.1:7700' },
                state: { enum: ['alive', 'suspect', 'dead', 'left'] },
              },
            },
          },
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
