import type { IncomingMessage } from 'node:http';

/** What `readBody` returns when the body is over the limit (the rest is left unread). */
export const BODY_TOO_LARGE = Symbol('body too large');

/**
 * Reads a request body into one buffer, stopping as soon as it passes
 * `limitBytes` so an oversized body is never buffered whole.
 * Rejects when the client goes away before the end.
 */
export function readBody(req: IncomingMessage, limitBytes: number): Promise<Uint8Array | typeof BODY_TOO_LARGE> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (value: Uint8Array | typeof BODY_TOO_LARGE | Error): void => {
      if (done) return;
      done = true;
      req.off('data', onData);
      if (value instanceof Error) reject(value);
      else resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limitBytes) {
        req.pause();
        finish(BODY_TOO_LARGE);
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => {
      const body = Buffer.concat(chunks, size);
      finish(new Uint8Array(body.buffer, body.byteOffset, body.length));
    });
    req.on('error', (err) => finish(err));
    req.on('close', () => finish(new Error('client closed the connection before the body ended')));
  });
}
