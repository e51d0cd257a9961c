// A complete third-party facade in plain JavaScript: a plain-text client API.
// `PUT /text?key=K` stores the request body, `GET /text?key=K` answers it,
// `DELETE /text?key=K` removes it, `GET /text/members` lists the cluster one
// member a line; every failure is one line of text, `ERR <code> <message>`.
// It serves on a port of its own unless told otherwise. List this file in a
// config's "plugins" array and add { "name": "plaintext" } to "facades";
// docs/plugins.md walks through it.
import { KvError, definePlugin } from '@kvmesh/core';

const PREFIX = '/text';
const METHODS = 'GET, HEAD, PUT, DELETE';
const TEXT = 'text/plain; charset=utf-8';

/**
 * The `key` parameter of the query string, decoded strictly: a malformed
 * escape is refused rather than kept as it is (which Node's parsers do).
 */
function keyParameter(querystring) {
  const raw = querystring
    .split('&')
    .find((part) => part === 'key' || part.startsWith('key='))
    ?.slice(4);
  if (raw === undefined) throw new KvError('KVMESH_ERR_HTTP_BAD_REQUEST', 'name the key: ?key=<key>');
  let key;
  try {
    key = decodeURIComponent(raw.replaceAll('+', ' '));
  } catch {
    throw new KvError('KVMESH_ERR_HTTP_BAD_REQUEST', 'the key is not valid percent-encoded UTF-8');
  }
  if (key === '') throw new KvError('KVMESH_ERR_KV_KEY_INVALID', 'the key is empty');
  return key;
}

function line(ctx, status, text) {
  ctx.status = status;
  ctx.type = TEXT;
  ctx.body = `${text}\n`;
}

/** The facade: routes over the KV service and the cluster view, and its error format. */
class PlaintextFacade {
  #kv;
  #cluster;

  constructor({ kv, cluster }, options) {
    this.#kv = kv;
    this.#cluster = cluster;
    if (options.port !== null) this.port = options.port;
  }

  routes(http) {
    return async (ctx, next) => {
      if (ctx.path === `${PREFIX}/members`) return this.#members(ctx);
      if (ctx.path !== PREFIX) return next();
      if (!['GET', 'HEAD', 'PUT', 'DELETE'].includes(ctx.method)) {
        ctx.set('Allow', METHODS);
        throw new KvError(
          'KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED',
          `${ctx.method} is not allowed on ${PREFIX}; use ${METHODS}`,
        );
      }
      const key = keyParameter(ctx.querystring);
      if (ctx.method === 'PUT') {
        const value = await http.readBody(ctx);
        const { created } = await this.#kv.put(key, value, ctx.get('Content-Type') || TEXT);
        return line(ctx, created ? 201 : 200, created ? 'OK created' : 'OK replaced');
      }
      if (ctx.method === 'DELETE') {
        const { existed } = await this.#kv.delete(key);
        if (!existed) throw new KvError('KVMESH_ERR_HTTP_KEY_NOT_FOUND', `no key ${JSON.stringify(key)}`);
        return line(ctx, 200, 'OK deleted');
      }
      const { record } = await this.#kv.get(key);
      if (record === undefined) throw new KvError('KVMESH_ERR_HTTP_KEY_NOT_FOUND', `no key ${JSON.stringify(key)}`);
      ctx.status = 200;
      ctx.set('Content-Type', record.contentType);
      ctx.body = Buffer.from(record.value);
    };
  }

  #members(ctx) {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.set('Allow', 'GET, HEAD');
      throw new KvError(
        'KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED',
        `${ctx.method} is not allowed on ${PREFIX}/members; use GET`,
      );
    }
    const view = this.#cluster.view();
    ctx.status = 200;
    ctx.type = TEXT;
    ctx.body = view.members.map((m) => `${m.id} ${m.state} ${m.address}\n`).join('');
  }

  /** Every failure is one line: `ERR <code> <message>`, with the status the server's table gives the code. */
  error(ctx, failure) {
    line(ctx, failure.status, `ERR ${failure.code} ${failure.message.replaceAll('\n', ' ')}`);
  }

  openapi() {
    const key = {
      name: 'key',
      in: 'query',
      required: true,
      description: 'The key, percent-encoded UTF-8.',
      schema: { type: 'string', minLength: 1 },
    };
    const text = (description) => ({ description, content: { 'text/plain': { schema: { type: 'string' } } } });
    const failure = text('ERR <code> <message>, one line.');
    return {
      description: 'A plain-text key-value API; errors are one line, ERR <code> <message>.',
      paths: {
        [PREFIX]: {
          parameters: [key],
          get: {
            operationId: 'plaintextGet',
            summary: 'Read a value',
            responses: { 200: text('The value bytes.'), 404: failure, 400: failure },
          },
          put: {
            operationId: 'plaintextPut',
            summary: 'Write the request body as the value',
            responses: { 200: text('OK replaced'), 201: text('OK created'), 400: failure, 413: failure },
          },
          delete: {
            operationId: 'plaintextDelete',
            summary: 'Delete a key',
            responses: { 200: text('OK deleted'), 404: failure },
          },
        },
        [`${PREFIX}/members`]: {
          get: {
            operationId: 'plaintextMembers',
            summary: 'The members, one a line: id state address',
            responses: { 200: text('Members.') },
          },
        },
      },
    };
  }

  examples(baseUrl) {
    return [
      `curl -i -X PUT --data-binary 'hello' '${baseUrl}${PREFIX}?key=greeting'`,
      `curl -i '${baseUrl}${PREFIX}?key=greeting'`,
      `curl -s ${baseUrl}${PREFIX}/members`,
    ];
  }
}

export const plugin = definePlugin({
  family: 'facade',
  name: 'plaintext',
  description: 'A plain-text key-value API: GET, PUT and DELETE /text?key=K, errors as one line of text.',
  version: '1.0.0',
  coreVersions: '^0.1.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      port: {
        type: ['integer', 'null'],
        minimum: 0,
        maximum: 65535,
        default: 4401,
        description: "The facade's own port (0: any free port); null: the node's API port.",
      },
    },
  },
  needs: ['kv', 'cluster'],
  create: (options) => (components) => new PlaintextFacade(components, options),
});
