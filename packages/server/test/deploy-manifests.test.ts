import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { PluginRegistry, loadConfig } from '@kvmesh/core';
import type { KvmeshConfig } from '@kvmesh/core';
import { builtinPlugins } from '@kvmesh/plugins';
import { checkConfigFile } from '../src/check-config.js';
import { buildProgram } from '../src/cli/main.js';
import { SERVER_CONFIG_EXTENSIONS, apiSettings, splitHostPort } from '../src/settings.js';

// What the Dockerfile and deploy/kubernetes hand a node, checked against what
// `kvmesh start` takes: every object against the Kubernetes schemas, each
// overlay rendered as kustomize does (resources, strategic-merge and JSON 6902
// patches), and for every pod of every StatefulSet the command line the
// image's entrypoint runs and the config it names, loaded with that pod's
// environment.

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const KUBERNETES = join(ROOT, 'deploy/kubernetes');
/** The image's WORKDIR: `COPY configs configs` puts the repository's configs/ there. */
const IMAGE_WORKDIR = '/app';

type Obj = Record<string, any>;

/** The models of the kinds the manifests use; a new kind needs its model here. */
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'v1/Service': Service,
  'v1/Secret': Secret,
  'v1/ConfigMap': ConfigMap,
};

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await yamlFiles(path)));
    else if (/\.ya?ml$/.test(entry.name)) out.push(path);
  }
  return out.sort();
}

async function readYaml(file: string): Promise<unknown[]> {
  const docs = parseAllDocuments(await readFile(file, 'utf8'));
  if (!Array.isArray(docs)) throw new Error(`${file}: not a YAML stream`);
  return docs.map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS() as unknown;
  });
}

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function validate(obj: Obj, where: string): void {
  const Model = MODELS[`${obj['apiVersion']}/${obj['kind']}`];
  if (Model === undefined) throw new Error(`${where}: no model for ${obj['apiVersion']} ${obj['kind']}; add one`);
  new Model(obj).validate();
}

// --- kustomize, as far as these manifests use it ---

/** Lists that strategic merge patches merge by a key (the Kubernetes API's patchMergeKey); other lists are replaced. */
const MERGE_KEYS: Readonly<Record<string, string>> = {
  containers: 'name',
  initContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  volumeClaimTemplates: 'metadata.name',
};

function keyOf(item: unknown, key: string): unknown {
  return key.split('.').reduce<unknown>((v, part) => (isObject(v) ? v[part] : undefined), item);
}

/** A strategic merge as kustomize does it: keyed lists give the patch's items first, then the base's others. */
function strategicMerge(base: unknown, patch: unknown, field = ''): unknown {
  if (isObject(base) && isObject(patch)) {
    const out: Obj = { ...base };
    for (const [k, v] of Object.entries(patch)) {
      if (k === 'ports') throw new Error('ports differ in merge key between kinds: change them with a JSON 6902 patch');
      out[k] = k in base ? strategicMerge(base[k], v, k) : v;
    }
    return out;
  }
  const key = MERGE_KEYS[field];
  if (Array.isArray(base) && Array.isArray(patch) && key !== undefined) {
    const merged = patch.map((item) => {
      const match = base.find((b) => keyOf(b, key) === keyOf(item, key));
      return match === undefined ? item : strategicMerge(match, item);
    });
    const rest = base.filter((b) => !patch.some((item) => keyOf(item, key) === keyOf(b, key)));
    return [...merged, ...rest];
  }
  return patch;
}

/** RFC 6902 replace, add and remove, the operations the overlays use. */
function jsonPatch(target: Obj, ops: readonly Obj[], where: string): void {
  for (const op of ops) {
    const parts = String(op['path'])
      .split('/')
      .slice(1)
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = parts.pop()!;
    let parent: any = target;
    for (const part of parts) {
      parent = Array.isArray(parent) ? parent[Number(part)] : parent?.[part];
      if (parent === undefined) throw new Error(`${where}: ${op['path']}: no such path`);
    }
    const exists = Array.isArray(parent) ? Number(last) < parent.length : last in parent;
    if (op['op'] === 'replace' || op['op'] === 'remove') {
      if (!exists) throw new Error(`${where}: ${op['op']} ${op['path']}: no such path`);
      if (op['op'] === 'remove') {
        if (Array.isArray(parent)) parent.splice(Number(last), 1);
        else delete parent[last];
      } else parent[Array.isArray(parent) ? Number(last) : last] = op['value'];
    } else if (op['op'] === 'add') {
      if (Array.isArray(parent)) parent.splice(last === '-' ? parent.length : Number(last), 0, op['value']);
      else parent[last] = op['value'];
    } else throw new Error(`${where}: unsupported patch op ${String(op['op'])}`);
  }
}

