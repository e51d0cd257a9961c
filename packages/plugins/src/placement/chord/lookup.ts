import { KvError, type Clock } from '@kvmesh/core';
import type { NodeRef } from './node-ref.js';
import type { Ident } from './ring.js';
import type { Answer } from './routing-table.js';

/** A lookup asks at most this many nodes: far beyond log2 N for any ring that fits in memory. */
export const MAX_LOOKUP_HOPS = 64;

export interface LookupResult {
  /** The target's successor, then the nodes after it. */
  readonly replicas: readonly NodeRef[];
  /** Exclusive start of the arc whose keys live at `replicas[0]`. */
  readonly rangeStart: Ident;
  /** Requests sent, one after another (failed ones included). */
  readonly hops: number;
}

export interface LookupOptions {
  readonly target: Ident;
  /** The nodes this node would ask first, best first (its closest preceding fingers). */
  readonly first: readonly NodeRef[];
  readonly selfId: string;
  readonly clock: Clock;
  readonly timeoutMs: number;
  readonly deadlineMs?: number;
  readonly signal?: AbortSignal;
  readonly isDead: (id: string) => boolean;
  /** One FindSuccessor step at `node`. */
  readonly ask: (node: NodeRef) => Promise<Answer>;
  /** A step failed (the node will be skipped; `ask`'s error tells whether it is gone). */
  readonly onFailure: (node: NodeRef, err: unknown) => void;
}

/**
 * Chord's find_successor, iterative: this node asks the closest preceding
 * node it knows, which answers with the successor (done) or with nodes
 * closer still, and so on. Each node is asked at most once; when one fails,
 * the next best candidate of the previous answer is asked instead. Iterative
 * rather than recursive so that the node that needs the answer sees every
 * step: it counts the hops honestly, routes around a node that does not
 * answer, and keeps its deadline.
 * @throws KvError KVMESH_ERR_RPC_TIMEOUT past the deadline, KVMESH_ERR_RPC_ABORTED,
 *   KVMESH_ERR_PLACEMENT_EMPTY when no candidate is left to ask.
 */
export async function lookup(options: LookupOptions): Promise<LookupResult> {
  const { target, clock } = options;
  const asked = new Set<string>([options.selfId]);
  let candidates: readonly NodeRef[] = options.first;
  let hops = 0;
  let lastError: unknown;
  while (hops < MAX_LOOKUP_HOPS) {
    if (options.signal?.aborted) throw options.signal.reason;
    if (options.deadlineMs !== undefined && clock.now() >= options.deadlineMs) {
      throw new KvError('KVMESH_ERR_RPC_TIMEOUT', `the lookup of ${target} passed its deadline after ${hops} hops`);
    }
    const index = candidates.findIndex((n) => !asked.has(n.id) && !options.isDead(n.id));
    if (index < 0) break;
    const node = candidates[index]!;
    const rest = candidates.slice(index + 1);
    asked.add(node.id);
    hops++;
    let answer: Answer;
    try {
      answer = await options.ask(node);
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      lastError = err;
      options.onFailure(node, err);
      candidates = rest;
      continue;
    }
    if (answer.done) {
      const replicas = answer.replicas.filter((n) => !options.isDead(n.id));
      if (replicas.length > 0) return { replicas, rangeStart: answer.rangeStart, hops };
      candidates = rest;
      continue;
    }
    // The closer nodes first; the alternatives of earlier answers stay behind them as fallbacks.
    candidates = [...answer.closer, ...rest];
  }
  throw new KvError(
    'KVMESH_ERR_PLACEMENT_EMPTY',
    `no node could name the successor of ${target} after ${hops} hops${lastError instanceof Error ? ` (last failure: ${lastError.message})` : ''}`,
    lastError === undefined ? {} : { cause: lastError },
  );
}
