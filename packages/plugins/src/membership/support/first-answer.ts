import { KvError, isKvError } from '@kvmesh/core';

/**
 * Calls `attempt` for every target at once and resolves when the first one
 * succeeds (the others keep running). Resolves at once for no targets.
 * @throws KvError with the first failure's code when every attempt failed.
 */
export function firstAnswer(targets: readonly string[], attempt: (target: string) => Promise<unknown>): Promise<void> {
  if (targets.length === 0) return Promise.resolve();
  const errors: unknown[] = [];
  return new Promise<void>((resolve, reject) => {
    for (const target of targets) {
      attempt(target).then(
        () => resolve(),
        (err: unknown) => {
          errors.push(err);
          if (errors.length === targets.length) reject(noAnswer(targets, errors[0]));
        },
      );
    }
  });
}

/** The error for `targets` that all failed, carrying the first failure's code. */
export function noAnswer(targets: readonly string[], first: unknown): KvError {
  const code = isKvError(first) ? first.code : 'KVMESH_ERR_TRANSPORT_UNREACHABLE';
  const reason = first instanceof Error ? first.message : String(first);
  return new KvError(code, `none of ${targets.join(', ')} answered: ${reason}`, { cause: first });
}
