import test from 'ava';
import type { ExecutionContext } from 'ava';
import fc from 'fast-check';
import { builtinPlugins } from '@kvmesh/plugins';
import type { NodeServer } from '../src/node-server.js';
import { freePort, request, storedKeys } from './helpers/cluster.js';
import { rawExchange } from './helpers/http.js';
import { startTestServer, testConfig } from './helpers/node.js';

// Random requests against every route of a running node, the facades' too:
// whatever arrives, the answer is never a 5xx, the node never crashes or
// hangs, a refused request writes nothing, and the node still serves after.
// Bounded (FUZZ_RUNS requests per port, default 150) and reproducible: the
// seed is logged, and FUZZ_SEED replays a run.

const HOST = '127.0.0.1';
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 150);
const SEED = Number(process.env['FUZZ_SEED'] ?? Date.now() % 1_000_000);
/** Small limits, so that the 413 paths are reached without megabyte bodies. */
const LIMITS = { maxKeyBytes: 64, maxValueBytes: 4096 };
const API = { maxJsonBodyBytes: 2048 };
/** Every request gets an answer within this, or the run fails as a hang. */
const ANSWER_TIMEOUT_MS = 10_000;

/** Facades with an own-port option get a port each; the others share the node's port with the native API. */
function facadeEntries(): { name: string; options?: Record<string, unknown> }[] {
  return builtinPlugins
    .filter((p) => p.family === 'facade')
    .map((p) => {
      const properties = (p.optionsSchema['properties'] ?? {}) as Record<string, unknown>;
      return 'port' in properties && 'host' in properties ? { name: p.name, options: { port: 0 } } : { name: p.name };
    });
}

const PREFIXES = [
  '/',
  '/v1/kv/',
  '/v1/cluster',
  '/v1/health',
  '/v1/ready',
  '/v1/openapi.json',
  '/metrics',
  '/d/',
  '/keys/',
  '/kvs/keys/',
  '/kvs/key-count',
  '/kvs/shards',
  '/kvs/shards/',
  '/get/',
  '/RPC2',
  '/_kvmesh/rpc',
];

const segment = fc.oneof(
  fc.constantFrom(
    '',
    '.',
    '..',
    '%2F',
    '%2E%2E',
    '%',
    '%zz',
    '%C3%28',
    '%00',
    '%FF',
    'key',
    '__proto__',
    'constructor',
  ),
  fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@-]{0,16}$/),
  fc.string({ unit: 'grapheme', maxLength: 8 }).map((s) => encodeURIComponent(s)),
  fc.integer({ min: 60, max: 200 }).map((n) => 'x'.repeat(n)),
);

/** A request target: one of the port's documented path templates with fuzzed parameters, or any prefix of the node's. */
function targetOn(templates: readonly string[]): fc.Arbitrary<string> {
  const path = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.tuple(fc.constantFrom(...templates), fc.array(segment, { minLength: 1, maxLength: 3 })),
    },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...PREFIXES), fc.array(segment, { maxLength: 3 })) },
  );
  return fc
    .tuple(
      path,
      fc.option(
        fc.oneof(
          segment.map((s) => `key=${s}`),
          segment,
        ),
        { nil: undefined },
      ),
    )
    .map(([[template, segments], query]) => {
      const filled = template.includes('{')
        ? template.replace(/\{[^}]+\}/g, () => segments.join('/'))
        : `${template}${segments.join('/')}`;
      return `${filled}${query === undefined ? '' : `?${query}`}`;
    });
}

/** Path templates of the node's OpenAPI document (`GET /v1/openapi.json`), by the URL of the port that answers them. */
async function templatesByPort(node: NodeServer): Promise<Map<string, string[]>> {
  const document = (await request(node.url, '/v1/openapi.json')).json<{
    paths: Record<string, { servers?: { url: string }[] }>;
  }>();
  const byPort = new Map<string, string[]>();
  for (const [path, item] of Object.entries(document.paths)) {
    const url = (item.servers?.[0]?.url ?? node.url).replace(/\/+$/, '');
    byPort.set(url, [...(byPort.get(url) ?? []), path]);
  }
  return byPort;
}

