import type { Facade, FacadeFailure, FacadeHttp, FacadeOpenApi, KvService, Logger, NodeInfo } from '@kvmesh/core';
import type { Context, Middleware, Next } from 'koa';
import { DYSCHORD_OPENAPI } from './openapi.js';
import type { DyschordOptions } from './options.js';
import {
  XML_RPC_FAULTS,
  XmlRpcDateTime,
  XmlRpcFault,
  faultResponse,
  isJsonValue,
  methodResponse,
  parseMethodCall,
  typeName,
} from './xml-rpc.js';
import type { XmlRpcValue } from './xml-rpc.js';

export interface DyschordComponents {
  readonly kv: KvService;
  readonly node: NodeInfo;
  readonly logger: Logger;
}

/**
 * Where the XML-RPC endpoint answers: Python's SimpleXMLRPCServer serves
 * `/` and `/RPC2` (its default `rpc_paths`), and `ServerProxy('http://host:port')`
 * posts to `/RPC2`.
 */
export const DYSCHORD_PATHS: readonly string[] = Object.freeze(['/', '/RPC2']);

/** How a stored value is kept: JSON, so the native API reads the same value (`GET /v1/kv/<key>`). */
export const DYSCHORD_VALUE_TYPE = 'application/json';
const BYTES_TYPE = 'application/octet-stream';
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const TEXT_TYPE = /^text\//i;
const XML_TYPE = 'text/xml';

/** The seed's fault for a missing key (dyschord's server: `Fault(404, key)`; its client raises `KeyError`). */
const NOT_FOUND_FAULT = 404;

interface Method {
  readonly signature: string;
  readonly help: string;
  readonly arity: number;
}

const METHODS: Readonly<Record<string, Method>> = Object.freeze({
  lookup: {
    signature: 'lookup(key)',
    arity: 1,
    help: 'lookup(key): the value stored under key (a string); fault 404 with the key as faultString when there is none.',
  },
  store: {
    signature: 'store(key, value)',
    arity: 2,
    help: 'store(key, value): stores value (any JSON-encodable value; base64 for bytes) under key (a string) on the ring; answers nil once the write is acknowledged.',
  },
  ping: { signature: 'ping()', arity: 0, help: "ping(): {'id': this node's id}." },
  'system.listMethods': { signature: 'system.listMethods()', arity: 0, help: 'The names of the methods.' },
  'system.methodHelp': { signature: 'system.methodHelp(name)', arity: 1, help: 'What a method does.' },
});

/**
 * The dyschord client API: an XML-RPC endpoint with `lookup(key)`
 * and `store(key, value)`, so a stock XML-RPC client (Python's
 * `xmlrpc.client.ServerProxy`) works against any node. Values are any
 * JSON-encodable XML-RPC value, stored as JSON (`application/json`), so the
 * native API reads the same data; a `base64` value is stored as its bytes.
 * Every failure is an XML-RPC fault (HTTP 200, per the spec): protocol
 * mistakes carry the interoperability fault codes (`XML_RPC_FAULTS`), a
 * missing key fault 404 as dyschord answers it, KV failures the HTTP status
 * of their code (413, 414, 503...) with `KVMESH_ERR_*: message`.
 */
export class DyschordFacade implements Facade {
  readonly #kv: KvService;
  readonly #node: NodeInfo;
  readonly #logger: Logger;
  readonly #logRequests: boolean;

  constructor(components: DyschordComponents, options: DyschordOptions) {
    this.#kv = components.kv;
    this.#node = components.node;
    this.#logger = components.logger;
    this.#logRequests = options.log_requests;
  }

  routes(http: FacadeHttp): Middleware {
    return async (ctx: Context, next: Next): Promise<void> => {
      if (!DYSCHORD_PATHS.includes(ctx.path)) return next();
      if (ctx.method !== 'POST') {
        ctx.set('Allow', 'POST');
        answerFault(ctx, XML_RPC_FAULTS.invalidRequest, `XML-RPC calls are POSTs; ${ctx.method} is not one`, 405);
        return;
      }
      const body = await http.readBody(ctx);
      let methodName = '';
      try {
        const call = parseMethodCall(body);
        methodName = call.methodName;
        const result = await this.#call(call.methodName, call.params);
        ctx.status = 200;
        ctx.type = XML_TYPE;
        ctx.body = methodResponse(result);
        this.#log(methodName, call.params, 'ok');
      } catch (err) {
        if (!(err instanceof XmlRpcFault)) throw err;
        this.#log(methodName, [], `fault ${err.faultCode}`);
        answerFault(ctx, err.faultCode, err.faultString);
      }
    };
  }

