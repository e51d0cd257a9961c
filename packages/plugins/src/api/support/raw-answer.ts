import type { IncomingMessage, ServerResponse } from 'node:http';

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Writes a whole answer on the raw response, as Koa would send it (status,
 * the given headers, Content-Length): for a facade's fast routes
 * (`Facade.fastRoutes`), and for its Koa routes to share them (they set
 * `ctx.respond = false` after it). A HEAD request gets the headers without
 * the body.
 */
export function writeAnswer(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  headers: Readonly<Record<string, string>>,
  body: Uint8Array | string,
): void {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, { ...headers, 'Content-Length': bytes.byteLength });
  if (req.method === 'HEAD') res.end();
  else res.end(bytes);
}

/** `writeAnswer` of a JSON body, with the Content-Type Koa gives one. */
export function writeJson(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  headers: Readonly<Record<string, string>>,
  body: unknown,
): void {
  writeAnswer(req, res, status, { ...headers, 'Content-Type': JSON_TYPE }, JSON.stringify(body));
}
