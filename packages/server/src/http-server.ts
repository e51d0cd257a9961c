import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorCode, Logger } from '@kvmesh/core';
import { ERROR_CODES, KvError } from '@kvmesh/core';
import { HTTP_STATUS_BY_CODE, errorBody } from './http-errors.js';
import type { ApiSettings } from './settings.js';
import { joinHostPort } from './settings.js';

export type Listener = (req: IncomingMessage, res: ServerResponse) => void;

export interface HttpServerOptions {
  /**
   * Largest request body any route of the server accepts (`limits.maxValueBytes`):
   * a request with `Expect: 100-continue` declaring more is not told to
   * continue, so the client never sends a body that will be refused.
   */
  readonly maxBodyBytes: number;
}

/**
 * How often node:http looks for requests past `requestTimeout`. Its default
 * (30 s) lets a stalled request live up to half as long again as the
 * documented timeout; a tenth of it, at least 100 ms and at most 1 s, keeps
 * the 408 close to it for the price of one walk over the open connections.
 */
function checkingIntervalMs(requestTimeoutMs: number): number {
  return Math.min(1_000, Math.max(100, Math.floor(requestTimeoutMs / 10)));
}

/**
 * An HTTP server with the API's connection settings: pipelined requests take
 * effect in arrival order, absolute-form targets are served as their path,
 * `Expect: 100-continue` is answered only for a body that can be taken, and
 * what node:http's parser refuses (malformed bytes, a request line or headers
 * too long, a request not received within `requestTimeoutMs`) is answered
 * with the documented status and the native JSON error body, then closed.
 */
export function httpServer(api: ApiSettings, logger: Logger, listener: Listener, options: HttpServerOptions): Server {
  const serve = inArrivalOrder(withOriginForm(listener));
  const server = createServer(
    {
      keepAliveTimeout: api.keepAliveTimeoutMs,
      requestTimeout: api.requestTimeoutMs,
      connectionsCheckingInterval: checkingIntervalMs(api.requestTimeoutMs),
    },
    serve,
  );
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    // A declared length over the limit: the route refuses it (413) without reading, so no 100 is sent.
    if (!(Number(req.headers['content-length']) > options.maxBodyBytes)) res.writeContinue();
    serve(req, res);
  });
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) => {
    const code = parserErrorCode(err);
    if (code === undefined || !socket.writable || socket.destroyed) {
      socket.destroy();
      return;
    }
    logger.debug({ err: err.code ?? err.message, answer: code }, 'HTTP request refused by the parser');
    socket.end(rawAnswer(code, parserErrorMessage(code, api)));
  });
  return server;
}

/**
 * The error code for what node:http's parser refused, or undefined for a
 * connection that is gone (reset, closed mid-request) and gets no answer.
 */
export function parserErrorCode(err: NodeJS.ErrnoException & { rawPacket?: Buffer }): ErrorCode | undefined {
  switch (err.code) {
    case 'ECONNRESET':
    case 'EPIPE':
      return undefined;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 'KVMESH_ERR_HTTP_REQUEST_TIMEOUT';
    case 'HPE_HEADER_OVERFLOW':
      return overflowInRequestLine(err.rawPacket)
        ? 'KVMESH_ERR_HTTP_URI_TOO_LONG'
        : 'KVMESH_ERR_HTTP_HEADERS_TOO_LARGE';
    default:
      return 'KVMESH_ERR_HTTP_BAD_REQUEST';
  }
}

/** A request line longer than this, with the limit hit, is answered 414 rather than 431. */
const LONG_REQUEST_LINE = 4_096;
const REQUEST_LINE_END = / HTTP\/\d\.\d$/;

/**
 * Whether the header-size limit was hit in the request line. node:http
 * counts the request line and the headers together and reports both as one
 * overflow; the packet it failed on tells them apart: no line end at all
 * (the target is still going), or a first line that ends the request line
 * and is long.
 */
function overflowInRequestLine(packet: Buffer | undefined): boolean {
  if (packet === undefined) return false;
  const end = packet.indexOf('\r\n');
  if (end < 0) return packet.indexOf(': ') < 0;
  const first = packet.toString('latin1', 0, end);
  return REQUEST_LINE_END.test(first) && first.length > LONG_REQUEST_LINE;
}

function parserErrorMessage(code: ErrorCode, api: ApiSettings): string {
  switch (code) {
    case 'KVMESH_ERR_HTTP_REQUEST_TIMEOUT':
      return `the request was not received in full within ${api.requestTimeoutMs} ms (api.requestTimeoutMs)`;
    case 'KVMESH_ERR_HTTP_URI_TOO_LONG':
      return 'the request line is longer than the server reads (16 KiB with the headers); use a shorter key';
    case 'KVMESH_ERR_HTTP_HEADERS_TOO_LARGE':
      return 'the request headers are larger than the server reads (16 KiB with the request line)';
    default:
      return 'the request is not well-formed HTTP/1.1';
  }
}

/** A complete HTTP/1.1 answer on a socket no response object owns, closing the connection. */
function rawAnswer(code: ErrorCode, message: string): string {
  const status = HTTP_STATUS_BY_CODE[code];
  const body = errorBody(code, message);
  return (
    `HTTP/1.1 ${status} ${REASONS[status] ?? ERROR_CODES[code]}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' +
    body
  );
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
};

const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*/i;

/**
 * A request target in absolute form (`GET http://host:port/v1/kv/a HTTP/1.1`,
 * RFC 9112 §3.2.2, which a server must accept) is served as its origin form,
 * the path and query; the authority it names is this server.
 */
function withOriginForm(listener: Listener): Listener {
  return (req, res) => {
    const url = req.url!;
    if (url.charCodeAt(0) !== 47 /* '/' */) {
      const authority = ABSOLUTE_FORM.exec(url);
      if (authority !== null) req.url = url.slice(authority[0].length) || '/';
    }
    listener(req, res);
  };
}

/**
 * Requests pipelined on one keep-alive connection take effect in the order
 * they arrived (RFC 9112 §9.3.2): a PUT then a GET of the same key must read
 * the write. node:http calls the request listener for each request as soon
 * as it is parsed, but answers them in order: a response that has to wait
 * for an earlier, unfinished response on its connection is queued without a
 * socket (`res.socket === null`) and gets it, with a `socket` event, once
 * every earlier response finished. Starting the request only then runs a
 * connection's requests one after another. The usual client, one request at
 * a time, pays one property check: nothing is allocated or awaited.
 * `test/pipelining.test.ts` pins this node:http behaviour.
 */
function inArrivalOrder(listener: Listener): Listener {
  return (req, res) => {
    if (res.socket === null) res.once('socket', () => listener(req, res));
    else listener(req, res);
  };
}

/**
 * Listens on `host:port` (0: any free port) and resolves to the bound port.
 * @throws KvError KVMESH_ERR_HTTP_LISTEN (in use, or not an address of this machine).
 */
export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(
        new KvError(
          'KVMESH_ERR_HTTP_LISTEN',
          `cannot listen at ${joinHostPort(host, port)}: ${err.code ?? err.message}`,
          {
            cause: err,
          },
        ),
      );
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      const bound = server.address();
      resolve(bound !== null && typeof bound === 'object' ? bound.port : port);
    });
  });
}
