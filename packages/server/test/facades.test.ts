import { createServer } from 'node:net';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { KvError, PluginRegistry, definePlugin, isKvError, silentLogger } from '@kvmesh/core';
import type { AnyPluginManifest, Facade, KvError as KvErrorType, LogFields, Logger } from '@kvmesh/core';
import { builtinPlugins } from '@kvmesh/plugins';
import { startNodeServer } from '../src/node-server.js';
import type { NodeServer } from '../src/node-server.js';
import { OPENAPI_DOCUMENT } from '../src/openapi.js';
import { freePort } from './helpers/cluster.js';
import { http } from './helpers/http.js';
import { testConfig } from './helpers/node.js';

interface EchoOptions {
  readonly prefix: string;
  readonly fast?: boolean;
  readonly port?: number;
  readonly documentPath?: string;
}

/**
 * A small facade for the host's side of the contract: `GET <prefix>/<word>`
 * answers the word, `PUT <prefix>/<key>` stores the body through the KV
 * service, `<prefix>/fail` throws a TypeError, `<prefix>/cluster` answers
 * the cluster view; errors are `{"oops":"<code>","status":<n>}`.
 */
/** URLs offered to the echo facade's fast routes, in order. */
const fastOffered: string[] = [];

function echoFacade(name = 'echo'): AnyPluginManifest {
  return definePlugin({
    family: 'facade',
    name,
    description: 'Echoes words, for host tests.',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        prefix: { type: 'string', default: '/echo', description: 'Path prefix.' },
        port: { type: 'integer', minimum: 0, maximum: 65535, description: 'Own port; absent: the node port.' },
        documentPath: { type: 'string', description: 'Path documented in OpenAPI.' },
        fast: { type: 'boolean', description: 'Fast routes: <prefix>/fast/<word> without Koa.' },
      },
    },
    needs: ['kv', 'cluster'],
    create:
      (options: EchoOptions) =>
      ({ kv, cluster }): Facade => ({
        ...(options.port !== undefined ? { port: options.port } : {}),
        ...(options.fast
          ? {
              // Every URL offered is kept, so a test sees what reached the fast lane.
              fastRoutes: () => (req, res) => {
                fastOffered.push(req.url!);
                const start = `${options.prefix}/fast/`;
                if (!req.url!.startsWith(start)) return undefined;
                const word = req.url!.slice(start.length);
                if (word === 'pass') return undefined;
                if (word === 'missing')
                  return Promise.reject(new KvError('KVMESH_ERR_HTTP_KEY_NOT_FOUND', 'no such word'));
                return Promise.resolve().then(() => {
                  res.writeHead(200, { 'Content-Type': 'text/plain' });
                  res.end(`fast:${word}`);
                });
              },
            }
          : {}),
        routes: (http) => async (ctx, next) => {
          if (!ctx.path.startsWith(`${options.prefix}/`)) return next();
          const rest = ctx.path.slice(options.prefix.length + 1);
          if (rest === 'fail') throw new TypeError('a bug in the facade');
          if (rest === 'cluster') {
            ctx.body = { self: cluster.view().self.id, administered: cluster.administered };
            return;
          }
          if (ctx.method === 'PUT') {
            const body = await http.readBody(ctx);
            const result = await kv.put(rest, body, 'text/plain');
            ctx.status = result.created ? 201 : 200;
            ctx.body = { stored: rest };
            return;
          }
          if (rest === 'missing') throw new KvError('KVMESH_ERR_HTTP_KEY_NOT_FOUND', 'no such word');
          ctx.type = 'text/plain';
          ctx.body = rest;
        },
        error: (ctx, failure) => {
          ctx.status = failure.status;
          ctx.body = { oops: failure.code, status: failure.status };
        },
        openapi: () => ({
          paths: {
            [options.documentPath ?? `${options.prefix}/{word}`]: {
              get: { operationId: `${name}Word`, responses: { '200': { description: 'The word.' } } },
            },
          },
          schemas: { [`${name[0]!.toUpperCase()}${name.slice(1)}Error`]: { type: 'object' } },
        }),
        examples: (baseUrl) => [`curl -i ${baseUrl}${options.prefix}/hello`],
      }),
  });
}

async function startWith(
  t: ExecutionContext,
  facades: unknown[],
  extra: Record<string, unknown> = {},
  logger: Logger = silentLogger,
): Promise<NodeServer> {
  const registry = new PluginRegistry([...builtinPlugins, echoFacade(), echoFacade('other')]);
  const server = await startNodeServer({
    document: testConfig('127.0.0.1', { facades, ...extra }),
    registry,
    logger,
  });
  t.teardown(() => server.shutdown());
  return server;
}

