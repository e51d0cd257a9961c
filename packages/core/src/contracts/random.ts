/**
 * Randomness for every plugin. Production uses `crypto`; tests and the
 * simulator use a seeded generator, so a whole run replays from its seed.
 * A plugin must never call `Math.random()` or `crypto` directly.
 */
export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n) for n >= 1. */
  int(n: number): number;
  /** `n` random bytes. */
  bytes(n: number): Uint8Array;
  /** A new array with the items of `items` in random order (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[];
  /** A new independent generator (for a component that must not perturb its parent's sequence). */
  fork(): Random;
}