const KUSTOMIZATION_KEYS = new Set(['apiVersion', 'kind', 'resources', 'patches']);

/** The objects `kubectl kustomize DIR` prints (in resource order). */
async function render(dir: string): Promise<Obj[]> {
  const [k] = await readYaml(join(dir, 'kustomization.yaml'));
  if (!isObject(k) || k['kind'] !== 'Kustomization') throw new Error(`${dir}: not a Kustomization`);
  for (const key of Object.keys(k)) {
    if (!KUSTOMIZATION_KEYS.has(key)) throw new Error(`${dir}: this test does not render '${key}'; teach it`);
  }
  let objects: Obj[] = [];
  for (const resource of (k['resources'] ?? []) as string[]) {
    const path = resolve(dir, resource);
    if ((await stat(path)).isDirectory()) objects.push(...(await render(path)));
    else objects.push(...((await readYaml(path)) as Obj[]));
  }
  for (const p of (k['patches'] ?? []) as Obj[]) {
    const where = `${relative(ROOT, dir)}: ${p['path']}`;
    const [patch] = await readYaml(resolve(dir, String(p['path'])));
    if (Array.isArray(patch)) {
      const target = p['target'] as Obj;
      const hits = objects.filter((o) => o['kind'] === target['kind'] && o['metadata']?.name === target['name']);
      if (hits.length === 0) throw new Error(`${where}: no ${target['kind']} ${target['name']} to patch`);
      for (const hit of hits) jsonPatch(hit, patch as Obj[], where);
    } else if (isObject(patch)) {
      const i = objects.findIndex(
        (o) => o['kind'] === patch['kind'] && o['metadata']?.name === patch['metadata']?.name,
      );
      if (i < 0) throw new Error(`${where}: no ${patch['kind']} ${patch['metadata']?.name} to patch`);
      objects = objects.map((o, j) => (j === i ? (strategicMerge(o, patch) as Obj) : o));
    } else throw new Error(`${where}: neither a strategic merge patch nor a JSON 6902 one`);
  }
  return structuredClone(objects);
}

async function kustomizations(): Promise<string[]> {
  return (await yamlFiles(KUBERNETES)).filter((f) => f.endsWith('/kustomization.yaml')).map((f) => dirname(f));
}

// --- the image ---

interface Image {
  readonly workdir: string;
  readonly env: Readonly<Record<string, string>>;
  readonly volumes: readonly string[];
  readonly exposed: readonly number[];
  readonly entrypoint: readonly string[];
  readonly healthcheck: readonly string[];
  /** `COPY <src> <dest>` of the build context (not --from) in the final stage: source → destination under WORKDIR. */
  readonly copies: ReadonlyMap<string, string>;
}

/** The final stage of the Dockerfile: its ENV, VOLUME, EXPOSE, ENTRYPOINT, HEALTHCHECK and context COPYs. */
async function image(): Promise<Image> {
  const text = (await readFile(join(ROOT, 'Dockerfile'), 'utf8')).replace(/\\\n/g, ' ');
  const stages = text.split(/^FROM /m);
  const lines = stages[stages.length - 1]!.split('\n').map((l) => l.trim());
  const env: Record<string, string> = {};
  const volumes: string[] = [];
  const exposed: number[] = [];
  const copies = new Map<string, string>();
  let entrypoint: string[] = [];
  let healthcheck: string[] = [];
  let workdir = '/';
  for (const line of lines) {
    const [instruction, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (instruction === 'WORKDIR') {
      workdir = posix.resolve(workdir, args);
    } else if (instruction === 'ENV') {
      for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g))
        env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
    } else if (instruction === 'VOLUME') {
      volumes.push(...(args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/)));
    } else if (instruction === 'EXPOSE') {
      exposed.push(...args.split(/\s+/).map((p) => Number(p.split('/')[0])));
    } else if (instruction === 'ENTRYPOINT') {
      entrypoint = JSON.parse(args) as string[];
    } else if (instruction === 'HEALTHCHECK') {
      healthcheck = JSON.parse(args.slice(args.indexOf('CMD ') + 4)) as string[];
    } else if (instruction === 'COPY' && !args.startsWith('--from')) {
      const [src, dest] = args.split(/\s+/);
      copies.set(src!, posix.resolve(workdir, dest!));
    }
  }
  return { workdir, env, volumes, exposed, entrypoint, healthcheck, copies };
}

