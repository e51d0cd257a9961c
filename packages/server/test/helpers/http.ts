import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { HTTPParser } from 'http-parser-js';

export interface TestResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  json<T = any>(): T;
}

export interface TestRequest {
  readonly method?: string;
  readonly headers?: Record<string, string | number>;
  readonly body?: Buffer | string;
}

/** One request on a fresh connection; the path is sent exactly as given. */
export function http(base: string, path: string, init: TestRequest = {}): Promise<TestResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method: init.method ?? 'GET',
        path,
        headers: init.headers ?? {},
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: () => JSON.parse(body.toString('utf8')),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

/** Longest a raw exchange may take: reaching it fails the test, it is not how an exchange normally ends. */
export const RAW_EXCHANGE_TIMEOUT_MS = 10_000;

export interface RawExchangeOptions {
  /** Failure after this long (default RAW_EXCHANGE_TIMEOUT_MS). */
  readonly timeoutMs?: number;
  /**
   * Once this many responses were read, end the sending side: a server that
   * holds the rest of the bytes as the start of a request then answers it or
   * closes (bytes that may be a partial request, such as random junk).
   */
  readonly endAfter?: number;
}

/**
 * Writes raw bytes on a TCP connection and resolves with everything the
 * server sent (as latin1 text) once `responses` HTTP/1.1 responses were read
 * whole (status line, headers, and a Content-Length, chunked or
 * read-until-close body, parsed by http-parser-js), or once the server closed
 * the connection, whichever comes first. Rejects when the server sends bytes
 * that are not an HTTP response, when the connection fails before any byte
 * arrived, or when neither happened within `timeoutMs`. Responses to HEAD
 * requests carry no body, which this helper cannot know: send none.
 */
export function rawExchange(
  base: string,
  bytes: string | Buffer,
  responses: number,
  options: RawExchangeOptions = {},
): Promise<string> {
  const timeoutMs = options.timeoutMs ?? RAW_EXCHANGE_TIMEOUT_MS;
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    const chunks: Buffer[] = [];
    const text = (): string => Buffer.concat(chunks).toString('latin1');
    const parser = new HTTPParser(HTTPParser.RESPONSE);
    let complete = 0;
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      outcome();
    };
    const timer = setTimeout(
      () =>
        settle(() =>
          reject(
            new Error(
              `${base}: ${complete} of ${responses} responses in ${timeoutMs} ms, connection still open; ` +
                `received ${JSON.stringify(text().slice(0, 2_000))}`,
            ),
          ),
        ),
      timeoutMs,
    );
    parser[HTTPParser.kOnMessageComplete] = () => {
      complete++;
      if (complete >= responses) settle(() => resolve(text()));
      else if (complete === options.endAfter) socket.end();
    };
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      const parsed = parser.execute(c);
      if (parsed instanceof Error) {
        settle(() =>
          reject(
            new Error(`${base}: not an HTTP response (${parsed.message}): ${JSON.stringify(text().slice(0, 2_000))}`),
          ),
        );
      }
    });
    const closed = (): void => {
      // A body without a length ends with the connection.
      if (!settled) parser.finish();
      settle(() => resolve(text()));
    };
    socket.on('end', closed);
    socket.on('close', closed);
    socket.on('error', (err) => (chunks.length > 0 ? closed() : settle(() => reject(err))));
  });
}

/** Polls `check` until it returns true, every `intervalMs`, failing after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
  intervalMs = 25,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // Not yet: the condition may throw while the thing it waits for is starting.
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
