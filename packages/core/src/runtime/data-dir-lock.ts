import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KvError } from '../errors.js';
import type { Logger } from '../contracts/logger.js';

/** The lock's file name inside the data directory. */
export const DATA_DIR_LOCK_FILE = 'kvmesh.lock';

/** What a lock file says about the node holding it. */
export interface LockHolder {
  readonly pid: number;
  /** Node id from the config. */
  readonly id: string;
  /** The node's `host:port`. */
  readonly address: string;
  readonly host: string;
  /** ISO time the lock was taken. */
  readonly since: string;
  /** Random: tells two lock files of one pid apart. */
  readonly token: string;
  /** When the holding process started (Linux: clock ticks after boot), so a reused pid is not taken for the holder. */
  readonly processStart?: string;
  /** The machine's boot id (Linux), so a lock from before a reboot is known stale whatever its pid. */
  readonly bootId?: string;
}

/**
 * The locks this process holds, freed by one exit listener when the process
 * exits without releasing them (process.exit): one listener however many
 * locks, as a process may hold many (a storage's and its node's, or a test's).
 */
const heldLocks = new Set<DataDirLock>();
let exitListening = false;

function holdUntilExit(lock: DataDirLock): void {
  if (!exitListening) {
    process.once('exit', () => {
      for (const held of heldLocks) held.removeAtExit();
    });
    exitListening = true;
  }
  heldLocks.add(lock);
}

/** What a refused node is told to do, after naming the holder. */
const DEFAULT_ADVICE = 'stop that node first, or give this one its own directory (node.dataDir or --data-dir)';

/** Attempts to take the lock before giving up on contention (each failed attempt found a stale lock, or another node taking it over). */
const MAX_ATTEMPTS = 12;
/** A claim on a claim on ...: only nodes dying one after another while taking over one lock nest claims. */
const MAX_CLAIM_DEPTH = 4;

/**
 * Exclusive use of one data directory by one running node, across
 * processes on one machine: the file `kvmesh.lock` (or the name given) in the directory names the
 * holder (pid, node id, address). It is created whole or not at all (written
 * aside, then hard-linked into place, which fails when the file exists), so a
 * reader never sees half a lock.
 *
 * A lock whose holder is gone — killed with SIGKILL, crashed, or the machine
 * rebooted — is stale and taken over: the holder's pid no longer runs
 * (`process.kill(pid, 0)`), or runs a process that started at another time
 * than the holder (the pid was reused; Linux, read from /proc), or the lock
 * was written before the last boot. Of nodes taking over one stale lock at
 * once, one claims it (an exclusive claim file on its exact content) and
 * deletes it; the others wait and then find the new holder's lock.
 *
 * The check sees processes of this machine only: a directory on a network
 * filesystem shared by two machines is not protected (lmdb, the durable
 * storage, needs a local filesystem anyway).
 */
export class DataDirLock {
  readonly dir: string;
  readonly file: string;
  #holder: LockHolder;
  #released = false;

  private constructor(dir: string, file: string, holder: LockHolder) {
    this.dir = dir;
    this.file = file;
    this.#holder = holder;
    holdUntilExit(this);
  }

