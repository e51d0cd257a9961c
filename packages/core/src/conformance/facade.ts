import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { ExecutionContext, TestFn } from 'ava';
import type { AnyPluginManifest } from '../plugin.js';

/** One request of a facade's table, sent exactly as written (the path is not re-encoded). */
export interface FacadeRequest {
  readonly method: string;
  /** Path and query, percent-encoded as the client sends them: `/d/greeting`, `/get/?key=a%20b`. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
}

/** The exact answer a case expects. */
export interface FacadeExpectation {
  readonly status: number;
  /** The body byte for byte (text is UTF-8). With none of `body`, `json`, `bodyMatches`, the body must be empty. */
  readonly body?: string | Uint8Array;
  /**
   * The body as UTF-8 text matches this, for answers that carry what the
   * table cannot know in advance (the node's port, a version); prefer `body`.
   */
  readonly bodyMatches?: RegExp;
  /** The body parsed as JSON, compared deeply (its Content-Type must be JSON). */
  readonly json?: unknown;
  /**
   * Headers that must be present with exactly this value (or matching the
   * RegExp), or absent (`null`). Names in lower case. Others are not checked.
   */
  readonly headers?: Readonly<Record<string, string | RegExp | null>>;
}

/** One row of the table: a request and its exact answer. */
export interface FacadeCase {
  /** What the row shows: `'GET of a key never written is 404'`. */
  readonly title: string;
  readonly request: FacadeRequest;
  readonly expect: FacadeExpectation;
  /**
   * The request is bad input: besides matching `expect` (a 4xx), the answer
   * must be in the facade's error format (`errorFormat`).
   */
  readonly badInput?: boolean;
}

/** An answer as the suite received it, for `errorFormat`. */
export interface FacadeAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * A request of the facade that carries a key, as a template: `{key}` in the
 * path stands for the key percent-encoded (the suite also puts malformed
 * escapes there), `{key}` in the body for the key as text, `{value}` in the
 * body for a value. From each the suite makes bad input of its own: a key
 * that is malformed percent-encoding, that is not UTF-8, that is empty, that
 * is one byte longer than the node's `limits.maxKeyBytes`, and (with
 * `{value}`) a value one byte larger than `limits.maxValueBytes`.
 */
