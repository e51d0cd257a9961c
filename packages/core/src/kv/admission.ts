import type { Clock } from '../contracts/clock.js';
import type { Message } from '../contracts/codec.js';
import type { Member } from '../contracts/membership.js';
import type { Admission, Intent, LocateOptions, Placement } from '../contracts/placement.js';
import { KvError, isKvError } from '../errors.js';
import { KV_MESSAGES } from './kv-messages.js';
import type { RefusedPayload } from './kv-messages.js';

/** Locating again after a refusal: at most this many attempts in all (the first included). */
export const MAX_LOCATE_ATTEMPTS = 5;
/** First wait before locating again, doubled each time (a view change spreads within a few periods). */
const RELOCATE_BACKOFF_MS = 25;
const RELOCATE_BACKOFF_MAX_MS = 400;

/**
 * A replica did not admit a request: thrown by the replica client when a
 * `kvmesh.kv.Refused` comes back (or the local placement refuses), caught by
 * the coordinator's relocation loop. Code NOT_OWNER or FROZEN; `moved` set
 * for a forward pointer.
 */
export class RefusedError extends KvError {
  readonly admission: Exclude<Admission, { kind: 'own' }>;

  constructor(admission: Exclude<Admission, { kind: 'own' }>, who: string, key: string) {
    const code = admission.kind === 'frozen' ? 'KVMESH_ERR_KV_FROZEN' : 'KVMESH_ERR_KV_NOT_OWNER';
    const why =
      admission.kind === 'frozen'
        ? `is moving key ${JSON.stringify(key)} (retry in ${admission.retryAfterMs} ms)`
        : admission.kind === 'moved'
          ? `says key ${JSON.stringify(key)} moved to ${admission.to.id}`
          : `does not own key ${JSON.stringify(key)} at its epoch ${admission.epoch}`;
    super(code, `${who} ${why}`);
    this.admission = admission;
  }
}

/**
 * The replica side of admission: undefined when placement admits the
 * request, else the `kvmesh.kv.Refused` message to answer with. A read
 * located in another view than this replica's (its epoch differs; 0 is
 * unknown) is refused before placement is asked: one of the two nodes has
 * not learned a view change yet, and this replica's answer (above all "not
 * found" from a new owner the change has not reached) could be stale. The
 * coordinator locates again until the views agree. Writes are admitted by
 * ownership alone: a record stored by an owner that lags is moved on when
 * it learns the view, so it is never lost.
 */
export function refusal(placement: Placement, key: string, intent: Intent, epoch: number): Message | undefined {
  const admission =
    intent === 'read' && epoch !== 0 && epoch !== placement.epoch
      ? ({ kind: 'not-owner', epoch: placement.epoch } as const)
      : placement.admit(key, intent, epoch);
  if (admission.kind === 'own') return undefined;
  return refusedMessage(admission, placement.epoch);
}

/** The `kvmesh.kv.Refused` message for a refusal by a replica at `epoch`. */
export function refusedMessage(admission: Exclude<Admission, { kind: 'own' }>, epoch: number): Message {
  const payload: RefusedPayload = {
    kind: admission.kind === 'not-owner' ? 'NOT_OWNER' : admission.kind === 'frozen' ? 'FROZEN' : 'MOVED',
    epoch: admission.kind === 'not-owner' ? admission.epoch : epoch,
    retryAfterMs: admission.kind === 'frozen' ? Math.max(0, Math.round(admission.retryAfterMs)) : 0,
    toId: admission.kind === 'moved' ? admission.to.id : '',
    toAddress: admission.kind === 'moved' ? admission.to.address : '',
  };
  return { type: KV_MESSAGES.refused, payload };
}

/** The admission a `kvmesh.kv.Refused` payload stands for. */
export function admissionOf(payload: RefusedPayload): Exclude<Admission, { kind: 'own' }> {
  switch (payload.kind) {
    case 'FROZEN':
      return { kind: 'frozen', retryAfterMs: payload.retryAfterMs };
    case 'MOVED': {
      const to: Member = { id: payload.toId, address: payload.toAddress, state: 'alive', incarnation: 0, meta: {} };
      return { kind: 'moved', to };
    }
    default:
      return { kind: 'not-owner', epoch: payload.epoch };
  }
}

export interface RelocateOptions {
  readonly clock: Clock;
  readonly signal?: AbortSignal;
  /** Attempts in all; default MAX_LOCATE_ATTEMPTS. */
  readonly attempts?: number;
  /** Called before each new attempt (for counters). */
  readonly onRetry?: () => void;
}

/**
 * Runs `attempt` (which locates the key and does the work) again while it
 * fails with a refusal, waiting in between: the frozen retry-after, else a
 * doubling backoff. `moved` is passed to the next attempt, which should send
 * its request there. The last refusal is thrown when the attempts run out.
 */
// Not async: every client operation runs through here and nearly all succeed
// in round 0, which then costs one promise reaction; the loop starts only
// after a failure.
export function withRelocation<T>(
  options: RelocateOptions,
  attempt: (moved: Member | undefined, round: number) => Promise<T>,
): Promise<T> {
  let first: Promise<T>;
  try {
    // Promise.resolve hands a native promise back as it is; it only wraps an attempt that answered a plain value.
    first = Promise.resolve(attempt(undefined, 0));
  } catch (err) {
    first = Promise.reject(err);
  }
  return first.then(undefined, (err: unknown) => relocate(options, attempt, err));
}

/** The rounds after round 0 failed with `failure`. */
async function relocate<T>(
  options: RelocateOptions,
  attempt: (moved: Member | undefined, round: number) => Promise<T>,
  failure: unknown,
): Promise<T> {
  const attempts = options.attempts ?? MAX_LOCATE_ATTEMPTS;
  let backoff = RELOCATE_BACKOFF_MS;
  let err = failure;
  for (let round = 1; ; round++) {
    // `err` is the failure of round - 1.
    if (!(err instanceof RefusedError) || round >= attempts) throw err;
    options.onRetry?.();
    const admission = err.admission;
    const moved = admission.kind === 'moved' ? admission.to : undefined;
    if (moved === undefined) {
      const wait = admission.kind === 'frozen' ? admission.retryAfterMs : backoff;
      backoff = Math.min(backoff * 2, RELOCATE_BACKOFF_MAX_MS);
      await options.clock.sleep(wait, options.signal);
    }
    try {
      return await attempt(moved, round);
    } catch (next) {
      err = next;
    }
  }
}

/** What a locate after a refusal asks placement: the last answer was refused, so not from a route cache. */
export function relocateIntent(intent: Intent, signal: AbortSignal | undefined): LocateOptions {
  return signal === undefined ? { intent, retry: true } : { intent, retry: true, signal };
}

/**
 * Whether `err` says the request most likely never reached a handler: a
 * refusal certainly did not; an unreachable or closed transport usually did
 * not, but a connection that broke while the handler ran (its node crashed
 * after applying the request) fails the same way, so a write that must not
 * apply twice (a conditional one) cannot go by it.
 */
export function notDelivered(err: unknown): boolean {
  return (
    isKvError(err, 'KVMESH_ERR_TRANSPORT_UNREACHABLE') ||
    isKvError(err, 'KVMESH_ERR_TRANSPORT_CLOSED') ||
    err instanceof RefusedError
  );
}