const xmlValue: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string({ maxLength: 12 }).map((s) => `<value><string>${escapeXml(s)}</string></value>`),
    fc.integer().map((n) => `<value><int>${n}</int></value>`),
    fc.constantFrom(
      '<value><nil/></value>',
      '<value><boolean>2</boolean></value>',
      '<value><double>x</double></value>',
    ),
    fc.array(tie('value'), { maxLength: 3 }).map((v) => `<value><array><data>${v.join('')}</data></array></value>`),
    fc
      .array(fc.tuple(fc.string({ maxLength: 6 }), tie('value')), { maxLength: 3 })
      .map(
        (m) =>
          `<value><struct>${m.map(([n, v]) => `<member><name>${escapeXml(n)}</name>${v}</member>`).join('')}</struct></value>`,
      ),
  ),
})).value;

const xmlCall = fc
  .tuple(
    fc.constantFrom('lookup', 'store', 'ping', 'system.listMethods', 'nosuch', ''),
    fc.array(xmlValue, { maxLength: 3 }),
  )
  .map(
    ([name, params]) =>
      `<?xml version="1.0"?><methodCall><methodName>${name}</methodName><params>${params.map((p) => `<param>${p}</param>`).join('')}</params></methodCall>`,
  );

const body = fc.oneof(
  fc.constant(''),
  fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc
    .record(
      { value: fc.jsonValue({ maxDepth: 2 }), 'causal-context': fc.jsonValue({ maxDepth: 2 }) },
      { requiredKeys: [] },
    )
    .map((v) => JSON.stringify(v)),
  xmlCall,
  fc.string({ maxLength: 200 }).map((s) => `<?xml version="1.0"?>${s}`),
  fc.constant(`<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "${'x'.repeat(50)}">]><methodCall>&e;</methodCall>`),
  fc.integer({ min: LIMITS.maxValueBytes - 2, max: LIMITS.maxValueBytes + 64 }).map((n) => Buffer.alloc(n, 'v')),
);

const header = (values: readonly string[]): fc.Arbitrary<string | undefined> =>
  fc.option(fc.oneof(fc.constantFrom(...values), fc.string({ maxLength: 40 }).filter(validHeaderValue)), {
    nil: undefined,
  });

const fuzzRequest = (templates: readonly string[]) =>
  fc.record({
    method: fc.constantFrom('GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS', 'BREW'),
    target: targetOn(templates),
    contentType: header([
      'application/json',
      'text/xml',
      'text/plain',
      'application/octet-stream',
      'multipart/form-data',
    ]),
    ifMatch: header(['*', '""', '"01a231d9ccdf-0000-n1"', 'W/"x"', '"a", "b"']),
    ifNoneMatch: header(['*', '"x"']),
    body,
  });

type FuzzRequest = ReturnType<typeof fuzzRequest> extends fc.Arbitrary<infer R> ? R : never;

const WRITES = new Set(['PUT', 'POST', 'DELETE', 'PATCH']);

