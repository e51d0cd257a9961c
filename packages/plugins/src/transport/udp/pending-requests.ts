import { KvError, type Clock, type RequestOptions, type Timer } from '@kvmesh/core';
import type { HostPort } from '../host-port.js';
import { samePeer } from './datagram-socket.js';
import { aborted } from './udp-errors.js';

interface Pending {
  readonly peer: HostPort;
  readonly resolve: (frame: Uint8Array) => void;
  readonly reject: (err: KvError) => void;
  readonly timer: Timer;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/**
 * The requests sent as datagrams that wait for an answer, by request id:
 * each ends exactly once, by its answer, its deadline (on the injected
 * Clock), its caller's signal, or `failAll`.
 */
export class PendingRequests {
  readonly #clock: Clock;
  readonly #pending = new Map<number, Pending>();
  #nextId: number;

  /** `firstId`: a random start keeps a restarted node from matching answers meant for its previous run. */
  constructor(clock: Clock, firstId: number) {
    this.#clock = clock;
    this.#nextId = firstId >>> 0;
  }

  /** A fresh id, never 0 (one-way frames) nor one still waiting. */
  nextId(): number {
    do this.#nextId = (this.#nextId + 1) >>> 0;
    while (this.#nextId === 0 || this.#pending.has(this.#nextId));
    return this.#nextId;
  }

  /**
   * Registers request `id` to `peer`, calls `transmit` to send it, and
   * resolves with its answer. `to` names the peer in errors.
   */
  wait(id: number, to: string, peer: HostPort, options: RequestOptions, transmit: () => void): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const { signal, timeoutMs } = options;
      const onAbort = (): void => this.settle(id, aborted(to));
      const timer = this.#clock.setTimeout(
        () => this.settle(id, new KvError('KVMESH_ERR_RPC_TIMEOUT', `no response from ${to} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#pending.set(id, { peer, resolve, reject, timer, signal, onAbort });
      signal?.addEventListener('abort', onAbort, { once: true });
      transmit();
    });
  }

  /** True when request `id` waits for an answer from `sender`. */
  expects(id: number, sender: HostPort): boolean {
    const pending = this.#pending.get(id);
    return pending !== undefined && samePeer(pending.peer, sender);
  }

  /** Ends request `id` with `outcome` (a frame, or the error to reject with). No-op when it already ended. */
  settle(id: number, outcome: Uint8Array | KvError): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    pending.timer.cancel();
    pending.signal?.removeEventListener('abort', pending.onAbort);
    if (outcome instanceof Uint8Array) pending.resolve(outcome);
    else pending.reject(outcome);
  }

  failAll(error: KvError): void {
    for (const id of [...this.#pending.keys()]) this.settle(id, error);
  }
}