/** The repository file that a path in the image comes from (a context COPY), if any. */
function sourceOf(img: Image, imagePath: string): string | undefined {
  for (const [src, dest] of img.copies) {
    if (imagePath === dest || imagePath.startsWith(`${dest}/`)) return join(ROOT, src, imagePath.slice(dest.length));
  }
  return undefined;
}

/**
 * The command line deploy/docker/entrypoint.sh runs for these arguments: no
 * arguments or flags only, and `start`, become `kvmesh start --config
 * "$KVMESH_CONFIG" --data-dir "$KVMESH_DATA_DIR" ...`; any other command runs as given.
 */
function entrypointArgv(args: readonly string[], env: Readonly<Record<string, string>>): string[] {
  const first = args[0];
  if (first !== undefined && first !== 'start' && !first.startsWith('-')) return [...args];
  const flags = first === 'start' ? args.slice(1) : args;
  return ['start', '--config', env['KVMESH_CONFIG']!, '--data-dir', env['KVMESH_DATA_DIR']!, ...flags];
}

interface StartFlags {
  config: string;
  address?: string;
  dataDir?: string;
  id?: string;
  port?: number;
  join?: string[];
  role?: string;
  logLevel?: string;
}

/** Parses argv with the real `kvmesh` program (its options and their checks); throws on what it refuses. */
async function parseStart(argv: readonly string[]): Promise<StartFlags> {
  const program = buildProgram().exitOverride();
  program.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  let flags: StartFlags | undefined;
  for (const command of program.commands) {
    command.exitOverride();
    command.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  }
  program.commands
    .find((c) => c.name() === 'start')!
    .action(function (this: { opts(): StartFlags }) {
      flags = this.opts();
    });
  await program.parseAsync(['node', 'kvmesh', ...argv]);
  if (flags === undefined) throw new Error(`not a start command: ${argv.join(' ')}`);
  return flags;
}

/** The config `kvmesh start` runs with these flags and environment (the flags as its overrides). */
async function startConfig(flags: StartFlags, env: Readonly<Record<string, string>>): Promise<KvmeshConfig> {
  const replacePort = (a: string): string => `${a.slice(0, a.lastIndexOf(':'))}:${flags.port}`;
  const overrides: Record<string, unknown> = {
    '/node/address':
      flags.port === undefined
        ? flags.address
        : flags.address !== undefined
          ? replacePort(flags.address)
          : (current: unknown) => (typeof current === 'string' ? replacePort(current) : current),
    '/node/dataDir': flags.dataDir,
    '/node/id': flags.id,
    '/node/role': flags.role,
    '/join': flags.join,
    '/log/level': flags.logLevel,
  };
  for (const k of Object.keys(overrides)) if (overrides[k] === undefined) delete overrides[k];
  const loaded = await loadConfig(join(ROOT, flags.config), {
    registry: new PluginRegistry(builtinPlugins),
    extensions: SERVER_CONFIG_EXTENSIONS,
    env,
    overrides,
  });
  return loaded.config;
}

async function secretFile(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kvmesh-deploy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'cluster.secret');
  await writeFile(file, 'a-test-secret-of-enough-length\n');
  return file;
}

// --- pods ---

/**
 * A pod's environment as the kubelet builds it: in list order, `$(VAR)`
 * expanded from the variables listed before it, field references filled
 * in, an optional secret key absent, a required one a placeholder.
 */
