/** Exit statuses of the `kvmesh` command (docs/cli.md). */
export const EXIT = Object.freeze({
  /** Done. */
  ok: 0,
  /** The command line, the config or the request was wrong (usage error, invalid config, 4xx answer). */
  usage: 1,
  /** Something failed at run time (the node could not start or stop, a node was unreachable, a 5xx answer). */
  runtime: 2,
});

/** A failure the CLI reports as one line on stderr and an exit status, without a stack. */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly exitCode: number;

  constructor(message: string, exitCode: number) {
    super(message);
    this.exitCode = exitCode;
  }
}
