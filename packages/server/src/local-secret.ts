import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { KvError } from '@kvmesh/core';

/** Where the local secret lives instead of the default (a file path). */
export const LOCAL_SECRET_FILE_ENV = 'KVMESH_LOCAL_SECRET_FILE';

/** Bytes of randomness in a generated secret (base64url: 43 characters). */
const SECRET_BYTES = 32;

/** The secret this machine's user seals cluster frames with when no node config names one. */
export interface LocalSecret {
  readonly secret: string;
  readonly file: string;
  /** True when this call created the file. */
  readonly created: boolean;
}

/**
 * The local cluster secret: a random secret in a file only its owner may
 * read, created on first use, `$XDG_CONFIG_HOME/kvmesh/cluster.secret`
 * (default `~/.config/kvmesh/cluster.secret`, or KVMESH_LOCAL_SECRET_FILE).
 * Nodes started by one user on one machine with no secret configured share
 * it, so their internal frames are sealed and a client that reaches the
 * port cannot forge one; nodes on other machines hold other secrets until
 * the operator gives every node the same one (as Erlang's cookie file).
 * Two nodes starting at once create one file: it is written under a
 * temporary name and linked into place, which fails for the second, who
 * reads the first one's.
 * @throws KvError KVMESH_ERR_CONFIG_READ when the file cannot be created or
 *   read, holds no usable secret, or other users may read it.
 */
export async function localSecret(env: Readonly<Record<string, string | undefined>>): Promise<LocalSecret> {
  const file = localSecretFile(env);
  const existing = await readSecretFile(file);
  if (existing !== undefined) return { secret: existing, file, created: false };
  const secret = randomBytes(SECRET_BYTES).toString('base64url');
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(temporary, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    await link(temporary, file);
    return { secret, file, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw unusable(file, `cannot create it: ${reason(err)}`);
    // Another node created it first: use that one.
    const theirs = await readSecretFile(file);
    if (theirs === undefined) throw unusable(file, 'it vanished while being created');
    return { secret: theirs, file, created: false };
  } finally {
    await rm(temporary, { force: true });
  }
}

/** The local secret's path for this environment. */
export function localSecretFile(env: Readonly<Record<string, string | undefined>>): string {
  const explicit = env[LOCAL_SECRET_FILE_ENV];
  if (explicit !== undefined && explicit !== '') return explicit;
  const config = env['XDG_CONFIG_HOME'];
  const base = config !== undefined && config.startsWith('/') ? config : join(env['HOME'] ?? homedir(), '.config');
  return join(base, 'kvmesh', 'cluster.secret');
}

/** The file's secret; undefined when there is no file. */
async function readSecretFile(file: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unusable(file, `cannot read it: ${reason(err)}`);
  }
  const mode = (await stat(file)).mode;
  if ((mode & 0o077) !== 0) {
    throw unusable(
      file,
      `other users may read it (mode ${(mode & 0o777).toString(8)}); run chmod 600 on it, or remove it to have a new one made`,
    );
  }
  const secret = text.trim();
  if (secret.length < 16 || /\s/.test(secret)) {
    throw unusable(file, 'it holds no secret of at least 16 characters on one line; remove it to have a new one made');
  }
  return secret;
}

function unusable(file: string, why: string): KvError {
  return new KvError(
    'KVMESH_ERR_CONFIG_READ',
    `no cluster secret is configured, and the local secret ${file} cannot be used: ${why} (or configure one: cluster.secrets, cluster.secretFile or KVMESH_CLUSTER_SECRET)`,
  );
}

function reason(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
}
