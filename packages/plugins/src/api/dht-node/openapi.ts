import type { FacadeOpenApi } from '@kvmesh/core';

const keyParameter = {
  name: 'key',
  in: 'path',
  required: true,
  description:
    'The key: everything after /d/ up to ?, percent-encoded UTF-8, slashes included. At most limits.maxKeyBytes bytes.',
  schema: { type: 'string', minLength: 1 },
};

const error = (description: string): Record<string, unknown> => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/DhtNodeError' } } },
});

const written = (description: string): Record<string, unknown> => ({
  description,
  headers: { ETag: { description: 'The version written, quoted.', schema: { type: 'string' } } },
  content: { 'application/json': { schema: { $ref: '#/components/schemas/DhtNodeWrite' } } },
});

const common = {
  '400': error('The key is empty or not valid percent-encoded UTF-8.'),
  '405': error('Another method; see the Allow header.'),
  '414': error('The key is longer than limits.maxKeyBytes.'),
  '503': error('The node is not running, or too few replicas answered.'),
};

/** The dht-node API in the node's OpenAPI document. */
export const DHT_NODE_OPENAPI: FacadeOpenApi = Object.freeze({
  description:
    'The dht-node client API (POST/GET/DELETE /d/<key>); errors are {"error": message, "code": KVMESH_ERR_*}.',
  paths: {
    '/d/{key}': {
      parameters: [keyParameter],
      post: {
        operationId: 'dhtNodeSet',
        summary: 'Write a value: the request body',
        requestBody: {
          required: false,
          description:
            'The value bytes, at most limits.maxValueBytes. The Content-Type is stored (a form type, as curl -d sends, is stored as text/plain).',
          content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
        },
        responses: {
          '200': written('Replaced an existing value.'),
          '201': written('Created the key.'),
          '413': error('The value is larger than limits.maxValueBytes; nothing was written.'),
          ...common,
        },
      },
      get: {
        operationId: 'dhtNodeGet',
        summary: 'Read a value',
        responses: {
          '200': {
            description: 'The value bytes, with the Content-Type stored when it was written.',
            headers: { ETag: { description: 'The version, quoted.', schema: { type: 'string' } } },
            content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
          },
          '404': error('The key does not exist.'),
          ...common,
        },
      },
      delete: {
        operationId: 'dhtNodeDelete',
        summary: 'Delete a key',
        responses: {
          '200': {
            description: 'Deleted.',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/DhtNodeWrite' } } },
          },
          '404': error('The key does not exist.'),
          ...common,
        },
      },
    },
  },
  schemas: {
    DhtNodeWrite: {
      type: 'object',
      required: ['key', 'status'],
      properties: { key: { type: 'string' }, status: { enum: ['created', 'updated', 'deleted'] } },
    },
    DhtNodeError: {
      type: 'object',
      required: ['error', 'code'],
      properties: {
        error: { type: 'string', description: 'What went wrong, in words.' },
        code: { type: 'string', pattern: '^KVMESH_ERR_[A-Z0-9_]+$', description: 'The stable code (docs/errors.md).' },
      },
    },
  },
});
