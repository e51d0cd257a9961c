import type { FacadeOpenApi } from '@kvmesh/core';

const error = (description: string): Record<string, unknown> => ({
  description,
  headers: {
    'X-Kvmesh-Error': { description: 'The KVMESH_ERR_* code (docs/errors.md).', schema: { type: 'string' } },
  },
  content: { 'text/plain': { schema: { $ref: '#/components/schemas/VelourFogError' } } },
});

const common = {
  '400': error('The key is empty, missing, given twice or not valid percent-encoded UTF-8.'),
  '405': error('Another method; see the Allow header.'),
  '414': error('The key is longer than limits.maxKeyBytes.'),
  '503': error('The node is not running, or too few replicas of the partition answered.'),
};

const VALUE = { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } };

const getOperation = (operationId: string, summary: string): Record<string, unknown> => ({
  operationId,
  summary,
  parameters: [
    {
      name: 'key',
      in: 'query',
      required: true,
      description: 'The key, percent-encoded UTF-8 (+ is a space). At most limits.maxKeyBytes bytes.',
      schema: { type: 'string', minLength: 1 },
    },
  ],
  responses: {
    '200': {
      description: 'The key exists: the value bytes, with the Content-Type stored with them.',
      content: VALUE,
    },
    '204': { description: 'The key does not exist. No body.' },
    ...common,
  },
});

/** The Velour Fog API in the node's OpenAPI document. */
export const VELOUR_FOG_OPENAPI: FacadeOpenApi = Object.freeze({
  description:
    'The Velour Fog client API (GET /get/?key=KEY: 200 or 204; POST /KEY with the value as the body); errors are text, "KVMESH_ERR_...: message".',
  paths: {
    '/get/': { get: getOperation('velourFogGet', 'Read a value') },
    '/get': { get: getOperation('velourFogGetNoSlash', 'Read a value (the same as /get/)') },
    '/{key}': {
      post: {
        operationId: 'velourFogSet',
        summary: 'Set a value: the request body',
        parameters: [
          {
            name: 'key',
            in: 'path',
            required: true,
            description:
              'The key: the whole path after the first /, percent-encoded UTF-8, slashes included. At most limits.maxKeyBytes bytes.',
            schema: { type: 'string', minLength: 1 },
          },
        ],
        requestBody: {
          required: false,
          description:
            'The value bytes, at most limits.maxValueBytes. The Content-Type is stored (a form type, as curl -d sends, is stored as text/plain).',
          content: VALUE,
        },
        responses: {
          '200': {
            description: 'Set, on the replicas the write quorum asks for (all K in configs/velour-fog.json). No body.',
          },
          '413': error('The value is larger than limits.maxValueBytes; nothing was written.'),
          ...common,
        },
      },
    },
  },
  schemas: {
    VelourFogError: {
      type: 'string',
      pattern: '^KVMESH_ERR_[A-Z0-9_]+: ',
      description: 'The code, a colon, what went wrong in words, and a newline.',
    },
  },
});
