import test from 'ava';
import { KvError, definePlugin, runFacadeConformance } from '@kvmesh/core';
import type { Facade, FacadeAnswer, FacadeConformanceTable } from '@kvmesh/core';
import { facadeConformanceHost } from '../src/facade-conformance-host.js';

// The facade contract carries protocols unlike REST: one POST endpoint whose
// calls name the operation in the body, and failures reported in the body of
// an HTTP 200 (as XML-RPC faults and JSON-RPC errors are). A JSON-RPC 2.0
// facade, small enough to read, runs the same suite with `faultStatus: 200`.

const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const METHOD_NOT_FOUND = -32601;
const INVALID_PARAMS = -32602;
const SERVER_ERROR = -32000;

/** JSON-RPC error codes for kvmesh codes: bad arguments are invalid params, the rest a server error. */
function rpcCode(code: string): number {
  if (code === 'KVMESH_ERR_HTTP_BAD_REQUEST') return INVALID_REQUEST;
  if (code === 'KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED' || code === 'KVMESH_ERR_HTTP_NOT_FOUND') return METHOD_NOT_FOUND;
  if (/^KVMESH_ERR_KV_(KEY|VALUE)_/.test(code)) return INVALID_PARAMS;
  return SERVER_ERROR;
}

class RpcFault extends KvError {
  readonly rpc: number;
  constructor(rpc: number, message: string) {
    super('KVMESH_ERR_HTTP_BAD_REQUEST', message);
    this.rpc = rpc;
  }
}

const jsonRpcFacade = definePlugin({
  family: 'facade',
  name: 'json-rpc',
  description: 'JSON-RPC 2.0 on POST /rpc: store(key, value), lookup(key).',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { port: { type: ['integer', 'null'], default: null, description: 'Own port; null: the node port.' } },
  },
  needs: ['kv'],
  create:
    (options: { port: number | null }) =>
    ({ kv }): Facade => {
      let lastId: unknown = null;
      return {
        ...(options.port !== null ? { port: options.port } : {}),
        routes: (http) => async (ctx, next) => {
          if (ctx.path !== '/rpc') return next();
          lastId = null;
          if (ctx.method !== 'POST') throw new KvError('KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED', 'calls are POSTed');
          let call: { method?: unknown; params?: unknown; id?: unknown };
          try {
            call = JSON.parse((await http.readBody(ctx)).toString('utf8')) as typeof call;
          } catch (err) {
            if (err instanceof KvError) throw err;
            throw new RpcFault(PARSE_ERROR, 'the body is not JSON');
          }
          lastId = call?.id ?? null;
          const params = Array.isArray(call?.params) ? call.params : [];
          if (!params.every((p) => typeof p === 'string')) throw new RpcFault(INVALID_PARAMS, 'params are strings');
          const [key, value] = params as string[];
          let result: unknown;
          if (call.method === 'store' && params.length === 2) {
            result = (await kv.put(key!, Buffer.from(value!), 'text/plain')).created ? 'created' : 'updated';
          } else if (call.method === 'lookup' && params.length === 1) {
            const { record } = await kv.get(key!);
            result = record === undefined ? null : Buffer.from(record.value).toString('utf8');
          } else throw new RpcFault(METHOD_NOT_FOUND, `no method ${JSON.stringify(call.method)} of that arity`);
          ctx.body = { jsonrpc: '2.0', result, id: lastId };
        },
        error: (ctx, failure) => {
          ctx.status = 200;
          ctx.body = {
            jsonrpc: '2.0',
            error: {
              code: failure.cause instanceof RpcFault ? failure.cause.rpc : rpcCode(failure.code),
              message: failure.message,
              data: failure.code,
            },
            id: lastId,
          };
        },
        openapi: () => ({
          paths: {
            '/rpc': {
              post: { operationId: 'jsonRpcCall', responses: { '200': { description: 'A result or an error.' } } },
            },
          },
        }),
        examples: (url) => [`curl -s ${url}/rpc -d '{"jsonrpc":"2.0","method":"lookup","params":["k"],"id":1}'`],
      };
    },
});

const call = (method: string, params: unknown[], id = 1): string =>
  JSON.stringify({ jsonrpc: '2.0', method, params, id });

const table: FacadeConformanceTable = {
  faultStatus: 200,
  cases: [
    {
      title: 'lookup of a key never stored is a null result',
      request: { method: 'POST', path: '/rpc', body: call('lookup', ['k']) },
      expect: { status: 200, json: { jsonrpc: '2.0', result: null, id: 1 } },
    },
    {
      title: 'store answers created',
      request: { method: 'POST', path: '/rpc', body: call('store', ['k', 'v'], 2) },
      expect: { status: 200, json: { jsonrpc: '2.0', result: 'created', id: 2 } },
    },
    {
      title: 'lookup answers the value',
      request: { method: 'POST', path: '/rpc', body: call('lookup', ['k'], 3) },
      expect: { status: 200, json: { jsonrpc: '2.0', result: 'v', id: 3 } },
    },
    {
      title: 'a body that is not JSON is a parse error, in a 200',
      request: { method: 'POST', path: '/rpc', body: '{"jsonrpc":' },
      badInput: true,
      expect: {
        status: 200,
        json: {
          jsonrpc: '2.0',
          error: { code: PARSE_ERROR, message: 'the body is not JSON', data: 'KVMESH_ERR_HTTP_BAD_REQUEST' },
          id: null,
        },
      },
    },
    {
      title: 'an unknown method is method-not-found',
      request: { method: 'POST', path: '/rpc', body: call('remove', ['k'], 4) },
      badInput: true,
      expect: {
        status: 200,
        json: {
          jsonrpc: '2.0',
          error: {
            code: METHOD_NOT_FOUND,
            message: 'no method "remove" of that arity',
            data: 'KVMESH_ERR_HTTP_BAD_REQUEST',
          },
          id: 4,
        },
      },
    },
  ],
  errorFormat: (answer: FacadeAnswer) => {
    const body = JSON.parse(answer.body.toString('utf8')) as {
      jsonrpc?: unknown;
      error?: { code?: unknown; message?: unknown };
    };
    if (body.jsonrpc !== '2.0') return 'not a JSON-RPC 2.0 answer';
    if (typeof body.error?.code !== 'number' || typeof body.error.message !== 'string') return 'no error object';
    return undefined;
  },
  keyRequests: [
    { method: 'POST', path: '/rpc', body: '{"jsonrpc":"2.0","method":"store","params":["{key}","{value}"],"id":9}' },
    { method: 'POST', path: '/rpc', body: '{"jsonrpc":"2.0","method":"lookup","params":["{key}"],"id":9}' },
  ],
};

runFacadeConformance(test, { facade: jsonRpcFacade, host: facadeConformanceHost, ...table });
runFacadeConformance(test, {
  title: 'json-rpc on its own port',
  facade: jsonRpcFacade,
  options: { port: 0 },
  host: facadeConformanceHost,
  ...table,
});
