import type { Random } from '../contracts/random.js';

/** Fisher-Yates shuffle of a copy of `items`, drawing from `random`. */
export function shuffleWith<T>(random: Pick<Random, 'int'>, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