function podEnv(container: Obj, podName: string, t: ExecutionContext, where: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of (container['env'] ?? []) as Obj[]) {
    const name = String(entry['name']);
    if (entry['value'] !== undefined) {
      const value = String(entry['value']).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, ref: string) => {
        t.true(ref in env, `${where}: ${name} uses $(${ref}), which must be listed before it`);
        return env[ref] ?? whole;
      });
      env[name] = value;
    } else if (entry['valueFrom']?.fieldRef !== undefined) {
      const path = entry['valueFrom'].fieldRef.fieldPath as string;
      env[name] = path === 'metadata.name' ? podName : path === 'metadata.namespace' ? 'default' : `<${path}>`;
    } else if (entry['valueFrom']?.secretKeyRef !== undefined) {
      if (entry['valueFrom'].secretKeyRef.optional !== true) env[name] = `<secret ${name}>`;
    } else t.fail(`${where}: env ${name} has neither a value nor a field or secret reference`);
  }
  return env;
}

interface PodCheck {
  readonly podName: string;
  readonly env: Readonly<Record<string, string>>;
  readonly config: KvmeshConfig;
}

/** Every string in the config that names a pod of the StatefulSet by its stable DNS name. */
function podAddresses(config: unknown, statefulSet: string, service: string): string[] {
  const pattern = new RegExp(`\\b${statefulSet}-(\\d+)\\.${service}(?:\\.[A-Za-z0-9.-]+)?:(\\d+)\\b`, 'g');
  return [...JSON.stringify(config).matchAll(pattern)].map((m) => m[0]);
}

