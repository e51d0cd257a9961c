import { KvError } from '../errors.js';

/** One thing wrong with a config, at a JSON Pointer path (`/membership/options/probeIntervalMs`). */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
  /** Set for unset environment variables. */
  readonly env?: boolean;
}

/** One error naming the file and every problem, each on its own line. */
export function configError(file: string, problems: readonly ConfigProblem[]): KvError {
  const onlyEnv = problems.every((p) => p.env === true);
  const lines = problems.map((p) => `  ${p.path}: ${p.message}`);
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  return new KvError(
    onlyEnv ? 'KVMESH_ERR_CONFIG_ENV' : 'KVMESH_ERR_CONFIG_INVALID',
    `${file}: ${count}\n${lines.join('\n')}`,
    {
      details: { file, problems: problems.map(({ path, message }) => ({ path, message })) },
    },
  );
}
