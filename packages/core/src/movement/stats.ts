/** Live counters of the movement component; its parts write them, `Movement.status()` reads them. */
export interface MovementCounters {
  /** Outgoing moves planned since start. */
  movesPlanned: number;
  /** Outgoing moves completed since start. */
  movesDone: number;
  /** Records stored at new owners by rebalancing (per target). */
  keysCopied: number;
  /** Records removed here after every new owner stored them. */
  keysPurged: number;
  /** Records this node stored from other nodes' batches (rebalancing, hints, repair). */
  keysReceived: number;
  /** Hints this node stored for other members. */
  hintsStored: number;
  /** Hints delivered to their member (or its successors) and removed. */
  hintsReplayed: number;
  /** Anti-entropy passes completed (digests compared). */
  antiEntropyPasses: number;
  /** Records stored on either side by anti-entropy. */
  antiEntropyRepaired: number;
  /** Digest buckets found to differ from the peer's, summed over the passes. */
  antiEntropyDiffering: number;
  /** The last failure of any movement task. */
  lastError: { readonly message: string; readonly code: string | null; readonly atMs: number } | null;
}

export function createMovementCounters(): MovementCounters {
  return {
    movesPlanned: 0,
    movesDone: 0,
    keysCopied: 0,
    keysPurged: 0,
    keysReceived: 0,
    hintsStored: 0,
    hintsReplayed: 0,
    antiEntropyPasses: 0,
    antiEntropyRepaired: 0,
    antiEntropyDiffering: 0,
    lastError: null,
  };
}