async function checkStatefulSet(
  t: ExecutionContext,
  objects: readonly Obj[],
  sts: Obj,
  img: Image,
  where: string,
): Promise<PodCheck[]> {
  const spec = sts['spec'];
  const pod = spec.template.spec;
  const name = sts['metadata'].name as string;
  const replicas = spec.replicas as number;
  const labels = spec.template.metadata.labels as Record<string, string>;
  const matches = (selector: Record<string, string> | undefined): boolean =>
    selector !== undefined && Object.entries(selector).every(([k, v]) => labels[k] === v);
  t.true(matches(spec.selector.matchLabels), `${where}: the selector matches the pod template`);

  const peers = objects.find((o) => o['kind'] === 'Service' && o['metadata'].name === spec.serviceName);
  t.truthy(peers, `${where}: serviceName ${spec.serviceName} is a Service of the same manifests`);
  t.is(peers?.['spec'].clusterIP, 'None', `${where}: ${spec.serviceName} is headless (stable pod DNS names)`);
  t.true(peers?.['spec'].publishNotReadyAddresses, `${where}: peers resolve a pod before it is ready`);
  const services = objects.filter((o) => o['kind'] === 'Service');
  const pdb = objects.find((o) => o['kind'] === 'PodDisruptionBudget');
  t.truthy(pdb, `${where}: a PodDisruptionBudget`);
  t.true(matches(pdb?.['spec'].selector.matchLabels), `${where}: the PodDisruptionBudget selects the pods`);

  t.is(pod.containers.length, 1, `${where}: one container`);
  const container = pod.containers[0] as Obj;
  t.is(container['command'], undefined, `${where}: the image's entrypoint runs (no command)`);
  const apiPort = (container['ports'] as Obj[]).find((p) => p['name'] === 'api');
  t.truthy(apiPort, `${where}: a container port named api`);
  const portNumber = apiPort?.['containerPort'] as number;
  for (const [probe, path] of [
    ['readinessProbe', '/v1/ready'],
    ['livenessProbe', '/v1/health'],
  ] as const) {
    t.is(container[probe]?.httpGet?.path, path, `${where}: ${probe} on ${path}`);
    t.is(container[probe]?.httpGet?.port, 'api', `${where}: ${probe} on the api port`);
  }
  t.true(
    (peers?.['spec'].ports as Obj[] | undefined)?.some((p) => p['port'] === portNumber),
    `${where}: ${spec.serviceName} publishes the port peers use`,
  );
  for (const service of services) {
    t.true(matches(service['spec'].selector), `${where}: Service ${service['metadata'].name} selects the pods`);
    for (const port of service['spec'].ports as Obj[]) {
      t.true(
        port['targetPort'] === 'api' || port['targetPort'] === portNumber,
        `${where}: Service ${service['metadata'].name} targets the api port`,
      );
    }
  }

  const claims = (spec.volumeClaimTemplates ?? []) as Obj[];
  const mounts = (container['volumeMounts'] ?? []) as Obj[];
  const volumes = (pod.volumes ?? []) as Obj[];
  const mountOf = (volume: string): string | undefined => mounts.find((m) => m['name'] === volume)?.['mountPath'];

  const results: PodCheck[] = [];
  const ids = new Set<string>();
  const addresses = new Set<string>();
  for (let ordinal = 0; ordinal < replicas; ordinal++) {
    const podName = `${name}-${ordinal}`;
    const here = `${where} pod ${podName}`;
    const env = { ...img.env, ...podEnv(container, podName, t, here) };
    const argv = entrypointArgv((container['args'] ?? []) as string[], env);
    const flags = await parseStart(argv);
    const configFile = posix.resolve(IMAGE_WORKDIR, flags.config);
    const source = sourceOf(img, configFile);
    t.truthy(source, `${here}: the config ${configFile} is copied into the image`);
    t.is(relative(ROOT, source ?? ''), flags.config, `${here}: the config is the repository's ${flags.config}`);

    // The secret file comes from a Secret volume; the test reads a stand-in.
    const secretPath = env['KVMESH_CLUSTER_SECRET_FILE'];
    t.truthy(secretPath, `${here}: the cluster secret is given (KVMESH_CLUSTER_SECRET_FILE)`);
    const secretVolume = volumes.find(
      (v) =>
        v['secret'] !== undefined &&
        (v['secret'].items as Obj[]).some((i) => posix.join(mountOf(v['name']) ?? '/-', i['path']) === secretPath),
    );
    t.truthy(secretVolume, `${here}: ${secretPath} is a key of a mounted Secret`);
    const local = { ...env, KVMESH_CLUSTER_SECRET_FILE: await secretFile(t) };

    // What `kvmesh validate` says of the file in this pod's environment, then the config as start runs it.
    await t.notThrowsAsync(checkConfigFile(join(ROOT, flags.config), { env: local }), `${here}: kvmesh validate`);
    const config = await startConfig(flags, local);
    const api = apiSettings(config);
    const node = splitHostPort(config.node.address);
    t.is(api.port, portNumber, `${here}: the container port is the node's API port`);
    t.is(node.port, portNumber, `${here}: the node's address is on the container port (peers reach it there)`);
    t.true(['0.0.0.0', '::'].includes(api.host), `${here}: the API listens on every interface (probes, Services)`);
    t.regex(node.host, new RegExp(`^${podName}\\.${spec.serviceName}\\b`), `${here}: node.address is the pod's name`);
    const dataClaim = claims.find((c) => mountOf(c['metadata'].name) === config.node.dataDir);
    t.truthy(dataClaim, `${here}: node.dataDir ${config.node.dataDir} is a volume claim of the pod`);
    for (const address of podAddresses(config, name, spec.serviceName)) {
      const [, ordinalText, port] = /-(\d+)\.[^:]*:(\d+)$/.exec(address)!;
      t.true(Number(ordinalText) < replicas, `${here}: ${address} is a pod of the ${replicas}`);
      t.is(Number(port), portNumber, `${here}: ${address} is on the api port`);
    }
    ids.add(config.node.id);
    addresses.add(config.node.address);
    results.push({ podName, env, config });
  }
  // Under OrderedReady a pod starts once the lower ones are ready, and a node with seeds is ready once
  // one other than itself answered: each pod's seeds must then name a lower pod (the first, none but itself).
  if ((spec.podManagementPolicy ?? 'OrderedReady') === 'OrderedReady') {
    for (const [ordinal, { config }] of results.entries()) {
      const others = config.join.filter((seed) => seed !== config.node.address);
      const lower = others.filter((seed) => Number(/-(\d+)\./.exec(seed)?.[1]) < ordinal);
      t.true(
        others.length === 0 || lower.length > 0,
        `${where}: pod ${ordinal} under OrderedReady waits for ${others}`,
      );
    }
  }
  t.is(ids.size, replicas, `${where}: every pod has its own node id`);
  t.is(addresses.size, replicas, `${where}: every pod has its own address`);

  // The budget lets no more pods go than every key can lose and still read (and write, with a numeric quorum).
  const maxUnavailable = pdb?.['spec'].maxUnavailable;
  t.is(typeof maxUnavailable, 'number', `${where}: the budget is a number of pods`);
  const options = (results[0]?.config.placement?.options ?? {}) as Record<string, unknown>;
  const factor = options['replicationFactor'];
  if (typeof factor === 'number') {
    for (const quorum of [options['readQuorum'], options['writeQuorum']]) {
      if (typeof quorum === 'number') {
        t.true(maxUnavailable <= factor - quorum, `${where}: maxUnavailable ${maxUnavailable} keeps quorum ${quorum}`);
      }
    }
    t.true(maxUnavailable < factor, `${where}: every key keeps a replica through a disruption`);
  }
  return results;
}

