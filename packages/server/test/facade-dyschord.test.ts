import { execFile, spawnSync } from 'node:child_process';
import test from 'ava';
import { PluginRegistry, isKvError, runFacadeConformance, validateConfig } from '@kvmesh/core';
import { builtinPlugins, dyschordConformance, dyschordFacade } from '@kvmesh/plugins';
import { facadeConformanceHost } from '../src/facade-conformance-host.js';
import { http } from './helpers/http.js';
import { startTestServer, testConfig } from './helpers/node.js';

runFacadeConformance(test, {
  title: 'dyschord on the node port',
  facade: dyschordFacade,
  host: facadeConformanceHost,
  ...dyschordConformance,
});

const PYTHON = spawnSync('python3', ['--version']).status === 0 ? 'python3' : undefined;
/** One Python process on a loaded machine. */
const PYTHON_TIMEOUT_MS = 30_000;

/** Runs a python3 script with `argv[1]` = url; resolves to the JSON it prints. */
function python(script: string, url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON!, ['-c', script, url], { timeout: PYTHON_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python3 failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as unknown);
    });
  });
}

const CLIENT_SCRIPT = `
import json, sys, xmlrpc.client as x
s = x.ServerProxy(sys.argv[1], allow_none=True)
out = {}
out['store'] = s.store('doc', {'name': 'Ada', 'langs': ['en', 'fr'], 'born': 1815, 'ratio': 0.5, 'alive': False, 'none': None})
out['doc'] = s.lookup('doc')
s.store('text', 'plain words')
out['text'] = s.lookup('text')
s.store('number', 7)
out['number'] = s.lookup('number')
s.store('bytes', x.Binary(b'\\x00\\xffraw'))
out['bytes'] = list(s.lookup('bytes').data)
try:
    s.lookup('missing')
except x.Fault as f:
    out['missing'] = [f.faultCode, f.faultString]
try:
    s.lookup(5)
except x.Fault as f:
    out['intKey'] = [f.faultCode, f.faultString]
try:
    s.erase('doc')
except x.Fault as f:
    out['unknown'] = f.faultCode
out['native'] = s.lookup('written-natively')
out['methods'] = s.system.listMethods()
print(json.dumps(out))
`;

test('a stock Python XML-RPC client stores and looks up JSON values, and the native API reads the same data', async (t) => {
  if (PYTHON === undefined) {
    t.log('python3 is not installed: skipping the stock client test');
    t.pass();
    return;
  }
  const server = await startTestServer(t, testConfig('127.0.0.1', { facades: [{ name: 'dyschord' }] }));
  t.is(
    (
      await http(server.url, '/v1/kv/written-natively', {
        method: 'PUT',
        body: '{"from":"native"}',
        headers: { 'content-type': 'application/json' },
      })
    ).status,
    201,
  );
  const out = (await python(CLIENT_SCRIPT, server.url)) as Record<string, unknown>;
  t.is(out['store'], null, 'store answers None');
  t.deepEqual(out['doc'], { name: 'Ada', langs: ['en', 'fr'], born: 1815, ratio: 0.5, alive: false, none: null });
  t.is(out['text'], 'plain words');
  t.is(out['number'], 7);
  t.deepEqual(out['bytes'], [0, 255, 114, 97, 119]);
  t.deepEqual(out['missing'], [404, 'missing'], "dyschord's fault: code 404, the key as faultString");
  t.deepEqual(out['intKey'], [-32602, 'lookup(key): key must be a string (found int)']);
  t.is(out['unknown'], -32601);
  t.deepEqual(out['native'], { from: 'native' });
  t.true((out['methods'] as string[]).includes('lookup'));

  const doc = await http(server.url, '/v1/kv/doc');
  t.is(doc.status, 200);
  t.is(doc.headers['content-type'], 'application/json');
  t.deepEqual(doc.json(), { name: 'Ada', langs: ['en', 'fr'], born: 1815, ratio: 0.5, alive: false, none: null });
  const text = await http(server.url, '/v1/kv/text');
  t.is(text.body.toString(), '"plain words"', 'a string is stored as a JSON string');
  const bytes = await http(server.url, '/v1/kv/bytes');
  t.is(bytes.headers['content-type'], 'application/octet-stream');
  t.deepEqual([...bytes.body], [0, 255, 114, 97, 119]);
});

