import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '@kvmesh/core';

/** The parsed JSON in `path`, or undefined when the file does not exist or is not JSON (logged). */
export async function readJsonFile(path: string, logger: Logger): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      logger.warn({ path, err: (err as Error).message }, 'cannot read membership state; starting without it');
    }
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    logger.warn({ path, err: (err as Error).message }, 'membership state file is not JSON; starting without it');
    return undefined;
  }
}

/**
 * Writes JSON snapshots to one file, each atomically (a temporary file, then
 * a rename), so a crash leaves either the previous or the new snapshot.
 * Writes never overlap: while one runs, only the latest of the snapshots
 * asked for meanwhile is written after it.
 */
export class AtomicJsonFile {
  #next: (() => unknown) | undefined;
  #running: Promise<void> | undefined;
  #seq = 0;

  constructor(
    readonly path: string,
    private readonly logger: Logger,
  ) {}

  /** Schedules a write of `snapshot()` (called when the write starts, so it is current). */
  save(snapshot: () => unknown): void {
    this.#next = snapshot;
    this.#running ??= this.#drain();
  }

  /** Resolves when every scheduled write has finished. */
  async flush(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#next !== undefined) {
        const snapshot = this.#next;
        this.#next = undefined;
        await this.#write(JSON.stringify(snapshot()));
      }
    } finally {
      this.#running = undefined;
    }
  }

  async #write(text: string): Promise<void> {
    const temp = `${this.path}.${process.pid}.${++this.#seq}.tmp`;
    try {
      await mkdir(dirname(this.path), { recursive: true });
      await writeFile(temp, text, 'utf8');
      await rename(temp, this.path);
    } catch (err) {
      this.logger.error({ path: this.path, err: (err as Error).message }, 'cannot persist membership state');
    }
  }
}