// --- the tests ---

test('every YAML file under deploy/kubernetes parses, and every object in it is valid', async (t) => {
  const files = await yamlFiles(KUBERNETES);
  t.true(files.length >= 5, files.join(', '));
  const patches = new Set<string>();
  for (const dir of await kustomizations()) {
    const [k] = (await readYaml(join(dir, 'kustomization.yaml'))) as Obj[];
    for (const p of (k?.['patches'] ?? []) as Obj[]) patches.add(resolve(dir, String(p['path'])));
  }
  for (const file of files) {
    const where = relative(ROOT, file);
    for (const doc of await readYaml(file)) {
      t.truthy(doc, `${where}: no empty document`);
      // A patch is partial: it is checked once its overlay is rendered.
      if (patches.has(file)) continue;
      t.true(isObject(doc), `${where}: an object`);
      const obj = doc as Obj;
      if (obj['kind'] === 'Kustomization') continue;
      t.notThrows(() => validate(obj, where), where);
    }
  }
});

test('every kustomization renders to valid objects', async (t) => {
  const dirs = await kustomizations();
  t.true(dirs.length >= 3, dirs.join(', '));
  for (const dir of dirs) {
    const where = relative(ROOT, dir);
    const objects = await render(dir);
    t.true(objects.length > 0, where);
    for (const obj of objects) t.notThrows(() => validate(obj, where), `${where}: ${obj['kind']}`);
    const names = objects.map((o) => `${o['kind']}/${o['metadata'].name}`);
    t.is(new Set(names).size, names.length, `${where}: no object twice`);
  }
});

test('every pod of the ring overlay runs a config kvmesh start accepts, on its port, joined through pods of the set', async (t) => {
  const objects = await render(join(KUBERNETES, 'overlays/ring'));
  const sts = objects.find((o) => o['kind'] === 'StatefulSet')!;
  const pods = await checkStatefulSet(t, objects, sts, await image(), 'overlays/ring');
  t.is(pods.length, 5, 'five nodes');
  for (const { podName, config } of pods) {
    t.is(config.node.id, podName, `${podName}: its node id is the pod name`);
    t.true(config.join.length >= 2, `${podName}: joins through two seeds`);
    t.is(config.node.dataDir, '/var/lib/kvmesh', `${podName}: data on the volume`);
  }
  t.log(`ring: ${pods.length} pods, seeds ${pods[0]!.config.join.join(', ')}`);
});

test('every pod of the CSE138 overlay is in the view it starts with, on the seed port 13800', async (t) => {
  const objects = await render(join(KUBERNETES, 'overlays/cse138'));
  const sts = objects.find((o) => o['kind'] === 'StatefulSet')!;
  const pods = await checkStatefulSet(t, objects, sts, await image(), 'overlays/cse138');
  for (const { podName, env, config } of pods) {
    t.is(config.node.address, env['ADDRESS']!, `${podName}: ADDRESS is the node address`);
    t.is(splitHostPort(config.node.address).port, 13800, `${podName}: port 13800`);
    const view = env['VIEW']!.split(',');
    t.is(view.length, pods.length, `${podName}: VIEW names every pod`);
    t.true(view.includes(config.node.address), `${podName}: its address is in VIEW`);
  }
  const factor = Number(pods[0]!.env['REPL_FACTOR']);
  t.true(factor >= 2 && Math.floor(pods.length / factor) >= 2, 'shards of two or more replicas, two or more shards');
});

test('the default kustomization is the ring overlay', async (t) => {
  t.deepEqual(await render(KUBERNETES), await render(join(KUBERNETES, 'overlays/ring')));
});