async function exercise(
  t: ExecutionContext,
  base: string,
  what: string,
  node: NodeServer,
  templates: readonly string[],
): Promise<void> {
  let requests = 0;
  let failure: unknown;
  const statuses = new Map<number, number>();
  const run = fc.assert(
    fc.asyncProperty(fuzzRequest(templates), async (r: FuzzRequest) => {
      const headers: Record<string, string> = {};
      if (r.contentType !== undefined) headers['content-type'] = r.contentType;
      if (r.ifMatch !== undefined) headers['if-match'] = r.ifMatch;
      if (r.ifNoneMatch !== undefined) headers['if-none-match'] = r.ifNoneMatch;
      // node:http frames a GET, HEAD, DELETE or OPTIONS body only when told its length.
      if (r.body.length > 0) headers['content-length'] = String(Buffer.byteLength(r.body));
      const write = WRITES.has(r.method);
      const before = write ? await storedKeys(node.url) : 0;
      const answer = await request(
        base,
        r.target,
        { method: r.method, headers, body: r.body },
        ANSWER_TIMEOUT_MS,
      ).catch(async (err: unknown) => {
        const raw = await rawExchange(base, rawRequest(r, headers), 1).catch((e: Error) => e.message);
        const sent = `${r.method} ${r.target.slice(0, 120)} ${JSON.stringify(headers)} ${JSON.stringify(r.body.toString().slice(0, 200))}`;
        failure = new Error(`${sent}: ${(err as Error).message}; sent again on a raw socket: ${JSON.stringify(raw)}`);
        throw err;
      });
      requests++;
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      const shown = `${r.method} ${r.target.slice(0, 120)} -> ${answer.status} ${answer.body.toString().slice(0, 300)}`;
      if (answer.status >= 500) failure = new Error(`a 5xx: ${shown}`);
      else if (write && answer.status >= 400 && (await storedKeys(node.url)) !== before) {
        failure = new Error(`a refused request changed what is stored: ${shown}`);
      }
      if (failure !== undefined) throw failure;
    }),
    { numRuns: RUNS, seed: SEED, endOnFailure: true },
  );
  await run.catch((err: unknown) => {
    throw failure instanceof Error ? new Error(`${what}: ${failure.message}`, { cause: err }) : err;
  });
  const health = await request(node.url, '/v1/health');
  t.is(health.status, 200, `${what}: the node still serves`);
  t.log(`${what}: ${requests} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
}

async function fuzzNode(t: ExecutionContext): Promise<{ node: NodeServer; templates: Map<string, string[]> }> {
  t.log(`seed ${SEED} (FUZZ_SEED=${SEED} replays it), ${RUNS} requests per port`);
  // A view of this node alone, at its own address: a node outside its view serves no keys (503 by design).
  const port = await freePort([HOST]);
  const node = await startTestServer(t, {
    ...testConfig(HOST, {
      limits: LIMITS,
      api: API,
      membership: { name: 'static', options: { view: `n1@${HOST}:${port}` } },
      facades: facadeEntries(),
    }),
    node: { id: 'n1', address: `${HOST}:${port}` },
  });
  return { node, templates: await templatesByPort(node) };
}

test('random requests on the node port (native API and the facades on it) answer no 5xx and write nothing when refused', async (t) => {
  const { node, templates } = await fuzzNode(t);
  await exercise(t, node.url, 'node port', node, templates.get(node.url)!);
});

test('random requests on every facade port answer no 5xx and write nothing when refused', async (t) => {
  const { node, templates } = await fuzzNode(t);
  for (const facade of node.facades.filter((f) => f.url !== node.url)) {
    const own = templates.get(facade.url.replace(/\/+$/, ''));
    t.truthy(own, `facade ${facade.name} documents its paths at ${facade.url}`);
    await exercise(t, facade.url, `facade ${facade.name}`, node, own ?? PREFIXES);
  }
  t.true(
    node.facades.some((f) => f.url !== node.url),
    'at least one facade has a port of its own',
  );
});

test('pipelined and malformed bytes on raw sockets: every answer is HTTP, and the node still serves', async (t) => {
  const { node } = await fuzzNode(t);
  const ports = [node.url, ...node.facades.filter((f) => f.url !== node.url).map((f) => f.url)];
  const valid = (method: string, path: string, value = ''): string =>
    `${method} ${path} HTTP/1.1\r\nHost: a\r\nContent-Length: ${Buffer.byteLength(value)}\r\n\r\n${value}`;
  const junk = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 300 }), { numRuns: 20, seed: SEED });
  for (const base of ports) {
    const pipelined = await rawExchange(
      base,
      valid('PUT', '/v1/kv/p', 'one') + valid('GET', '/d/p') + valid('DELETE', '/keys/p') + valid('GET', '/v1/kv/p'),
      4,
    );
    for (const line of pipelined.split('\r\n').filter((l) => l.startsWith('HTTP/'))) {
      t.regex(line, /^HTTP\/1\.1 [1-4]\d\d /, `${base}: ${line}`);
    }
    for (const bytes of junk) {
      const answer = await rawExchange(
        base,
        Buffer.concat([Buffer.from(valid('GET', '/v1/health')), Buffer.from(bytes)]),
        // The health answer, then the junk's (a 400 and a close), or none: junk that may begin a request is
        // held by the server until the sending side ends.
        2,
        { endAfter: 1 },
      );
      for (const line of answer.split('\r\n').filter((l) => l.startsWith('HTTP/'))) {
        t.regex(line, /^HTTP\/1\.1 [1-4]\d\d /, `${base}: ${line}`);
      }
    }
    t.is((await request(base, '/v1/health')).status === 200 || base !== node.url, true);
  }
  t.is((await request(node.url, '/v1/health')).status, 200);
});

/** `r` as the bytes a client sends, for a failure's report. */
function rawRequest(r: FuzzRequest, headers: Record<string, string>): Buffer {
  const body = Buffer.from(r.body);
  const lines = [
    `${r.method} ${r.target} HTTP/1.1`,
    'Host: fuzz',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  if (body.length > 0) lines.push(`Content-Length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function validHeaderValue(s: string): boolean {
  return /^[\t\x20-\x7e]*$/.test(s);
}
