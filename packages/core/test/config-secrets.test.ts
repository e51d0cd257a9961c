import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { PluginRegistry, resolveConfig } from '../src/index.js';
import type { KvError } from '../src/index.js';
import { fakeStorage, stubPlugin } from './helpers/fake-plugins.js';

const registry = new PluginRegistry([fakeStorage([]), stubPlugin('codec', 'json'), stubPlugin('transport', 'http')]);
const minimal = { node: { address: '127.0.0.1:4000' }, storage: { name: 'fake-store' } };
const A = 'first-secret-0123456789';
const B = 'second-secret-0123456789';

async function folder(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kvmesh-secrets-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function secretsOf(doc: Record<string, unknown>, env: Record<string, string>, dir = tmpdir()) {
  const { config } = await resolveConfig(doc, { registry, env, file: '<test>', dir });
  return config.cluster;
}

test('secrets come from the config first, then secretFile, then KVMESH_CLUSTER_SECRET, then KVMESH_CLUSTER_SECRET_FILE', async (t) => {
  const dir = await folder(t);
  await writeFile(join(dir, 'keys'), `# rotation in progress\n${B}\n\n${A}\n`);
  const env = { KVMESH_CLUSTER_SECRET: `${A}, ${B}`, KVMESH_CLUSTER_SECRET_FILE: join(dir, 'keys') };
  t.deepEqual((await secretsOf({ ...minimal, cluster: { secrets: [B] } }, env, dir)).secrets, [B]);
  t.deepEqual((await secretsOf({ ...minimal, cluster: { secretFile: 'keys' } }, env, dir)).secrets, [B, A]);
  t.deepEqual((await secretsOf(minimal, env, dir)).secrets, [A, B]);
  t.deepEqual((await secretsOf(minimal, { KVMESH_CLUSTER_SECRET_FILE: join(dir, 'keys') }, dir)).secrets, [B, A]);
  t.is((await secretsOf(minimal, {}, dir)).secrets, undefined);
  const viaReference = await secretsOf({ ...minimal, cluster: { secrets: ['${MY_SECRET}'] } }, { MY_SECRET: A });
  t.deepEqual(viaReference.secrets, [A]);
});

test('the admin token comes from the config, else KVMESH_ADMIN_TOKEN', async (t) => {
  t.is(
    (await secretsOf({ ...minimal, cluster: { adminToken: 'mine' } }, { KVMESH_ADMIN_TOKEN: 'env' })).adminToken,
    'mine',
  );
  t.is((await secretsOf(minimal, { KVMESH_ADMIN_TOKEN: 'env' })).adminToken, 'env');
  t.is((await secretsOf(minimal, {})).adminToken, undefined);
});

test('a secret file that is missing, unreadable or empty is refused, naming the file and never its content', async (t) => {
  const dir = await folder(t);
  const missing = await t.throwsAsync<KvError>(secretsOf({ ...minimal, cluster: { secretFile: 'nope' } }, {}, dir));
  t.is(missing.code, 'KVMESH_ERR_CONFIG_READ');
  t.regex(missing.message, /cluster\.secretFile .*nope: cannot read it: no such file/);
  await writeFile(join(dir, 'empty'), '# only a comment\n\n');
  const empty = await t.throwsAsync<KvError>(secretsOf({ ...minimal, cluster: { secretFile: 'empty' } }, {}, dir));
  t.regex(empty.message, /holds no secret/);
  if (process.getuid?.() !== 0) {
    await writeFile(join(dir, 'locked'), `${A}\n`);
    await chmod(join(dir, 'locked'), 0o000);
    const locked = await t.throwsAsync<KvError>(secretsOf({ ...minimal, cluster: { secretFile: 'locked' } }, {}, dir));
    t.regex(locked.message, /not readable/);
    t.false(locked.message.includes(A));
  }
});
