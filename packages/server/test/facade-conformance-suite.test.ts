import { isDeepStrictEqual } from 'node:util';
import test from 'ava';
import type { ExecutionContext, TestFn } from 'ava';
import { KvError, definePlugin, runFacadeConformance } from '@kvmesh/core';
import type { AnyPluginManifest, Facade, FacadeAnswer } from '@kvmesh/core';
import {
  cse138Conformance,
  dhtNodeConformance,
  dhtNodeFacade,
  dyschordConformance,
  keyShiftConformance,
  velourFogConformance,
} from '@kvmesh/plugins';
import { facadeConformanceHost } from '../src/facade-conformance-host.js';

// The suite must fail a facade that breaks its promises: run it on broken
// variants of dht-node with a recording stand-in for ava, and read the failures.

type Body = (t: ExecutionContext) => Promise<void> | void;

/** Runs every test the suite declares against `facade`; resolves to the failure messages by test title. */
async function failuresOf(facade: AnyPluginManifest): Promise<Map<string, string[]>> {
  const declared: { title: string; body: Body }[] = [];
  const recorder = ((title: string, body: Body) => void declared.push({ title, body })) as unknown as TestFn;
  runFacadeConformance(recorder, { facade, host: facadeConformanceHost, title: 'broken', ...dhtNodeConformance });
  const results = new Map<string, string[]>();
  for (const { title, body } of declared) {
    const failures: string[] = [];
    const teardowns: (() => unknown)[] = [];
    const check = (ok: boolean, message?: string): void => {
      if (!ok) failures.push(message ?? 'assertion failed');
    };
    const t = {
      true: (v: unknown, m?: string) => check(v === true, m),
      truthy: (v: unknown, m?: string) => check(Boolean(v), m),
      is: (a: unknown, b: unknown, m?: string) => check(Object.is(a, b), m ?? `${String(a)} is not ${String(b)}`),
      deepEqual: (a: unknown, b: unknown, m?: string) => check(isDeepStrictEqual(a, b), `${m}: ${JSON.stringify(a)}`),
      log: () => undefined,
      pass: () => undefined,
      teardown: (fn: () => unknown) => void teardowns.push(fn),
    } as unknown as ExecutionContext;
    try {
      await body(t);
    } finally {
      for (const fn of teardowns.reverse()) await fn();
    }
    results.set(title.replace('broken › ', ''), failures);
  }
  return results;
}

/** dht-node with one promise broken by `change`. */
function brokenDhtNode(change: (facade: Facade) => Partial<Facade>): AnyPluginManifest {
  const manifest: AnyPluginManifest = {
    ...dhtNodeFacade,
    create: (options) => (components) => {
      const real = dhtNodeFacade.create(options as never)(components) as Facade;
      const facade: Facade = {
        routes: (http) => real.routes(http),
        error: (ctx, failure) => real.error!(ctx, failure),
        openapi: () => real.openapi!(),
        examples: (url) => real.examples!(url),
      };
      return { ...facade, ...change(real) };
    },
  };
  return definePlugin(manifest);
}

test('the suite passes dht-node as it is', async (t) => {
  const failures = await failuresOf(dhtNodeFacade);
  t.deepEqual([...failures.values()].flat(), []);
});

test('the suite fails a facade that answers bad input with a 5xx', async (t) => {
  const failures = await failuresOf(
    brokenDhtNode((real) => ({
      routes: (http) => {
        const routes = real.routes(http);
        return async (ctx, next) => {
          if (ctx.path === '/d/') throw new TypeError('an empty key crashes this facade');
          return routes(ctx, next);
        };
      },
    })),
  );
  const table = failures.get('answers its declared table exactly')!;
  t.true(
    table.some((f) => f.includes('an empty key is 400') && f.includes('never be a 5xx')),
    table.join('\n'),
  );
  const own = failures.get("answers the suite's bad input in its own error format, never 5xx")!;
  t.true(
    own.some((f) => f.startsWith('POST: an empty key') && f.includes('never be a 5xx')),
    own.join('\n'),
  );
  t.true(own.some((f) => f.startsWith('GET: an empty key')));
});

test('the suite fails a facade that answers errors in the native format instead of its own', async (t) => {
  const failures = await failuresOf(brokenDhtNode(() => ({ error: undefined })));
  const own = failures.get("answers the suite's bad input in its own error format, never 5xx")!;
  t.is(own.length, 13, own.join('\n'));
  t.true(own.every((f) => f.includes("not in the facade's error format")));
});

test('the suite fails a facade whose answer differs from its table, naming the row', async (t) => {
  const failures = await failuresOf(
    brokenDhtNode((real) => ({
      routes: (http) => {
        const routes = real.routes(http);
        return async (ctx, next) => {
          if (ctx.method === 'DELETE') throw new KvError('KVMESH_ERR_HTTP_KEY_NOT_FOUND', 'gone');
          return routes(ctx, next);
        };
      },
    })),
  );
  const table = failures.get('answers its declared table exactly')!;
  t.true(
    table.some(
      (f) => f.startsWith('DELETE removes the key: 200: DELETE /d/greeting') && f.includes('status 404, expected 200'),
    ),
  );
});

test('the suite fails a facade that documents no routes or gives no examples', async (t) => {
  const failures = await failuresOf(brokenDhtNode(() => ({ openapi: () => ({ paths: {} }), examples: () => [] })));
  t.true(failures.get("documents every route of its table in the node's OpenAPI document")!.length > 0);
  t.deepEqual(failures.get('gives curl examples for where it answers'), ['at least one example']);
});

test("every built-in facade's error format refuses the native API's error body, and garbage", (t) => {
  const tables = {
    cse138Conformance,
    dhtNodeConformance,
    dyschordConformance,
    keyShiftConformance,
    velourFogConformance,
  };
  const native = Buffer.from('{"error":{"code":"KVMESH_ERR_HTTP_NOT_FOUND","message":"no route"}}');
  for (const [name, table] of Object.entries(tables)) {
    for (const [what, answer] of [
      [
        'the native body',
        { status: 404, headers: { 'content-type': 'application/json; charset=utf-8' }, body: native },
      ],
      ['garbage', { status: 400, headers: { 'content-type': 'application/json' }, body: Buffer.from('{not json') }],
    ] as const) {
      t.truthy(table.errorFormat(answer as unknown as FacadeAnswer), `${name} takes ${what} for its own format`);
    }
  }
});
