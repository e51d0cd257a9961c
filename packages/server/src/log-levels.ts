/** The levels a `log.level` may name (pino's, plus `silent`). Kept apart so the CLI can load it cheaply. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