  /** Removes the lock file if it is still this holder's, synchronously: for the exit listener, not for callers. */
  removeAtExit(): void {
    try {
      if (parseHolder(readFileSync(this.file, 'utf8'))?.token === this.#holder.token) unlinkSync(this.file);
    } catch {
      // Already gone; nothing to free.
    }
  }

  get holder(): LockHolder {
    return this.#holder;
  }

  /**
   * Takes the lock of `dir` (created when missing) for the node `who`.
   * `options.advice` ends the message a refused caller gets, after the
   * holder is named; `options.file` names the lock file (default
   * `kvmesh.lock`), so two owners of one directory (a node and its
   * storage) each hold a lock of their own.
   * @throws KvError KVMESH_ERR_DATA_DIR_LOCKED naming the directory and the
   *   live holder; KVMESH_ERR_STORAGE_IO when the directory or the lock file
   *   cannot be created.
   */
  static async acquire(
    dir: string,
    who: { id: string; address: string },
    logger: Logger,
    options: { readonly advice?: string; readonly file?: string } = {},
  ): Promise<DataDirLock> {
    const advice = options.advice ?? DEFAULT_ADVICE;
    await mkdir(dir, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
      throw ioError(`cannot create the data directory ${dir}: ${err.code ?? err.message}`, err);
    });
    const file = join(dir, options.file ?? DATA_DIR_LOCK_FILE);
    const holder = await ownHolder(who);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (await createWhole(file, holder)) return new DataDirLock(dir, file, holder);
      const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw ioError(`cannot read the lock file ${file}: ${err.code ?? err.message}`, err);
      });
      if (text === undefined) continue;
      const found = parseHolder(text);
      if (found !== undefined && (await isRunning(found))) throw lockedError(dir, file, found, advice);
      if (await removeIfUnchanged(file, text, holder)) {
        logger.warn(
          found === undefined ? { file } : { file, pid: found.pid, id: found.id, since: found.since },
          found === undefined
            ? 'removed an unreadable data directory lock'
            : 'took over the data directory lock of a node that is no longer running',
        );
      } else {
        // Another node is taking the stale lock over: give it a moment to finish.
        await sleep(Math.min(2 ** attempt, 100));
      }
    }
    throw new KvError(
      'KVMESH_ERR_DATA_DIR_LOCKED',
      `data directory ${dir}: could not take its lock (${file}) after ${MAX_ATTEMPTS} attempts; other nodes are starting on it at the same time`,
    );
  }

  /** Rewrites the holder's address, e.g. once port 0 became a real port. */
  async setAddress(address: string): Promise<void> {
    if (this.#released || address === this.#holder.address) return;
    const next = { ...this.#holder, address };
    const temp = `${this.file}.${process.pid}.${next.token}.tmp`;
    await writeSynced(temp, next);
    // Rename replaces the file in one step: a reader sees the old holder or the new one.
    await rename(temp, this.file);
    this.#holder = next;
  }

  /** Frees the directory, unless the lock file is no longer this holder's. Idempotent. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    heldLocks.delete(this);
    const text = await readFile(this.file, 'utf8').catch(() => undefined);
    if (text === undefined || parseHolder(text)?.token !== this.#holder.token) return;
    await unlink(this.file).catch(() => undefined);
  }
}

async function ownHolder(who: { id: string; address: string }): Promise<LockHolder> {
  const [processStart, bootId] = await Promise.all([processStartOf(process.pid), readBootId()]);
  return {
    pid: process.pid,
    id: who.id,
    address: who.address,
    host: hostname(),
    since: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
    ...(processStart !== undefined ? { processStart } : {}),
    ...(bootId !== undefined ? { bootId } : {}),
  };
}

/** Creates `file` holding `holder`, complete, or returns false when it exists. */
async function createWhole(file: string, holder: LockHolder): Promise<boolean> {
  const temp = `${file}.${process.pid}.${holder.token}.tmp`;
  await writeSynced(temp, holder);
  try {
    await link(temp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw ioError(`cannot create the lock file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

async function writeSynced(path: string, holder: LockHolder): Promise<void> {
  try {
    const handle = await open(path, 'wx', 0o644);
    try {
      await handle.writeFile(`${JSON.stringify(holder)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw ioError(`cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err);
  }
}

/**
 * Deletes the stale lock `file` if it still holds `stale`; returns true when
 * this call removed it.
 *
 * Removal needs the claim on that one stale content: the file
 * `<file>.claim-<digest of stale>`, created whole or not at all like the lock.
 * The invariant: a lock file is deleted only by its holder, or by the holder
 * of the claim on its exact content after reading it under that claim. So
 * between that read and the delete nothing else can change the file: a new
 * lock can only be created where there is none, and a second claimant of the
 * same content waits for this one. A node that claims late, after the stale
 * lock was replaced, reads the new lock and leaves it. A claim whose claimant
 * died is itself stale and removed the same way (a claim on the claim).
 */
async function removeIfUnchanged(file: string, stale: string, me: LockHolder, depth = 0): Promise<boolean> {
  if (depth > MAX_CLAIM_DEPTH) return false;
  const claim = `${file}.claim-${createHash('sha256').update(stale).digest('hex').slice(0, 16)}`;
  if (!(await createWhole(claim, me))) {
    const text = await readFile(claim, 'utf8').catch(() => undefined);
    if (text === undefined) return false;
    const claimant = parseHolder(text);
    if (claimant !== undefined && (await isRunning(claimant))) return false;
    await removeIfUnchanged(claim, text, me, depth + 1);
    return false;
  }
  try {
    const now = await readFile(file, 'utf8').catch(() => undefined);
    if (now !== stale) return false;
    await unlink(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError(`cannot remove the stale lock file ${file}: ${(err as NodeJS.ErrnoException).code}`, err);
  } finally {
    await unlink(claim).catch(() => undefined);
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder> | null;
    if (value === null || typeof value !== 'object') return undefined;
    if (!Number.isSafeInteger(value.pid) || (value.pid as number) <= 0 || typeof value.token !== 'string') {
      return undefined;
    }
    return {
      pid: value.pid as number,
      id: String(value.id ?? '?'),
      address: String(value.address ?? '?'),
      host: String(value.host ?? '?'),
      since: String(value.since ?? '?'),
      token: value.token,
      ...(typeof value.processStart === 'string' ? { processStart: value.processStart } : {}),
      ...(typeof value.bootId === 'string' ? { bootId: value.bootId } : {}),
    };
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote `holder` still runs on this machine. */
async function isRunning(holder: LockHolder): Promise<boolean> {
  if (holder.bootId !== undefined) {
    const bootId = await readBootId();
    if (bootId !== undefined && bootId !== holder.bootId) return false;
  }
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    // EPERM: the pid runs, as another user.
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  if (holder.processStart !== undefined) {
    const started = await processStartOf(holder.pid);
    if (started !== undefined && started !== holder.processStart) return false;
  }
  return true;
}

/**
 * Field 22 of /proc/<pid>/stat, the process's start time in clock ticks
 * after boot (proc(5)); undefined where there is no /proc. The command name
 * (field 2) may hold spaces and parentheses, so fields count from its last `)`.
 */
async function processStartOf(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19];
}

async function readBootId(): Promise<string | undefined> {
  const text = await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => undefined);
  return text?.trim() || undefined;
}

function lockedError(dir: string, file: string, holder: LockHolder, advice: string): KvError {
  const own = holder.pid === process.pid ? ' (this process)' : '';
  const host = holder.host !== hostname() ? ` on ${holder.host}` : '';
  return new KvError(
    'KVMESH_ERR_DATA_DIR_LOCKED',
    `data directory ${dir} is in use by node '${holder.id}' at ${holder.address}, pid ${holder.pid}${own}${host}, since ${holder.since}: ${advice}. Lock file: ${file}`,
    { details: { dir, file, pid: holder.pid, id: holder.id, address: holder.address } },
  );
}

function ioError(message: string, cause: unknown): KvError {
  return new KvError('KVMESH_ERR_STORAGE_IO', message, { cause });
}