test('a facade on the node port answers behind the native routes, in its own error format', async (t) => {
  const server = await startWith(t, [{ name: 'echo' }]);
  t.deepEqual(server.facades, [{ name: 'echo', url: server.url }]);
  const word = await http(server.url, '/echo/hello');
  t.is(word.status, 200);
  t.is(word.body.toString(), 'hello');
  const missing = await http(server.url, '/echo/missing');
  t.is(missing.status, 404);
  t.deepEqual(missing.json(), { oops: 'KVMESH_ERR_HTTP_KEY_NOT_FOUND', status: 404 });
  t.is((await http(server.url, '/v1/health')).status, 200);
  const unknown = await http(server.url, '/nowhere');
  t.is(unknown.status, 404);
  t.is(unknown.json().error.code, 'KVMESH_ERR_HTTP_NOT_FOUND', 'paths no facade answers get the native 404');
});

test.serial(
  'fast routes answer before Koa what they take, leave the rest to the routes, fail in the facade format, and never see native paths',
  async (t) => {
    const server = await startWith(t, [{ name: 'echo', options: { fast: true } }]);
    fastOffered.length = 0;
    const fast = await http(server.url, '/echo/fast/hello');
    t.is(fast.status, 200);
    t.is(fast.body.toString(), 'fast:hello');
    const passed = await http(server.url, '/echo/fast/pass');
    t.is(passed.body.toString(), 'fast/pass', 'a request the fast routes leave reaches the Koa routes');
    const missing = await http(server.url, '/echo/fast/missing');
    t.is(missing.status, 404);
    t.deepEqual(missing.json(), { oops: 'KVMESH_ERR_HTTP_KEY_NOT_FOUND', status: 404 });
    t.is((await http(server.url, '/v1/health')).status, 200);
    t.is((await http(server.url, '/metrics')).status, 200);
    t.is((await http(server.url, '/v1/kv/k')).status, 404);
    t.deepEqual(
      fastOffered,
      ['/echo/fast/hello', '/echo/fast/pass', '/echo/fast/missing'],
      'native paths are never offered',
    );
    const metrics = (await http(server.url, '/metrics')).body.toString();
    t.regex(metrics, /kvmesh_http_requests_total\{[^}]*route="facade:echo"[^}]*status="200"[^}]*\} [1-9]/);
    t.regex(metrics, /kvmesh_http_requests_total\{[^}]*route="facade:echo"[^}]*status="404"[^}]*\} [1-9]/);
  },
);

test('a facade writes through the KV service: the native API reads what it stored', async (t) => {
  const server = await startWith(t, [{ name: 'echo' }]);
  const put = await http(server.url, '/echo/greeting', { method: 'PUT', body: 'hi there' });
  t.is(put.status, 201);
  t.deepEqual(put.json(), { stored: 'greeting' });
  const read = await http(server.url, '/v1/kv/greeting');
  t.is(read.status, 200);
  t.is(read.body.toString(), 'hi there');
  t.is(read.headers['content-type'], 'text/plain');
});

test('a body over limits.maxValueBytes is refused 413 in the facade format, on the node port and on its own', async (t) => {
  const server = await startWith(t, [{ name: 'echo' }, { name: 'other', options: { prefix: '/o', port: 0 } }], {
    limits: { maxValueBytes: 16 },
  });
  const big = 'x'.repeat(17);
  for (const [url, path] of [
    [server.url, '/echo/k'],
    [server.facades[1]!.url, '/o/k'],
  ] as const) {
    const res = await http(url, path, { method: 'PUT', body: big });
    t.is(res.status, 413, path);
    t.deepEqual(res.json(), { oops: 'KVMESH_ERR_KV_VALUE_TOO_LARGE', status: 413 });
  }
});

test('an unexpected failure is a 500 in the facade format with no details; the details go to the log', async (t) => {
  const errors: LogFields[] = [];
  const logger: Logger = { ...silentLogger, error: (fields) => void errors.push(fields), child: () => logger };
  const server = await startWith(t, [{ name: 'echo' }], {}, logger);
  const res = await http(server.url, '/echo/fail');
  t.is(res.status, 500);
  t.deepEqual(res.json(), { oops: 'KVMESH_ERR_HTTP_INTERNAL', status: 500 });
  t.false(res.body.toString().includes('a bug in the facade'));
  t.true(errors.some((e) => e['facade'] === 'echo' && String(e['err']).includes('a bug in the facade')));
});

test('a facade with a port of its own answers there, and only its routes: the rest is its 404', async (t) => {
  const server = await startWith(t, [{ name: 'echo', options: { port: 0 } }]);
  const own = server.facades[0]!.url;
  t.not(own, server.url);
  t.is((await http(own, '/echo/hello')).body.toString(), 'hello');
  const health = await http(own, '/v1/health');
  t.is(health.status, 404);
  t.deepEqual(health.json(), { oops: 'KVMESH_ERR_HTTP_NOT_FOUND', status: 404 });
  t.is((await http(server.url, '/echo/hello')).status, 404, 'the node port does not serve it');
});

test('the facade gets the cluster component', async (t) => {
  const server = await startWith(t, [{ name: 'echo' }]);
  t.deepEqual((await http(server.url, '/echo/cluster')).json(), { self: 'n1', administered: false });
});

