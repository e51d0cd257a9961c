import type { FacadeOpenApi } from '@kvmesh/core';

const keyParameter = {
  name: 'key',
  in: 'path',
  required: true,
  description:
    'The key: everything after /keys/ up to ?, percent-encoded UTF-8, slashes included. At most limits.maxKeyBytes bytes.',
  schema: { type: 'string', minLength: 1 },
};

const problem = (description: string): Record<string, unknown> => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/KeyShiftProblem' } } },
});

const common = {
  '400': problem('The key is empty or not valid percent-encoded UTF-8.'),
  '405': problem('Another method; see the Allow header.'),
  '414': problem('The key is longer than limits.maxKeyBytes.'),
  '503': problem(
    'The node is not running, or the key is being handed over and stayed frozen past the retries; see Retry-After.',
  ),
  '504': problem('A request to another node of the overlay timed out.'),
};

/** The KeyShift API in the node's OpenAPI document. */
export const KEYSHIFT_OPENAPI: FacadeOpenApi = Object.freeze({
  description:
    'The KeyShift client API (GET/PUT /keys/<key>, raw bytes); a key moves to the node it is read or written at; failures are RFC 9457 problem details.',
  paths: {
    '/keys/{key}': {
      parameters: [keyParameter],
      get: {
        operationId: 'keyShiftGet',
        summary: 'Read a value (the key moves to this node)',
        responses: {
          '200': {
            description: 'The value bytes.',
            content: {
              'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } },
            },
          },
          '404': problem('The key does not exist.'),
          ...common,
        },
      },
      put: {
        operationId: 'keyShiftSet',
        summary: 'Write a value: the request body (the key moves to this node)',
        requestBody: {
          required: false,
          description: 'The value bytes, at most limits.maxValueBytes, whatever the Content-Type.',
          content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
        },
        responses: {
          '200': { description: 'Written, on the number of replicas the topology promises. No body.' },
          '413': problem('The value is larger than limits.maxValueBytes; nothing was written.'),
          ...common,
        },
      },
    },
  },
  schemas: {
    KeyShiftProblem: {
      type: 'object',
      required: ['type', 'title', 'status', 'detail', 'code'],
      description: 'RFC 9457 problem details.',
      properties: {
        type: { type: 'string', description: 'The RFC 9110 section of the status, or about:blank.' },
        title: { type: 'string', description: "The status's reason phrase." },
        status: { type: 'integer' },
        detail: { type: 'string', description: 'What went wrong, in words.' },
        code: { type: 'string', pattern: '^KVMESH_ERR_[A-Z0-9_]+$', description: 'The stable code (docs/errors.md).' },
      },
    },
  },
});