test('the examples kvmesh up prints are curl lines with an XML-RPC body and a python3 line, all naming the node', async (t) => {
  const server = await startTestServer(t, testConfig('127.0.0.1', { facades: [{ name: 'dyschord' }] }));
  const doc = (await http(server.url, '/v1/openapi.json')).json() as { 'x-kvmesh-facades': { examples: string[] }[] };
  const examples = doc['x-kvmesh-facades'][0]!.examples;
  t.is(examples.length, 3);
  t.regex(examples[0]!, /^curl .*<methodName>store<\/methodName>.* http:\/\/127\.0\.0\.1:\d+\/RPC2$/);
  t.regex(examples[1]!, /^curl .*<methodName>lookup<\/methodName>/);
  t.regex(examples[2]!, /^python3 -c .*ServerProxy\('http:\/\/127\.0\.0\.1:\d+'/);
  if (PYTHON === undefined) {
    t.log('python3 is not installed: the python line is not run');
    return;
  }
  const printed = await new Promise<string>((resolve, reject) => {
    execFile('sh', ['-c', examples[2]!], { timeout: PYTHON_TIMEOUT_MS }, (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    );
  });
  t.is(printed.trim(), "{'text': 'hello'}", 'the python line runs as printed');
});

const registry = new PluginRegistry(builtinPlugins);
const chordTopology = (
  facadeOptions: Record<string, unknown>,
  rest: Record<string, unknown> = {},
): Record<string, unknown> => ({
  storage: { name: 'memory' },
  placement: { name: 'chord' },
  facades: [{ name: 'dyschord', options: facadeOptions }],
  ...rest,
});

test("dyschord.conf's keys in the facade's options become node.id, node.address, join and the ring's heartbeat and metric", (t) => {
  const config = validateConfig(
    chordTopology({
      cloud_members: ['http://localhost:10000', 'http://localhost:10001/', '127.0.0.3:10002'],
      heartbeat: 0.5,
      node_id: 3,
      port: 10003,
      metric: 'trivial',
      log_requests: true,
      proxy_verbose: false,
    }),
    registry,
  );
  t.is(config.node.id, '3');
  t.is(config.node.address, '127.0.0.1:10003');
  t.deepEqual(config.join, ['localhost:10000', 'localhost:10001', '127.0.0.3:10002']);
  t.like(config.placement?.options, { heartbeatMs: 500, metric: 'trivial' });
});

function problemsOf(document: Record<string, unknown>): { path: string; message: string }[] {
  try {
    validateConfig(document, registry);
  } catch (err) {
    if (isKvError(err)) return err.details?.['problems'] as { path: string; message: string }[];
    throw err;
  }
  return [];
}

test('a section that contradicts a dyschord.conf key is reported at the key, naming both JSON paths', (t) => {
  const problems = problemsOf(
    chordTopology(
      { port: 10003, metric: 'trivial' },
      { node: { address: '127.0.0.2:7700' }, placement: { name: 'chord', options: { metric: 'md5' } } },
    ),
  );
  const at = (path: string): string => problems.find((p) => p.path === path)?.message ?? '';
  t.deepEqual(problems.map((p) => p.path).sort(), ['/facades/0/options/metric', '/facades/0/options/port']);
  t.regex(
    at('/facades/0/options/port'),
    /gives \/node\/address the value "127\.0\.0\.2:10003", but the file sets \/node\/address to "127\.0\.0\.2:7700"/,
  );
  t.regex(
    at('/facades/0/options/metric'),
    /\/placement\/options\/metric the value "trivial", but the file sets .* to "md5"/,
  );
});

test('a cloud member that is neither a peer URL nor host:port is reported at the member', (t) => {
  const problems = problemsOf(
    chordTopology({ port: 10003, cloud_members: ['http://localhost:10000', 'ftp://nowhere'] }),
  );
  const member = problems.find((p) => p.path === '/facades/0/options/cloud_members/1');
  t.truthy(member, JSON.stringify(problems));
  t.regex(member!.message, /must match pattern .* \(found "ftp:\/\/nowhere"\)/);
});