export interface FacadeKeyRequest {
  readonly method: string;
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** What a facade declares about itself for the suite: its table, its error format, its key requests. */
export interface FacadeConformanceTable {
  /**
   * Rows run in order on one fresh node (memory storage, placement
   * `single`, limits `FACADE_CONFORMANCE_LIMITS`): a row sees what the rows
   * before it wrote. Answers must match exactly.
   */
  readonly cases: readonly FacadeCase[];
  /**
   * Whether an answer is in the facade's own error format (status, content
   * type, body shape): what is wrong with it, or undefined when it is. Every
   * bad-input row and every answer to the suite's own bad input must pass.
   */
  readonly errorFormat: (answer: FacadeAnswer) => string | undefined;
  /** The facade's requests that carry a key; the suite derives bad input from them. Default: none. */
  readonly keyRequests?: readonly FacadeKeyRequest[];
  /**
   * For protocols that carry failures in the body of a success (an XML-RPC
   * fault is HTTP 200): the status every bad-input answer has. Default: bad
   * input is answered with a 4xx. Either way it is never a 5xx.
   */
  readonly faultStatus?: number;
}

/** Where the facade under test answers, on a node the host started. */
export interface FacadeUnderTest {
  /** Base URL of the facade: its own port's, or the node's. */
  readonly url: string;
  /** Base URL of the node's API (`GET /v1/openapi.json` is there). */
  readonly nodeUrl: string;
  /** Stops the node and closes every port; idempotent. */
  readonly stop: () => Promise<void>;
}

/** What the host is asked to start. */
export interface FacadeHostSetup {
  /** The facade plugin, registered as it is given (replacing a built-in of the same name). */
  readonly facade: AnyPluginManifest;
  /** Its options, as in a `facades` entry. */
  readonly options: Readonly<Record<string, unknown>>;
  /** The node's `limits` section. */
  readonly limits: { readonly maxKeyBytes: number; readonly maxValueBytes: number };
}

/**
 * Starts one node in this process on loopback, with memory storage,
 * placement `single` and the facade mounted: `facadeConformanceHost` from
 * `@kvmesh/server` is the one kvmesh itself uses.
 */
export type FacadeHost = (setup: FacadeHostSetup) => Promise<FacadeUnderTest>;

export interface FacadeConformanceOptions extends FacadeConformanceTable {
  /** The facade plugin under test. */
  readonly facade: AnyPluginManifest;
  /** Its options (e.g. `{ port: 0 }` for a port of its own). Default `{}`. */
  readonly options?: Readonly<Record<string, unknown>>;
  readonly host: FacadeHost;
  /** Prefix of every test title. Default `facade '<name>'`. */
  readonly title?: string;
}

/** The limits of the node the suite starts: small, so over-limit input is cheap to send. */
export const FACADE_CONFORMANCE_LIMITS = Object.freeze({ maxKeyBytes: 64, maxValueBytes: 1024 });

/** How long one answer may take on a loaded machine before the suite gives up on it. */
const REQUEST_TIMEOUT_MS = 10_000;
const UNKNOWN_PATH = '/kvmesh-conformance/no-such-route';
const JSON_CONTENT = /^application\/(?:[\w.+-]+\+)?json\b/;
const DOCUMENTED_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/**
 * The contract tests every facade runs unchanged, built-in or third-party:
 * its declared table answers exactly (status, body, the headers it names);
 * bad input, the table's and the suite's own (malformed, non-UTF-8, empty and
 * over-long keys, over-large values, unknown paths on its own port), is
 * answered 4xx in the facade's own error format, never 5xx; every route of
 * the table is in the node's OpenAPI document under the facade's tag; its
 * curl examples name where it answers.
 *
 * `runFacadeConformance(test, { facade, host: facadeConformanceHost, ...table })`.
 */
export function runFacadeConformance(test: TestFn, options: FacadeConformanceOptions): void {
  const prefix = options.title ?? `facade '${options.facade.name}'`;

  const started = async (t: ExecutionContext): Promise<FacadeUnderTest> => {
    const node = await options.host({
      facade: options.facade,
      options: options.options ?? {},
      limits: FACADE_CONFORMANCE_LIMITS,
    });
    t.teardown(() => node.stop());
    return node;
  };

  test(`${prefix} › answers its declared table exactly`, async (t) => {
    t.true(options.cases.length > 0, 'the table declares at least one case');
    const node = await started(t);
    for (const row of options.cases) {
      const answer = await send(node.url, row.request);
      const problems = [...mismatches(answer, row.expect)];
      if (row.badInput) problems.push(...badInputProblems(answer, options));
      t.deepEqual(problems, [], `${row.title}: ${row.request.method} ${row.request.path}`);
    }
  });

  test(`${prefix} › answers the suite's bad input in its own error format, never 5xx`, async (t) => {
    const node = await started(t);
    const probes = badInputProbes(options.keyRequests ?? []);
    if (node.url !== node.nodeUrl) probes.push({ what: 'an unknown path on its own port', request: get(UNKNOWN_PATH) });
    if (probes.length === 0) {
      t.log('no key requests declared and no port of its own: the table is the only bad input');
      t.pass();
      return;
    }
    for (const probe of probes) {
      const answer = await send(node.url, probe.request);
      t.deepEqual(
        badInputProblems(answer, options),
        [],
        `${probe.what}: ${probe.request.method} ${probe.request.path.slice(0, 120)}`,
      );
    }
    t.log(
      `${probes.length} bad requests, every one answered ${options.faultStatus ?? '4xx'} in the facade's error format`,
    );
  });

  test(`${prefix} › documents every route of its table in the node's OpenAPI document`, async (t) => {
    const node = await started(t);
    const doc = JSON.parse((await send(node.nodeUrl, get('/v1/openapi.json'))).body.toString('utf8')) as {
      paths?: Record<string, Record<string, { tags?: string[] }>>;
    };
    const templates = Object.entries(doc.paths ?? {}).map(([path, item]) => ({
      match: templateRegExp(path),
      methods: DOCUMENTED_METHODS.filter((m) => item[m]?.tags?.includes(options.facade.name)),
    }));
    for (const row of options.cases) {
      if (row.badInput) continue;
      const path = row.request.path.split('?')[0]!;
      const method = row.request.method.toLowerCase();
      const documented = templates.some(
        (tpl) =>
          tpl.match.test(path) && (tpl.methods.includes(method) || (method === 'head' && tpl.methods.includes('get'))),
      );
      t.true(
        documented,
        `${row.request.method} ${path} (${row.title}) is documented under the tag '${options.facade.name}'`,
      );
    }
  });

  test(`${prefix} › gives curl examples for where it answers`, async (t) => {
    const node = await started(t);
    const doc = JSON.parse((await send(node.nodeUrl, get('/v1/openapi.json'))).body.toString('utf8')) as Record<
      string,
      unknown
    >;
    const listed = (doc['x-kvmesh-facades'] as { name: string; url: string; examples: string[] }[] | undefined)?.find(
      (f) => f.name === options.facade.name,
    );
    t.truthy(listed, 'the document lists the facade in x-kvmesh-facades');
    t.is(listed?.url, node.url);
    t.true((listed?.examples.length ?? 0) > 0, 'at least one example');
    for (const line of listed?.examples ?? []) t.true(line.includes(node.url), `${line} uses ${node.url}`);
  });
}

interface Probe {
  readonly what: string;
  readonly request: FacadeRequest;
}

/** The suite's own bad input, from the facade's key requests. */
function badInputProbes(templates: readonly FacadeKeyRequest[]): Probe[] {
  const long = 'k'.repeat(FACADE_CONFORMANCE_LIMITS.maxKeyBytes + 1);
  const large = 'v'.repeat(FACADE_CONFORMANCE_LIMITS.maxValueBytes + 1);
  const probes: Probe[] = [];
  for (const template of templates) {
    const inPath = template.path.includes('{key}');
    const keys: { what: string; path: string; text: string }[] = [
      { what: 'an empty key', path: '', text: '' },
      {
        what: `a key of ${long.length} bytes (limit ${FACADE_CONFORMANCE_LIMITS.maxKeyBytes})`,
        path: long,
        text: long,
      },
    ];
    if (inPath) {
      keys.push(
        { what: 'a key with a malformed percent escape', path: '%zz', text: '' },
        { what: 'a key whose escapes are not UTF-8', path: '%C0%AF', text: '' },
      );
    }
    for (const key of keys) {
      probes.push({ what: `${template.method}: ${key.what}`, request: fill(template, key.path, key.text, 'v') });
    }
    if (template.body?.includes('{value}')) {
      probes.push({
        what: `${template.method}: a value of ${large.length} bytes (limit ${FACADE_CONFORMANCE_LIMITS.maxValueBytes})`,
        request: fill(template, 'conformance-large', 'conformance-large', large),
      });
    }
  }
  return probes;
}

function fill(template: FacadeKeyRequest, pathKey: string, textKey: string, value: string): FacadeRequest {
  return {
    method: template.method,
    path: template.path.replaceAll('{key}', pathKey),
    ...(template.headers ? { headers: template.headers } : {}),
    ...(template.body !== undefined
      ? { body: template.body.replaceAll('{key}', textKey).replaceAll('{value}', value) }
      : {}),
  };
}

function get(path: string): FacadeRequest {
  return { method: 'GET', path };
}

function badInputProblems(answer: FacadeAnswer, table: FacadeConformanceTable): string[] {
  const problems: string[] = [];
  if (answer.status >= 500)
    problems.push(`bad input must never be a 5xx (got ${answer.status}: ${preview(answer.body)})`);
  else if (table.faultStatus !== undefined) {
    if (answer.status !== table.faultStatus)
      problems.push(`bad input must be a fault with status ${table.faultStatus} (got ${answer.status})`);
  } else if (answer.status < 400) problems.push(`bad input must be refused with a 4xx (got ${answer.status})`);
  const format = table.errorFormat(answer);
  if (format !== undefined) problems.push(`not in the facade's error format: ${format} (body ${preview(answer.body)})`);
  return problems;
}

function* mismatches(answer: FacadeAnswer, expect: FacadeExpectation): Generator<string> {
  if (answer.status !== expect.status)
    yield `status ${answer.status}, expected ${expect.status} (body ${preview(answer.body)})`;
  if (expect.json !== undefined) {
    const type = String(answer.headers['content-type'] ?? '');
    if (!JSON_CONTENT.test(type)) yield `Content-Type ${JSON.stringify(type)} is not JSON`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer.body.toString('utf8'));
    } catch {
      yield `body is not JSON: ${preview(answer.body)}`;
      return;
    }
    if (!deepEqual(parsed, expect.json))
      yield `body ${JSON.stringify(parsed)}, expected ${JSON.stringify(expect.json)}`;
  } else if (expect.bodyMatches !== undefined) {
    if (!expect.bodyMatches.test(answer.body.toString('utf8')))
      yield `body ${preview(answer.body)} does not match ${expect.bodyMatches}`;
  } else {
    const wanted = expect.body === undefined ? Buffer.alloc(0) : Buffer.from(expect.body);
    if (!answer.body.equals(wanted)) yield `body ${preview(answer.body)}, expected ${preview(wanted)}`;
  }
  for (const [name, value] of Object.entries(expect.headers ?? {})) {
    const got = answer.headers[name.toLowerCase()];
    const text = Array.isArray(got) ? got.join(', ') : got;
    if (value === null) {
      if (text !== undefined) yield `header ${name} is ${JSON.stringify(text)}, expected none`;
    } else if (text === undefined) yield `header ${name} is missing`;
    else if (value instanceof RegExp ? !value.test(text) : text !== value) {
      yield `header ${name} is ${JSON.stringify(text)}, expected ${String(value)}`;
    }
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function preview(body: Buffer): string {
  const text = JSON.stringify(body.toString('utf8'));
  return text.length > 160 ? `${text.slice(0, 157)}..."` : text;
}

/** `/d/{key}` → a RegExp matching concrete paths: a parameter is one segment or more (keys may hold slashes). */
function templateRegExp(template: string): RegExp {
  const parts = template.split(/\{[^}]+\}/).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.+')}$`);
}

/** One request on a fresh connection, the path sent as written. */
function send(base: string, req: FacadeRequest): Promise<FacadeAnswer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const body = req.body === undefined ? undefined : Buffer.from(req.body);
    const outgoing = request(
      {
        host: url.hostname,
        port: url.port,
        method: req.method,
        path: req.path,
        headers: { ...(body !== undefined ? { 'content-length': String(body.length) } : {}), ...req.headers },
        agent: false,
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}
