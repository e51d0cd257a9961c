import type { FacadeAnswer } from '@kvmesh/core';

/**
 * The body of a facade's answer as a JSON object, for its conformance
 * table's `errorFormat`: the object, or what is wrong with the answer (its
 * Content-Type is not `contentType`, or the body is not a JSON object).
 */
export function jsonObjectOf(answer: FacadeAnswer, contentType: string | RegExp): Record<string, unknown> | string {
  const type = String(answer.headers['content-type'] ?? '');
  if (typeof contentType === 'string' ? type !== contentType : !contentType.test(type)) {
    return `Content-Type is ${answer.headers['content-type']}`;
  }
  let body: unknown;
  try {
    body = JSON.parse(answer.body.toString('utf8'));
  } catch {
    return 'the body is not JSON';
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'the body is not an object';
  return body as Record<string, unknown>;
}
