import type { KeyTransfer } from '../contracts/placement.js';
import type { Storage, StoredRecord, Version } from '../contracts/storage.js';
import type { HybridLogicalClock } from './hlc.js';
import type { KeyLocks } from './key-locks.js';

export interface LocalKeyTransferOptions {
  readonly storage: Storage;
  readonly hlc: HybridLogicalClock;
  /** The write path's locks: every call waits for a write of the key running here. */
  readonly locks: KeyLocks;
}

/**
 * The KeyTransfer the KV service hands its placement: this node's record of
 * one key, read, stored (put if newer, version observed first) and purged
 * (up to a version) under the write path's lock on the key. A write that
 * takes the lock afterwards asks placement first (`WritePath`), so nothing
 * lands here once placement stopped admitting the key.
 */
export class LocalKeyTransfer implements KeyTransfer {
  readonly #o: LocalKeyTransferOptions;

  constructor(options: LocalKeyTransferOptions) {
    this.#o = options;
  }

  read(key: string): Promise<StoredRecord | undefined> {
    return this.#o.locks.run(key, () => this.#o.storage.get(key));
  }

  store(record: StoredRecord): Promise<boolean> {
    return this.#o.locks.run(record.key, async () => {
      this.#o.hlc.observe(record.version);
      return this.#o.storage.put(record);
    });
  }

  purge(key: string, upTo: Version): Promise<boolean> {
    return this.#o.locks.run(key, () => this.#o.storage.purge(key, upTo));
  }
}
