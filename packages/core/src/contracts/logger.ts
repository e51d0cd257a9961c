/** Structured fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/**
 * A pino-compatible structured logger. Methods never throw and never block
 * on I/O for long; a plugin logs through the injected Logger only.
 */
export interface Logger {
  debug(fields: LogFields, message?: string): void;
  info(fields: LogFields, message?: string): void;
  warn(fields: LogFields, message?: string): void;
  error(fields: LogFields, message?: string): void;
  /** A logger whose lines all carry `bindings` (e.g. `{ plugin: '<name>' }`). */
  child(bindings: LogFields): Logger;
}

const noop = (): void => undefined;

/** A logger that drops everything: the default in tests and the simulator. */
export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
};