test('the image starts the CSE138 config as its seed does: only ADDRESS and VIEW given, data on the volume', async (t) => {
  const img = await image();
  t.is(img.workdir, IMAGE_WORKDIR, 'configs are named relative to the WORKDIR');
  t.deepEqual(img.entrypoint, ['/app/deploy/docker/entrypoint.sh']);
  const entrypointSource = sourceOf(img, img.entrypoint[0]!);
  t.truthy(entrypointSource, 'the entrypoint is copied into the image');
  const script = await readFile(entrypointSource!, 'utf8');
  // entrypointArgv above is this script's rule; keep them in step.
  t.regex(
    script,
    /kvmesh start --config "\$\{KVMESH_CONFIG[^"]*\}"\s*\\?\s*--data-dir "\$\{KVMESH_DATA_DIR[^"]*\}" "\$@"/,
  );
  t.truthy(img.env['KVMESH_DATA_DIR']);
  t.true(img.volumes.includes(img.env['KVMESH_DATA_DIR']!), 'KVMESH_DATA_DIR is the VOLUME');

  // docker run -e ADDRESS=10.10.0.4:13800 -e VIEW=10.10.0.4:13800,10.10.0.5:13800 IMAGE
  const env = { ...img.env, ADDRESS: '10.10.0.4:13800', VIEW: '10.10.0.4:13800,10.10.0.5:13800' };
  const flags = await parseStart(entrypointArgv([], env));
  t.truthy(sourceOf(img, posix.resolve(IMAGE_WORKDIR, flags.config)), `${flags.config} is in the image`);
  const local = { ...env, KVMESH_CLUSTER_SECRET_FILE: await secretFile(t) };
  await t.notThrowsAsync(checkConfigFile(join(ROOT, flags.config), { env: local }));
  const config = await startConfig(flags, local);
  t.is(config.node.address, '10.10.0.4:13800');
  t.is(config.node.dataDir, img.env['KVMESH_DATA_DIR']!);
  t.true(img.exposed.includes(apiSettings(config).port), 'the node port is EXPOSEd');
  t.truthy(img.env['KVMESH_CLUSTER_SECRET_FILE'], 'containers of one image share a secret when given none');

  // Another command runs as given: docker run IMAGE validate configs/ring-local.json
  t.deepEqual(entrypointArgv(['validate', 'configs/ring-local.json'], env), ['validate', 'configs/ring-local.json']);
  // Flags are added to start, and a later --config wins.
  const ring = await parseStart(entrypointArgv(['--config', 'configs/ring-local.json', '--join', 'a:7700'], env));
  t.is(ring.config, 'configs/ring-local.json');
  t.deepEqual(ring.join, ['a:7700']);
});

test('.dockerignore keeps what the image copies', async (t) => {
  const ignored = (await readFile(join(ROOT, '.dockerignore'), 'utf8'))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const img = await image();
  for (const src of [...img.copies.keys(), 'package.json', 'package-lock.json', 'packages/server/src']) {
    t.false(
      ignored.some((pattern) => src === pattern || src.startsWith(`${pattern}/`)),
      `${src} is not ignored`,
    );
  }
  t.true(ignored.includes('**/node_modules') && ignored.includes('**/dist'), 'no host build output in the context');
});

/** Runs the image's healthcheck script with a data directory whose lock names a node at `address`. */
async function healthcheck(t: ExecutionContext, address: string): Promise<number> {
  const img = await image();
  const script = sourceOf(img, img.healthcheck[img.healthcheck.length - 1]!)!;
  const dir = await mkdtemp(join(tmpdir(), 'kvmesh-health-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'kvmesh.lock'), `${JSON.stringify({ pid: 1, id: 'n1', address })}\n`);
  const child = spawn(process.execPath, [script], {
    env: { PATH: process.env['PATH'], KVMESH_DATA_DIR: dir },
    stdio: 'ignore',
  });
  t.teardown(() => child.kill());
  return new Promise((resolveCode) => child.on('exit', (code) => resolveCode(code ?? -1)));
}

test('the image healthcheck passes when /v1/health at the locked address answers 200, and fails otherwise', async (t) => {
  let status = 200;
  const server = createServer((req, res) => {
    res.statusCode = req.url === '/v1/health' ? status : 404;
    res.end();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  t.teardown(() => new Promise<void>((ok) => server.close(() => ok())));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.is(await healthcheck(t, address), 0);
  status = 503;
  t.is(await healthcheck(t, address), 1);
  server.closeAllConnections();
  await new Promise<void>((ok) => server.close(() => ok()));
  t.is(await healthcheck(t, address), 1, 'nothing listening');
});
