import { KvError } from '@kvmesh/core';
import type { Facade, FacadeFailure, FacadeHttp, FacadeOpenApi, KvService } from '@kvmesh/core';
import type { Context, Middleware, Next } from 'koa';
import { VELOUR_FOG_OPENAPI } from './openapi.js';
import type { OwnPortOptions } from '../support/own-port.js';

/** Where the facade answers: a port of its own, or (null) the node's API port. */
export type VelourFogOptions = OwnPortOptions;

export interface VelourFogComponents {
  readonly kv: KvService;
}

/** Where a get is asked: `curl localhost:8000/get/?key=KEY` (its design document, "Retrieve value for a key"). */
export const VELOUR_FOG_GET_PATH = '/get/';
/** Methods of `/get/`: a read, or (POST) a set of the key `get/` itself. */
export const VELOUR_FOG_GET_METHODS = 'GET, HEAD, POST';
/** Methods of any other path `/KEY`: a set (`curl -d VALUE localhost:8000/KEY`, its design document, "Set value for a key"). */
export const VELOUR_FOG_SET_METHODS = 'POST';
/** The query parameter that names the key of a get. */
const KEY_PARAMETER = 'key';
/** What curl sends with `-d`: the body is the value itself there, not a form, so it is stored as text. */
const FORM_TYPE = 'application/x-www-form-urlencoded';
const TEXT_TYPE = 'text/plain; charset=utf-8';
const BYTES_TYPE = 'application/octet-stream';
/** Header that carries the KVMESH_ERR_* code of a refused request besides the body's text. */
export const VELOUR_FOG_ERROR_HEADER = 'X-Kvmesh-Error';

/**
 * The Velour Fog client API: `GET /get/?key=KEY` answers 200 with
 * the value bytes, or 204 with no body when the key does not exist; `POST
 * /KEY` with the value as the body sets it (200, no body). Served on the
 * node's API port on every role; clients talk to frontends, whose KV service
 * holds nothing and forwards to the key's partition: a set reaches the
 * topology's write quorum (all K replicas in configs/velour-fog.json), a get
 * asks one replica. Errors are plain text, `CODE: message`, with the code in
 * the X-Kvmesh-Error header as well (the seed defines no error format).
 */
export class VelourFogFacade implements Facade {
  readonly port?: number;
  readonly host?: string;
  readonly #kv: KvService;

  constructor(components: VelourFogComponents, options: VelourFogOptions) {
    this.#kv = components.kv;
    if (options.port !== null) this.port = options.port;
    if (options.host !== null) this.host = options.host;
  }

  routes(http: FacadeHttp): Middleware {
    return async (ctx: Context, next: Next): Promise<void> => {
      const isGetPath = ctx.path === VELOUR_FOG_GET_PATH || ctx.path === '/get';
      if (isGetPath && (ctx.method === 'GET' || ctx.method === 'HEAD'))
        return this.#get(ctx, keyOfQuery(ctx.querystring));
      if (ctx.method === 'POST') return this.#set(ctx, keyOfPath(ctx.path), await http.readBody(ctx));
      // Any other GET is not a Velour Fog request: the native API (or the own port's 404) answers it.
      if (ctx.method === 'GET' || ctx.method === 'HEAD') return next();
      const allow = isGetPath ? VELOUR_FOG_GET_METHODS : VELOUR_FOG_SET_METHODS;
      ctx.set('Allow', allow);
      throw new KvError(
        'KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED',
        isGetPath
          ? `${ctx.method} is not allowed on /get/; read with GET /get/?key=KEY`
          : `${ctx.method} is not allowed on /KEY; set a value with POST /KEY (the value as the body)`,
      );
    };
  }

  async #get(ctx: Context, key: string): Promise<void> {
    const { record } = await this.#kv.get(key);
    if (record === undefined) {
      // "Return code 204 signifies that the key did not exist. No data follows."
      ctx.status = 204;
      return;
    }
    ctx.status = 200;
    ctx.set('Content-Type', record.contentType === '' ? BYTES_TYPE : record.contentType);
    ctx.body = Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength);
  }

  async #set(ctx: Context, key: string, value: Buffer): Promise<void> {
    await this.#kv.put(key, value, storedType(ctx.get('Content-Type')));
    ctx.status = 200;
    ctx.body = '';
  }

  error(ctx: Context, failure: FacadeFailure): void {
    ctx.status = failure.status;
    ctx.set(VELOUR_FOG_ERROR_HEADER, failure.code);
    ctx.type = TEXT_TYPE;
    ctx.body = `${failure.code}: ${failure.message}\n`;
  }

  openapi(): FacadeOpenApi {
    return VELOUR_FOG_OPENAPI;
  }

  examples(baseUrl: string): readonly string[] {
    return [
      `curl -i -d hello ${baseUrl}/greeting`,
      `curl -i ${baseUrl}/get/?key=greeting`,
      `curl -i ${baseUrl}/get/?key=absent`,
    ];
  }
}

/**
 * The key of `POST /KEY`: the whole path after the first slash,
 * percent-decoded, slashes included (`/a/b` and `/a%2Fb` are the key `a/b`).
 * @throws KvError KVMESH_ERR_KV_KEY_INVALID (empty), KVMESH_ERR_HTTP_BAD_REQUEST (malformed escapes).
 */
export function keyOfPath(path: string): string {
  const raw = path.slice(1);
  if (raw === '') throw new KvError('KVMESH_ERR_KV_KEY_INVALID', 'the key is empty: set a value with POST /KEY');
  return decoded(raw, 'the key');
}

/**
 * The key of `GET /get/?key=KEY`: the one `key` parameter of the query,
 * decoded as a form field (`+` is a space, escapes must be UTF-8).
 * @throws KvError KVMESH_ERR_HTTP_BAD_REQUEST (no `key`, two of them, malformed escapes), KVMESH_ERR_KV_KEY_INVALID (empty).
 */
export function keyOfQuery(querystring: string): string {
  const values: string[] = [];
  for (const field of querystring.split('&')) {
    const eq = field.indexOf('=');
    const name = eq < 0 ? field : field.slice(0, eq);
    if (name !== KEY_PARAMETER) continue;
    values.push(eq < 0 ? '' : field.slice(eq + 1));
  }
  if (values.length === 0) {
    throw new KvError('KVMESH_ERR_HTTP_BAD_REQUEST', 'the query names no key: use /get/?key=KEY');
  }
  if (values.length > 1) {
    throw new KvError('KVMESH_ERR_HTTP_BAD_REQUEST', `the query names ${values.length} keys: use /get/?key=KEY once`);
  }
  const key = decoded(values[0]!.replaceAll('+', ' '), 'the key parameter');
  if (key === '') throw new KvError('KVMESH_ERR_KV_KEY_INVALID', 'the key is empty: use /get/?key=KEY');
  return key;
}

function decoded(raw: string, what: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new KvError(
      'KVMESH_ERR_HTTP_BAD_REQUEST',
      `${what} is not valid percent-encoded UTF-8: encode it with encodeURIComponent`,
    );
  }
}

/** The content type stored with a value: as sent, but curl's `-d` form type means text, and none means bytes. */
function storedType(header: string): string {
  if (header === '') return BYTES_TYPE;
  if (header.split(';')[0]!.trim().toLowerCase() === FORM_TYPE) return TEXT_TYPE;
  return header;
}
