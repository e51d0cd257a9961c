import type { IncomingMessage } from 'node:http';
import { KvError } from '@kvmesh/core';

/** Returned instead of the body when it is larger than allowed; nothing past the limit was buffered. */
export const TOO_LARGE = Symbol('too large');

const EMPTY = Buffer.alloc(0);

/**
 * Reads a request body of at most `maxBytes`. A declared Content-Length over
 * the limit is refused before a byte is read; a chunked body is counted as it
 * streams and refused as soon as it passes the limit. On refusal the request
 * is left paused (the caller answers and closes the connection).
 * @throws KvError KVMESH_ERR_HTTP_CLIENT_ABORTED (rejects) when the client closes
 *   the connection, or ends the body short of its declared length, before it is read.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | typeof TOO_LARGE> {
  const header = req.headers['content-length'];
  const declared = header === undefined ? -1 : Number(header);
  if (declared > maxBytes) return Promise.resolve(TOO_LARGE);
  if (declared === 0 || (header === undefined && req.headers['transfer-encoding'] === undefined)) {
    return Promise.resolve(EMPTY);
  }
  return new Promise((resolve, reject) => {
    // With a declared length the bytes land in one buffer; otherwise chunks are kept and joined.
    const whole = declared > 0 ? Buffer.allocUnsafe(declared) : undefined;
    const chunks: Buffer[] = [];
    let received = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      const next = received + chunk.length;
      if (next > maxBytes || (whole !== undefined && next > whole.length)) {
        cleanup();
        req.pause();
        resolve(TOO_LARGE);
        return;
      }
      if (whole !== undefined) chunk.copy(whole, received);
      else chunks.push(chunk);
      received = next;
    };
    const onEnd = (): void => {
      cleanup();
      if (whole !== undefined) {
        if (received === whole.length) resolve(whole);
        else reject(aborted(`the request body ended after ${received} of ${whole.length} declared bytes`));
      } else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(aborted(`the request body could not be read: ${err.message}`, err));
    };
    const onClose = (): void => {
      cleanup();
      reject(aborted('the client closed the connection before the body was read'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function aborted(message: string, cause?: Error): KvError {
  return new KvError('KVMESH_ERR_HTTP_CLIENT_ABORTED', `${message}; nothing was written`, cause ? { cause } : {});
}
