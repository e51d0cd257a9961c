import type { FacadeOpenApi } from '@kvmesh/core';

const json = (schema: string, description: string): Record<string, unknown> => ({
  description,
  content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` } } },
});

const error = (description: string): Record<string, unknown> => json('Cse138Error', description);

const context = {
  type: 'object',
  additionalProperties: { type: 'string' },
  description:
    'What the client has seen: key → version. Send back the last one received; an empty or absent context starts a session.',
};

const unavailable = error('Unable to satisfy request: not served within 5 s (replicas out of reach, resharding).');

const keyParameter = {
  name: 'key',
  in: 'path',
  required: true,
  description: 'The key, percent-encoded; at most 50 characters.',
  schema: { type: 'string', minLength: 1, maxLength: 50 },
};

const contextBody = (withValue: boolean): Record<string, unknown> => ({
  required: withValue,
  content: {
    'application/json': {
      schema: {
        type: 'object',
        ...(withValue ? { required: ['value'] } : {}),
        properties: { ...(withValue ? { value: { description: 'Any JSON value.' } } : {}), 'causal-context': context },
      },
    },
  },
});

/** The CSE138 API in the node's OpenAPI document. */
export const CSE138_OPENAPI: FacadeOpenApi = Object.freeze({
  description:
    'The CSE138 sharded store API (/kvs/keys, /kvs/key-count, /kvs/view-change, /kvs/shards); errors are {"error": ..., "message": "Error in <METHOD>"}.',
  paths: {
    '/kvs/keys/{key}': {
      parameters: [keyParameter],
      put: {
        operationId: 'cse138Put',
        summary: 'Add or update a key',
        requestBody: contextBody(true),
        responses: {
          '200': json('Cse138Write', 'Updated successfully ("replaced": true).'),
          '201': json('Cse138Write', 'Added successfully ("replaced": false).'),
          '400': error('Value is missing, or Key is too long.'),
          '503': unavailable,
        },
      },
      get: {
        operationId: 'cse138Get',
        summary: 'Read a key',
        requestBody: contextBody(false),
        responses: {
          '200': json('Cse138Read', 'Retrieved successfully.'),
          '404': error('Key does not exist ("doesExist": false).'),
          '503': unavailable,
        },
      },
      delete: {
        operationId: 'cse138Delete',
        summary: 'Delete a key',
        requestBody: contextBody(false),
        responses: {
          '200': json('Cse138Read', 'Deleted successfully.'),
          '404': error('Key does not exist ("doesExist": false).'),
          '503': unavailable,
        },
      },
    },
    '/kvs/key-count': {
      get: {
        operationId: 'cse138KeyCount',
        summary: 'Keys stored on this node',
        responses: { '200': json('Cse138KeyCount', 'Key count retrieved successfully.') },
      },
    },
    '/kvs/shards': {
      get: {
        operationId: 'cse138Shards',
        summary: 'The shard ids',
        responses: { '200': json('Cse138Shards', 'Shard membership retrieved successfully.') },
      },
    },
    '/kvs/shards/{id}': {
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
      get: {
        operationId: 'cse138Shard',
        summary: 'One shard: its key count and replicas',
        responses: {
          '200': json('Cse138Shard', 'Shard information retrieved successfully.'),
          '404': error('Shard does not exist.'),
          '503': unavailable,
        },
      },
    },
    '/kvs/view-change': {
      put: {
        operationId: 'cse138ViewChange',
        summary: 'Install a new view and reshard',
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['view'],
                properties: {
                  view: { type: 'string', description: 'host:port of every node, comma-separated.' },
                  'repl-factor': {
                    type: 'integer',
                    minimum: 1,
                    description:
                      'Replicas per shard from now on, at most the nodes of the view; omitted, the factor stays as it is. The store reshards by it.',
                  },
                },
              },
            },
          },
        },
        responses: {
          '200': json('Cse138ViewChange', 'View change successful, once the reshard settled.'),
          '400': error(
            'View is missing, an entry is not host:port, or repl-factor is not a whole number from 1 to the nodes of the view.',
          ),
          '503': unavailable,
        },
      },
    },
  },
  schemas: {
    Cse138Error: {
      type: 'object',
      required: ['error', 'message'],
      properties: {
        error: { type: 'string' },
        message: { type: 'string', pattern: '^Error in [A-Z]+$' },
        doesExist: { const: false },
        address: { type: 'string' },
        'causal-context': context,
      },
    },
    Cse138Write: {
      type: 'object',
      required: ['message', 'replaced', 'causal-context'],
      properties: {
        message: { enum: ['Added successfully', 'Updated successfully'] },
        replaced: { type: 'boolean' },
        address: { type: 'string', description: 'The node that served, when this one proxied.' },
        'causal-context': context,
      },
    },
    Cse138Read: {
      type: 'object',
      required: ['doesExist', 'message', 'causal-context'],
      properties: {
        doesExist: { const: true },
        message: { enum: ['Retrieved successfully', 'Deleted successfully'] },
        value: { description: 'The value as it was written (GET only).' },
        address: { type: 'string', description: 'The node that served, when this one proxied.' },
        'causal-context': context,
      },
    },
    Cse138KeyCount: {
      type: 'object',
      required: ['message', 'key-count'],
      properties: {
        message: { const: 'Key count retrieved successfully' },
        'key-count': { type: 'integer' },
        'shard-id': { type: 'string', description: 'With replicated shards only.' },
      },
    },
    Cse138Shards: {
      type: 'object',
      required: ['message', 'shards'],
      properties: {
        message: { const: 'Shard membership retrieved successfully' },
        shards: { type: 'array', items: { type: 'string' } },
      },
    },
    Cse138Shard: {
      type: 'object',
      required: ['message', 'shard-id', 'key-count', 'replicas'],
      properties: {
        message: { const: 'Shard information retrieved successfully' },
        'shard-id': { type: 'string' },
        'key-count': { type: 'integer' },
        replicas: { type: 'array', items: { type: 'string' } },
      },
    },
    Cse138ViewChange: {
      type: 'object',
      required: ['message', 'shards'],
      properties: {
        message: { const: 'View change successful' },
        shards: {
          type: 'array',
          items: {
            oneOf: [
              {
                type: 'object',
                required: ['address', 'key-count'],
                properties: { address: { type: 'string' }, 'key-count': { type: 'integer' } },
              },
              {
                type: 'object',
                required: ['shard-id', 'key-count', 'replicas'],
                properties: {
                  'shard-id': { type: 'string' },
                  'key-count': { type: 'integer' },
                  replicas: { type: 'array', items: { type: 'string' } },
                },
              },
            ],
          },
        },
      },
    },
  },
});
