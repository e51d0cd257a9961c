/**
 * Lifeguard's local health multiplier (memberlist `awareness.go`): a score
 * that rises when this member misses acks or nacks it should have received,
 * or has to refute a suspicion of itself, and falls with every successful
 * probe. A member in trouble stretches its own probe period by score + 1,
 * so a slow member blames itself before it blames others.
 */
export class Awareness {
  readonly #max: number;
  #score = 0;

  /** @param maxMultiplier the largest factor; 1 turns awareness off. */
  constructor(maxMultiplier: number) {
    this.#max = Math.max(1, maxMultiplier);
  }

  get score(): number {
    return this.#score;
  }

  applyDelta(delta: number): void {
    this.#score = Math.min(this.#max - 1, Math.max(0, this.#score + delta));
  }

  scale(ms: number): number {
    return ms * (this.#score + 1);
  }
}
