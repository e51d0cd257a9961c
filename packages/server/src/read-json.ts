import type { IncomingMessage } from 'node:http';
import { KvError } from '@kvmesh/core';
import { TOO_LARGE, readBody } from './read-body.js';

/**
 * Reads and parses a JSON request body of at most `maxBytes` (the config's
 * `api.maxJsonBodyBytes`), for admin and facade routes. An empty body is
 * `undefined`.
 * @throws KvError KVMESH_ERR_HTTP_BODY_TOO_LARGE (413) or KVMESH_ERR_HTTP_BAD_REQUEST (400, not JSON).
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const body = await readBody(req, maxBytes);
  if (body === TOO_LARGE) {
    throw new KvError(
      'KVMESH_ERR_HTTP_BODY_TOO_LARGE',
      `the request body is larger than ${maxBytes} bytes (api.maxJsonBodyBytes)`,
    );
  }
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw new KvError('KVMESH_ERR_HTTP_BAD_REQUEST', `the request body is not JSON: ${(err as Error).message}`);
  }
}