  async #call(name: string, params: readonly XmlRpcValue[]): Promise<XmlRpcValue> {
    const method = Object.hasOwn(METHODS, name) ? METHODS[name] : undefined;
    if (method === undefined) {
      throw new XmlRpcFault(
        XML_RPC_FAULTS.methodNotFound,
        `method "${name}" is not supported; use ${Object.keys(METHODS).join(', ')}`,
      );
    }
    if (params.length !== method.arity) {
      const takes = method.arity === 1 ? '1 argument' : `${method.arity} arguments`;
      throw new XmlRpcFault(
        XML_RPC_FAULTS.invalidParams,
        `${method.signature} takes ${takes} (${params.length} given)`,
      );
    }
    switch (name) {
      case 'lookup':
        return this.#lookup(stringParam(method, 'key', params[0]!));
      case 'store':
        return this.#store(stringParam(method, 'key', params[0]!), params[1]!);
      case 'ping':
        return { id: this.#node.id };
      case 'system.listMethods':
        return Object.keys(METHODS).sort();
      default: {
        const asked = stringParam(method, 'name', params[0]!);
        const found = Object.hasOwn(METHODS, asked) ? METHODS[asked] : undefined;
        if (found === undefined) throw new XmlRpcFault(XML_RPC_FAULTS.invalidParams, `no method "${asked}"`);
        return found.help;
      }
    }
  }

  async #lookup(key: string): Promise<XmlRpcValue> {
    const { record } = await this.#kv.get(key);
    if (record === undefined) throw new XmlRpcFault(NOT_FOUND_FAULT, key);
    const bytes = Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength);
    if (JSON_TYPE.test(record.contentType)) {
      try {
        return JSON.parse(bytes.toString('utf8')) as XmlRpcValue;
      } catch {
        // Written through the native API as JSON that is not: answered as the text it is.
        return bytes.toString('utf8');
      }
    }
    if (TEXT_TYPE.test(record.contentType)) return bytes.toString('utf8');
    return bytes;
  }

  async #store(key: string, value: XmlRpcValue): Promise<null> {
    if (Buffer.isBuffer(value)) {
      await this.#kv.put(key, value, BYTES_TYPE);
      return null;
    }
    if (!isJsonValue(value)) {
      throw new XmlRpcFault(
        XML_RPC_FAULTS.invalidParams,
        `store(key, value): value must be JSON-encodable (found a ${nonJsonType(value) ?? 'value'} inside); send dates as strings and bytes as a base64 value of their own`,
      );
    }
    await this.#kv.put(key, Buffer.from(JSON.stringify(value), 'utf8'), DYSCHORD_VALUE_TYPE);
    return null;
  }

  #log(method: string, params: readonly XmlRpcValue[], outcome: string): void {
    if (!this.#logRequests) return;
    const key = typeof params[0] === 'string' ? params[0] : undefined;
    this.#logger.info({ method, ...(key !== undefined ? { key } : {}), outcome }, 'xml-rpc call');
  }

  error(ctx: Context, failure: FacadeFailure): void {
    answerFault(ctx, failure.status, `${failure.code}: ${failure.message}`);
  }

  openapi(): FacadeOpenApi {
    return DYSCHORD_OPENAPI;
  }

  examples(baseUrl: string): readonly string[] {
    const call = (body: string): string =>
      `curl -s -H 'Content-Type: text/xml' --data '<?xml version="1.0"?>${body}' ${baseUrl}/RPC2`;
    return [
      call(
        '<methodCall><methodName>store</methodName><params><param><value><string>greeting</string></value></param><param><value><struct><member><name>text</name><value><string>hello</string></value></member></struct></value></param></params></methodCall>',
      ),
      call(
        '<methodCall><methodName>lookup</methodName><params><param><value><string>greeting</string></value></param></params></methodCall>',
      ),
      `python3 -c "import xmlrpc.client as x; s = x.ServerProxy('${baseUrl}', allow_none=True); s.store('greeting', {'text': 'hello'}); print(s.lookup('greeting'))"`,
    ];
  }
}

function answerFault(ctx: Context, code: number, message: string, status = 200): void {
  ctx.status = status;
  ctx.type = XML_TYPE;
  ctx.body = faultResponse(code, message);
}

function stringParam(method: Method, name: string, value: XmlRpcValue): string {
  if (typeof value === 'string') return value;
  throw new XmlRpcFault(
    XML_RPC_FAULTS.invalidParams,
    `${method.signature}: ${name} must be a string (found ${typeName(value)})`,
  );
}

/** The type of the first value inside `value` that JSON has no type for. */
function nonJsonType(value: XmlRpcValue): string | undefined {
  if (Buffer.isBuffer(value) || value instanceof XmlRpcDateTime) return typeName(value);
  if (typeof value !== 'object' || value === null) return undefined;
  for (const item of Array.isArray(value) ? value : Object.values(value)) {
    const found = nonJsonType(item);
    if (found !== undefined) return found;
  }
  return undefined;
}
