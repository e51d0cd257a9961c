import { pino } from 'pino';
import type { Logger as PinoLogger } from 'pino';
import { PinoPretty } from 'pino-pretty';
import type { LogLevel } from './settings.js';

export interface CreateLoggerOptions {
  readonly level: LogLevel;
  /** Human-readable lines instead of JSON. Default: when stdout is a terminal. */
  readonly pretty?: boolean;
  /** Where lines go; default stdout. */
  readonly destination?: NodeJS.WritableStream;
}

/**
 * The node's pino logger: JSON lines for machines, colored lines when a
 * person is watching. Errors are serialized with their code and stack.
 */
export function createLogger(options: CreateLoggerOptions): PinoLogger {
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  const settings = {
    level: options.level,
    serializers: { err: pino.stdSerializers.err },
    base: { pid: process.pid },
  };
  if (pretty) {
    return pino(settings, PinoPretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  // Synchronous writes: lines stay in order and none is lost when the process exits right after a shutdown.
  return pino(settings, options.destination ?? pino.destination({ dest: 1, sync: true }));
}