test('two facades on the node port are offered requests in config order', async (t) => {
  const server = await startWith(t, [
    { name: 'other', options: { prefix: '/w', documentPath: '/w/{first}' } },
    { name: 'echo', options: { prefix: '/w', documentPath: '/w/{second}' } },
  ]);
  // Both claim /w/*: the first listed answers, so its error format is the one seen.
  const res = await http(server.url, '/w/missing');
  t.is(res.status, 404);
  t.deepEqual(res.json(), { oops: 'KVMESH_ERR_HTTP_KEY_NOT_FOUND', status: 404 });
  t.deepEqual(
    server.facades.map((f) => f.name),
    ['other', 'echo'],
  );
});

test("the node's OpenAPI document has every facade's paths, tagged, with its own port as their server", async (t) => {
  const server = await startWith(t, [{ name: 'echo' }, { name: 'other', options: { prefix: '/o', port: 0 } }]);
  const own = server.facades[1]!.url;
  const doc = (await http(server.url, '/v1/openapi.json')).json();
  for (const path of Object.keys(OPENAPI_DOCUMENT.paths)) t.truthy(doc.paths[path], path);
  t.deepEqual(doc.paths['/echo/{word}'].get.tags, ['echo']);
  t.is(doc.paths['/echo/{word}'].servers, undefined);
  t.deepEqual(doc.paths['/o/{word}'].get.tags, ['other']);
  t.deepEqual(doc.paths['/o/{word}'].servers, [{ url: own, description: "the port of facade 'other'" }]);
  t.deepEqual(doc.components.schemas.EchoError, { type: 'object' });
  t.deepEqual(
    doc.tags.map((tag: { name: string }) => tag.name),
    ['echo', 'other'],
  );
  t.deepEqual(doc['x-kvmesh-facades'], [
    { name: 'echo', url: server.url, port: 'node', examples: [`curl -i ${server.url}/echo/hello`] },
    { name: 'other', url: own, port: 'own', examples: [`curl -i ${own}/o/hello`] },
  ]);
});

test('a facade documenting a path the native API documents is refused at start, leaving nothing listening', async (t) => {
  const port = await freePort(['127.0.0.1']);
  const err = await t.throwsAsync<KvErrorType>(
    startWith(t, [
      { name: 'other', options: { prefix: '/o', port } },
      { name: 'echo', options: { documentPath: '/v1/health' } },
    ]),
  );
  t.is(err.code, 'KVMESH_ERR_PLUGIN_INVALID');
  t.regex(err.message, /facade 'echo' documents path \/v1\/health, which the native API documents already/);
  const refused = await t.throwsAsync<NodeJS.ErrnoException>(http(`http://127.0.0.1:${port}`, '/o/x'));
  t.is(refused.code, 'ECONNREFUSED', "the other facade's port was closed again");
});

test('a facade whose port is taken fails the start with an error naming it and the address', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const port = (blocker.address() as { port: number }).port;
  const err = await t.throwsAsync<KvErrorType>(startWith(t, [{ name: 'echo', options: { port } }]));
  t.true(isKvError(err, 'KVMESH_ERR_HTTP_LISTEN'));
  t.is(err.message, `facade 'echo': cannot listen at 127.0.0.1:${port}: EADDRINUSE`);
});

test('shutdown closes the facade port with the node port', async (t) => {
  const server = await startWith(t, [{ name: 'echo', options: { port: 0 } }]);
  const own = server.facades[0]!.url;
  t.is((await http(own, '/echo/x')).status, 200);
  await server.shutdown();
  const err = await t.throwsAsync<NodeJS.ErrnoException>(http(own, '/echo/x'));
  t.is(err.code, 'ECONNREFUSED');
});

test('an unknown facade in the config is a config error at its JSON path', async (t) => {
  const err = await t.throwsAsync<KvErrorType>(startWith(t, [{ name: 'echo' }, { name: 'ehco' }]));
  t.is(err.code, 'KVMESH_ERR_CONFIG_INVALID');
  const available = [...builtinPlugins.filter((p) => p.family === 'facade').map((p) => p.name), 'echo', 'other'].sort();
  t.true(
    err.message.includes(`/facades/1/name: unknown facade plugin 'ehco'; available: ${available.join(', ')}`),
    err.message,
  );
});

test('facade requests are counted in the metrics under one label per facade', async (t) => {
  const server = await startWith(t, [{ name: 'echo' }, { name: 'other', options: { prefix: '/o', port: 0 } }]);
  await http(server.url, '/echo/hello');
  await http(server.url, '/echo/missing');
  await http(server.facades[1]!.url, '/o/x');
  await http(server.facades[1]!.url, '/elsewhere');
  const text = (await http(server.url, '/metrics')).body.toString();
  t.regex(text, /kvmesh_http_requests_total\{route="facade:echo",method="GET",status="200"\} 1/);
  t.regex(text, /kvmesh_http_requests_total\{route="facade:echo",method="GET",status="404"\} 1/);
  t.regex(text, /kvmesh_http_requests_total\{route="facade:other",method="GET",status="200"\} 1/);
  t.regex(text, /kvmesh_http_requests_total\{route="unmatched",method="GET",status="404"\} 1/);
});
