import type { Clock, Timer } from '../contracts/clock.js';
import type { Member } from '../contracts/membership.js';
import { KvError, isKvError } from '../errors.js';

/** One replica's answer. */
export interface Answer<T> {
  readonly member: Member;
  readonly value: T;
}

export interface GatherOptions<T> {
  /** Replicas to ask, in the order to ask them. */
  readonly candidates: readonly Member[];
  /** Answers needed before the result resolves. */
  readonly needed: number;
  /** Replicas asked at once; each failure asks the next candidate, if any. */
  readonly parallel: number;
  readonly task: (member: Member) => Promise<T>;
  /** For the error message: `write of key "a"`. */
  readonly what: string;
  /** Called for every failed task, also after the result settled. */
  readonly onFailure?: (member: Member, err: unknown) => void;
  /**
   * Hedging: while too few answers came, ask one more candidate every
   * `hedgeMs` (a slow replica then costs a short delay, not a full
   * deadline). Needs `clock`. Off when undefined.
   */
  readonly hedgeMs?: number;
  readonly clock?: Clock;
}

/**
 * Asks replicas until `needed` of them answered. Resolves with the first
 * `needed` answers (tasks still running go on in the background); rejects
 * with KVMESH_ERR_KV_QUORUM as soon as too few replicas are left to reach
 * `needed`, naming every failure.
 */
export function gather<T>(options: GatherOptions<T>): Promise<Answer<T>[]> {
  const { candidates, needed, task, what, onFailure } = options;
  return new Promise((resolve, reject) => {
    const answers: Answer<T>[] = [];
    const failures: { member: Member; err: unknown }[] = [];
    let next = 0;
    let running = 0;
    let settled = false;
    let hedgeTimer: Timer | undefined;
    const settle = (): void => {
      settled = true;
      hedgeTimer?.cancel();
    };
    const launch = (): void => {
      const member = candidates[next++]!;
      running++;
      // An async wrapper turns a synchronous throw of `task` into a rejection.
      void (async () => task(member))().then(
        (value) => {
          running--;
          if (settled) return;
          answers.push({ member, value });
          if (answers.length >= needed) {
            settle();
            resolve(answers);
          }
        },
        (err: unknown) => {
          running--;
          onFailure?.(member, err);
          if (settled) return;
          failures.push({ member, err });
          if (next < candidates.length) launch();
          else if (answers.length + running < needed) {
            settle();
            reject(quorumError(what, needed, answers.length, failures));
          }
        },
      );
    };
    if (candidates.length < needed) {
      settled = true;
      reject(quorumError(what, needed, 0, []));
      return;
    }
    const first = Math.min(Math.max(options.parallel, needed), candidates.length);
    for (let i = 0; i < first; i++) launch();
    const { hedgeMs, clock } = options;
    if (hedgeMs !== undefined && clock !== undefined && next < candidates.length) {
      const hedge = (): void => {
        if (settled || next >= candidates.length) return;
        launch();
        hedgeTimer = clock.setTimeout(hedge, hedgeMs);
      };
      hedgeTimer = clock.setTimeout(hedge, hedgeMs);
    }
  });
}

/** The KVMESH_ERR_KV_QUORUM error for `what`, which got `answered` of `needed` answers. */
export function quorumError(
  what: string,
  needed: number,
  answered: number,
  failures: readonly { member: Member; err: unknown }[],
  reason?: string,
): KvError {
  const listed = failures.map(({ member, err }) => ({
    replica: member.id,
    code: isKvError(err) ? err.code : 'KVMESH_ERR_RPC_REMOTE',
    message: err instanceof Error ? err.message : String(err),
  }));
  const why =
    reason ?? (listed.length === 0 ? 'too few replicas' : listed.map((f) => `${f.replica}: ${f.message}`).join('; '));
  return new KvError(
    'KVMESH_ERR_KV_QUORUM',
    `${what} reached ${answered} of the ${needed} replicas it needs (${why}); retry when more replicas are up`,
    { cause: failures[0]?.err, details: { needed, answered, failures: listed } },
  );
}
