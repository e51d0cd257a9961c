import { mkdir, open, readFile, rename } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { KvError } from '@kvmesh/core';
import type { Version } from '@kvmesh/core';
import type { Contact } from './contact.js';

/** A key given up to another node, as the journal keeps it (to answer a late release). */
export interface ReleasedKey {
  readonly key: string;
  readonly toId: string;
  readonly toAddress: string;
  readonly token: string;
}

/** A key this node was taking over when it stopped: the old owner decides whether it took it. */
export interface PendingKey {
  readonly key: string;
  readonly ownerId: string;
  readonly ownerAddress: string;
  readonly token: string;
  /** The entry version this node would own it at. */
  readonly version: number;
  /** Version of the record copied here (undefined: none), removed again if the old owner kept the key. */
  readonly recordVersion: Version | undefined;
}

export interface RestoredOwnership {
  /** Keys owned, with their entry versions. */
  readonly owned: ReadonlyMap<string, number>;
  /** Keys given up, the most recent last. */
  readonly released: readonly ReleasedKey[];
  /** Take-overs that had begun and not ended. */
  readonly pending: readonly PendingKey[];
}

/**
 * Where a node keeps, across restarts, which keys it owns (mode shift) and
 * to whom it gave keys up: a restarted owner still answers for its keys,
 * and an old owner still confirms a release it made just before it crashed.
 * Each change resolves once it is durable.
 */
export interface OwnershipJournal {
  /** Whether what it keeps outlives the process (false: a restarted node remembers nothing). */
  readonly durable: boolean;
  load(): Promise<RestoredOwnership>;
  /** This node begins taking `pending.key` over (before it stores the copy). */
  pending(pending: PendingKey): Promise<void>;
  /** This node owns `key` at `version` (a take-over of it ended well, or it created it). */
  owned(key: string, version: number): Promise<void>;
  /** A take-over of `key` ended without it: the old owner kept it. */
  abandoned(key: string): Promise<void>;
  /** This node gave `key` up to `to`. */
  released(key: string, to: Contact, token: string): Promise<void>;
  close(): Promise<void>;
}

/** Keeps nothing: a restarted node owns no key (for `persistOwnership: false` and the simulator). */
export class MemoryJournal implements OwnershipJournal {
  readonly durable = false;
  async load(): Promise<RestoredOwnership> {
    return { owned: new Map(), released: [], pending: [] };
  }
  async pending(): Promise<void> {}
  async owned(): Promise<void> {}
  async abandoned(): Promise<void> {}
  async released(): Promise<void> {}
  async close(): Promise<void> {}
}

type Line =
  | { o: string; v: number }
  | { r: string; to: string; a: string; t: string }
  | { p: string; to: string; a: string; t: string; v: number; rv: Version | null }
  | { x: string };

/**
 * A JSON-lines journal (`{"o":key,"v":version}` for a key owned,
 * `{"r":key,"to":id,"a":address,"t":token}` for one given up,
 * `{"p":key,...}` for a take-over begun, `{"x":key}` for one abandoned), appended and
 * flushed (fdatasync) per change, compacted on load to what it says now
 * (written to a temporary file, flushed and renamed).
 */
export class FileJournal implements OwnershipJournal {
  readonly durable = true;
  readonly #path: string;
  /** Released keys kept across a compaction (the most recent). */
  readonly #keepReleased: number;
  #handle: FileHandle | undefined;
  #tail: Promise<void> = Promise.resolve();

  constructor(path: string, keepReleased: number) {
    this.#path = path;
    this.#keepReleased = keepReleased;
  }

  async load(): Promise<RestoredOwnership> {
    const owned = new Map<string, number>();
    const released = new Map<string, ReleasedKey>();
    let text = '';
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(this.#path, err);
    }
    const pending = new Map<string, PendingKey>();
    for (const raw of text.split('\n')) {
      if (raw === '') continue;
      let line: Line;
      try {
        line = JSON.parse(raw) as Line;
      } catch {
        continue; // A line cut short by a crash: the change it began was never acknowledged.
      }
      if ('o' in line) {
        owned.set(line.o, line.v);
        released.delete(line.o);
        pending.delete(line.o);
      } else if ('r' in line) {
        owned.delete(line.r);
        released.delete(line.r);
        released.set(line.r, { key: line.r, toId: line.to, toAddress: line.a, token: line.t });
      } else if ('p' in line) {
        pending.set(line.p, {
          key: line.p,
          ownerId: line.to,
          ownerAddress: line.a,
          token: line.t,
          version: line.v,
          recordVersion: line.rv ?? undefined,
        });
      } else if ('x' in line) {
        pending.delete(line.x);
      }
    }
    const kept = [...released.values()].slice(-this.#keepReleased);
    await this.#compact(owned, kept, [...pending.values()]);
    try {
      this.#handle = await open(this.#path, 'a');
    } catch (err) {
      throw ioError(this.#path, err);
    }
    return { owned, released: kept, pending: [...pending.values()] };
  }

  pending(p: PendingKey): Promise<void> {
    return this.#append({
      p: p.key,
      to: p.ownerId,
      a: p.ownerAddress,
      t: p.token,
      v: p.version,
      rv: p.recordVersion ?? null,
    });
  }

  owned(key: string, version: number): Promise<void> {
    return this.#append({ o: key, v: version });
  }

  abandoned(key: string): Promise<void> {
    return this.#append({ x: key });
  }

  released(key: string, to: Contact, token: string): Promise<void> {
    return this.#append({ r: key, to: to.id, a: to.address, t: token });
  }

  async close(): Promise<void> {
    await this.#tail;
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close().catch(() => undefined);
  }

  #append(line: Line): Promise<void> {
    const next = this.#tail.then(async () => {
      const handle = this.#handle;
      if (handle === undefined) throw new KvError('KVMESH_ERR_STORAGE_CLOSED', 'the ownership journal is not open');
      try {
        await handle.write(`${JSON.stringify(line)}\n`);
        await handle.datasync();
      } catch (err) {
        throw ioError(this.#path, err);
      }
    });
    this.#tail = next.catch(() => undefined);
    return next;
  }

  async #compact(
    owned: ReadonlyMap<string, number>,
    released: readonly ReleasedKey[],
    pending: readonly PendingKey[],
  ): Promise<void> {
    const lines: string[] = [];
    for (const r of released) lines.push(JSON.stringify({ r: r.key, to: r.toId, a: r.toAddress, t: r.token }));
    for (const [key, version] of owned) lines.push(JSON.stringify({ o: key, v: version }));
    for (const p of pending) {
      lines.push(
        JSON.stringify({
          p: p.key,
          to: p.ownerId,
          a: p.ownerAddress,
          t: p.token,
          v: p.version,
          rv: p.recordVersion ?? null,
        }),
      );
    }
    const temporary = `${this.#path}.tmp`;
    try {
      await mkdir(dirname(this.#path), { recursive: true });
      const handle = await open(temporary, 'w');
      try {
        await handle.writeFile(lines.length === 0 ? '' : `${lines.join('\n')}\n`);
        await handle.datasync();
      } finally {
        await handle.close();
      }
      await rename(temporary, this.#path);
    } catch (err) {
      throw ioError(this.#path, err);
    }
  }
}

function ioError(path: string, err: unknown): KvError {
  return new KvError('KVMESH_ERR_STORAGE_IO', `ownership journal ${path}: ${(err as Error).message}`, { cause: err });
}
