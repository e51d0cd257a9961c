import type { FacadeOpenApi } from '@kvmesh/core';

const call = {
  summary: 'An XML-RPC call: lookup(key), store(key, value), ping(), system.listMethods(), system.methodHelp(name)',
  description:
    'The body is an XML-RPC methodCall (at most limits.maxValueBytes bytes; no DOCTYPE). Every answer is HTTP 200 with a methodResponse: the result, or a fault struct {faultCode, faultString}. Fault codes: 404 lookup of a missing key (faultString: the key), -32700 not well-formed XML, -32600 not an XML-RPC methodCall, -32601 unknown method, -32602 wrong number or types of arguments; failures of the KV operation carry the HTTP status of their KVMESH_ERR_* code (400 empty key, 413 body too large, 414 key too long, 503 too few replicas or node not running) with "KVMESH_ERR_*: message". A value stored is kept as JSON (application/json): GET /v1/kv/<key> reads it; base64 values as bytes (application/octet-stream).',
  requestBody: {
    required: true,
    content: {
      'text/xml': {
        schema: { type: 'string', description: 'An XML-RPC methodCall.' },
        example:
          '<?xml version="1.0"?><methodCall><methodName>lookup</methodName><params><param><value><string>greeting</string></value></param></params></methodCall>',
      },
    },
  },
  responses: {
    '200': {
      description: 'A methodResponse: params with one value, or a fault.',
      content: { 'text/xml': { schema: { $ref: '#/components/schemas/DyschordMethodResponse' } } },
    },
  },
};

const notPost = {
  description: 'Another method than POST: a fault (-32600), with Allow: POST.',
  content: { 'text/xml': { schema: { $ref: '#/components/schemas/DyschordMethodResponse' } } },
};

const item = (operationId: string): Record<string, unknown> => ({
  post: { operationId, ...call },
  get: {
    operationId: `${operationId}Get`,
    summary: 'Not an XML-RPC call',
    responses: { '405': notPost },
  },
});

/** The dyschord XML-RPC endpoint in the node's OpenAPI document. */
export const DYSCHORD_OPENAPI: FacadeOpenApi = Object.freeze({
  description:
    'The dyschord client API: XML-RPC lookup(key) and store(key, value) on POST / and POST /RPC2; failures are XML-RPC faults (HTTP 200).',
  paths: { '/': item('dyschordCall'), '/RPC2': item('dyschordCallRpc2') },
  schemas: {
    DyschordMethodResponse: {
      type: 'string',
      contentMediaType: 'text/xml',
      description:
        'An XML-RPC methodResponse: <params><param><value>...</value></param></params>, or <fault><value><struct> with faultCode (int) and faultString (string).',
    },
  },
});
