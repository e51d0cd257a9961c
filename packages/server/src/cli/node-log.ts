import { open, stat } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';

/** Longest line shown from a node's log; pino lines with big objects are cut. */
const MAX_LINE_CHARS = 400;
/** How much of a log's end is read to find its last lines. */
const TAIL_BYTES = 64 * 1024;

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};
/** Fields every log line has, left out when a line is shown to a person. */
const ROUTINE_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'node']);

/**
 * A node's JSON log line (pino) as `level msg {other fields}`, for a terminal;
 * anything else (the CLI's own `kvmesh: ...` errors on stderr) as it is.
 */
export function readableLine(line: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof parsed !== 'object' || parsed === null) return line;
  const record = parsed as Record<string, unknown>;
  if (typeof record['msg'] !== 'string') return line;
  const level = LEVEL_NAMES[record['level'] as number] ?? String(record['level'] ?? '');
  const rest = Object.fromEntries(Object.entries(record).filter(([k]) => !ROUTINE_FIELDS.has(k)));
  const fields = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
  return `${level} ${record['msg']}${fields}`;
}

/** Size of `file` now, 0 when it does not exist yet: the offset where a new run's output starts. */
export async function logSize(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

/** The last `count` lines written to `file` after byte `from` (this run's output), readable, each cut at MAX_LINE_CHARS. */
export async function lastLines(file: string, from: number, count: number): Promise<string[]> {
  let text: string;
  try {
    const size = await logSize(file);
    const start = Math.max(from, size - TAIL_BYTES);
    text = (await readRange(file, start, size)).toString('utf8');
  } catch {
    return [];
  }
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  return lines
    .slice(-count)
    .map((line) => (line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}...` : line));
}

async function readRange(file: string, start: number, end: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(Math.max(0, end - start));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Follows a log file that a child process appends to (its stdout and stderr
 * are the file itself, so they survive this process), calling `onLine` with
 * each complete line written after `from`. Polls, as file watching is not
 * reliable on every file system. `stop()` delivers what is left and ends.
 */
export class LogFollower {
  readonly #file: string;
  readonly #onLine: (line: string) => void;
  readonly #timer: NodeJS.Timeout;
  #offset: number;
  #partial = '';
  readonly #decoder = new StringDecoder('utf8');
  #reading: Promise<void> = Promise.resolve();

  constructor(file: string, from: number, onLine: (line: string) => void, intervalMs = 200) {
    this.#file = file;
    this.#offset = from;
    this.#onLine = onLine;
    this.#timer = setInterval(() => this.#poll(), intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#poll();
    if (this.#partial !== '') this.#onLine(this.#partial);
    this.#partial = '';
  }

  #poll(): Promise<void> {
    this.#reading = this.#reading.then(async () => {
      const size = await logSize(this.#file);
      if (size <= this.#offset) return;
      const chunk = await readRange(this.#file, this.#offset, size).catch(() => Buffer.alloc(0));
      this.#offset += chunk.length;
      const lines = (this.#partial + this.#decoder.write(chunk)).split('\n');
      this.#partial = lines.pop() ?? '';
      for (const line of lines) if (line !== '') this.#onLine(line);
    });
    return this.#reading;
  }
}
