import type { Clock, Timer } from '../contracts/clock.js';
import type { Logger } from '../contracts/logger.js';
import type { Storage } from '../contracts/storage.js';

/** Bounds of the collection interval: a quarter of the grace period, clamped to [1 s, 1 h]. */
export const MIN_TOMBSTONE_COLLECT_INTERVAL_MS = 1000;
export const MAX_TOMBSTONE_COLLECT_INTERVAL_MS = 60 * 60 * 1000;

/** How often tombstones older than `graceMs` are collected. */
export function tombstoneCollectIntervalMs(graceMs: number): number {
  return Math.min(
    MAX_TOMBSTONE_COLLECT_INTERVAL_MS,
    Math.max(MIN_TOMBSTONE_COLLECT_INTERVAL_MS, Math.floor(graceMs / 4)),
  );
}

export interface TombstoneCollectorOptions {
  readonly clock: Clock;
  readonly storage: Storage;
  readonly logger: Logger;
  /** Tombstones whose version is older than this many ms are removed. */
  readonly graceMs: number;
  /** Told how many tombstones each run removed. */
  readonly onCollected?: (count: number) => void;
}

/**
 * Removes old tombstones from local storage on a timer of the injected
 * Clock. Runs never overlap; a failed run is logged and the next one tries again.
 */
export class TombstoneCollector {
  readonly intervalMs: number;
  readonly #options: TombstoneCollectorOptions;
  #timer: Timer | undefined;
  #running: Promise<number> | undefined;

  constructor(options: TombstoneCollectorOptions) {
    this.#options = options;
    this.intervalMs = tombstoneCollectIntervalMs(options.graceMs);
  }

  start(): void {
    this.#timer ??= this.#options.clock.setInterval(() => void this.collect(), this.intervalMs);
  }

  async stop(): Promise<void> {
    this.#timer?.cancel();
    this.#timer = undefined;
    await this.#running;
  }

  /** One collection now (or the one already running); resolves to how many tombstones it removed. */
  collect(): Promise<number> {
    this.#running ??= this.#collect().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #collect(): Promise<number> {
    const { clock, storage, logger, graceMs, onCollected } = this.#options;
    try {
      const count = await storage.collectTombstones(clock.now() - graceMs);
      if (count > 0) logger.debug({ count }, 'collected tombstones');
      onCollected?.(count);
      return count;
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'tombstone collection failed; retrying at the next interval');
      return 0;
    }
  }
}
