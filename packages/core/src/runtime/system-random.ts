import { randomBytes, randomInt } from 'node:crypto';
import type { Random } from '../contracts/random.js';
import { shuffleWith } from './shuffle.js';

/** 2^-53: turns 53 random bits into a float in [0, 1). */
const FLOAT_SCALE = 2 ** -53;
/** `crypto.randomInt` accepts ranges below 2^48 only. */
const RANDOM_INT_LIMIT = 2 ** 48;

/** The production Random: every value comes from the operating system's CSPRNG (`node:crypto`). */
export class SystemRandom implements Random {
  next(): number {
    const b = randomBytes(7);
    const high = ((b[0]! & 0x1f) << 16) | (b[1]! << 8) | b[2]!;
    const low = ((b[3]! << 24) | (b[4]! << 16) | (b[5]! << 8) | b[6]!) >>> 0;
    return (high * 2 ** 32 + low) * FLOAT_SCALE;
  }

  int(n: number): number {
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`int(n) needs an integer n >= 1 (found ${n})`);
    return n <= RANDOM_INT_LIMIT ? randomInt(n) : Math.floor(this.next() * n);
  }

  bytes(n: number): Uint8Array {
    return new Uint8Array(randomBytes(n));
  }

  shuffle<T>(items: readonly T[]): T[] {
    return shuffleWith(this, items);
  }

  fork(): SystemRandom {
    return new SystemRandom();
  }
}
