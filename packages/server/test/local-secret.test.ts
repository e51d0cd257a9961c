import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { localSecret, localSecretFile } from '../src/local-secret.js';
import { tempDir } from './helpers/cluster.js';

test('the local secret is made once, readable by its owner only, and the same for every caller', async (t) => {
  const file = join(await tempDir(t, 'local-secret'), 'nested', 'kvmesh', 'cluster.secret');
  const env = { KVMESH_LOCAL_SECRET_FILE: file };
  const all = await Promise.all(Array.from({ length: 8 }, () => localSecret(env)));
  t.is(all.filter((s) => s.created).length, 1, 'eight callers at once make one file');
  t.is(new Set(all.map((s) => s.secret)).size, 1);
  t.true(all[0]!.secret.length >= 32);
  t.is((await readFile(file, 'utf8')).trim(), all[0]!.secret);
  t.is((await stat(file)).mode & 0o777, 0o600);
  t.deepEqual(await readdir(join(file, '..')), ['cluster.secret'], 'no temporary file is left behind');
  const again = await localSecret(env);
  t.deepEqual(again, { secret: all[0]!.secret, file, created: false });
});

test('a local secret others may read, or one that holds no secret, is refused naming the file', async (t) => {
  const dir = await tempDir(t, 'local-secret');
  const file = join(dir, 'cluster.secret');
  await writeFile(file, 'a-long-enough-secret-0123456789\n', { mode: 0o600 });
  await chmod(file, 0o644);
  const open = await t.throwsAsync(localSecret({ KVMESH_LOCAL_SECRET_FILE: file }));
  t.regex(open!.message, /cluster\.secret cannot be used: other users may read it \(mode 644\); run chmod 600/);
  await chmod(file, 0o600);
  await writeFile(file, 'short\n');
  const short = await t.throwsAsync(localSecret({ KVMESH_LOCAL_SECRET_FILE: file }));
  t.regex(short!.message, /holds no secret of at least 16 characters/);
  t.regex(short!.message, /cluster\.secrets, cluster\.secretFile or KVMESH_CLUSTER_SECRET/);
});

test('the local secret lives under XDG_CONFIG_HOME, else ~/.config', (t) => {
  t.is(localSecretFile({ HOME: '/home/ann' }), '/home/ann/.config/kvmesh/cluster.secret');
  t.is(localSecretFile({ HOME: '/home/ann', XDG_CONFIG_HOME: '/cfg' }), '/cfg/kvmesh/cluster.secret');
  t.is(localSecretFile({ HOME: '/home/ann', XDG_CONFIG_HOME: 'relative' }), '/home/ann/.config/kvmesh/cluster.secret');
  t.is(localSecretFile({ KVMESH_LOCAL_SECRET_FILE: '/x/s' }), '/x/s');
});
