import type { FacadeAnswer, FacadeConformanceTable } from '@kvmesh/core';
import { jsonObjectOf } from '../support/json-answer.js';
import { PROBLEM_TYPE, problemOf } from './problem-details.js';

const BYTES = 'application/octet-stream';
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff]);
const LONG_KEY = 'k'.repeat(65);
const NO_BODY = { 'content-type': null, 'content-length': '0' };
const METHODS_MESSAGE = (method: string): string => `${method} is not allowed on /keys/<key>; use GET, HEAD, PUT`;

/**
 * The KeyShift facade's table for `runFacadeConformance`: every answer it
 * gives, exactly, on a node with the suite's limits (keys up to 64 bytes,
 * values up to 1024), in order (later rows see earlier writes).
 */
export const keyShiftConformance: FacadeConformanceTable = {
  cases: [
    {
      title: 'a key never written is 404',
      request: { method: 'GET', path: '/keys/greeting' },
      expect: {
        status: 404,
        json: problemOf(404, 'KVMESH_ERR_HTTP_KEY_NOT_FOUND', 'key "greeting" not found'),
        headers: { 'content-type': PROBLEM_TYPE },
      },
    },
    {
      title: 'PUT stores the raw body: 200 with no body',
      request: { method: 'PUT', path: '/keys/greeting', body: 'hello' },
      expect: { status: 200, headers: NO_BODY },
    },
    {
      title: 'GET answers the bytes as application/octet-stream',
      request: { method: 'GET', path: '/keys/greeting' },
      expect: { status: 200, body: 'hello', headers: { 'content-type': BYTES, 'content-length': '5' } },
    },
    {
      title: 'PUT over an existing key replaces it: 200',
      request: { method: 'PUT', path: '/keys/greeting', body: 'hello again' },
      expect: { status: 200, headers: NO_BODY },
    },
    {
      title: 'GET answers the newest value',
      request: { method: 'GET', path: '/keys/greeting' },
      expect: { status: 200, body: 'hello again' },
    },
    {
      title: 'the query string is not part of the key',
      request: { method: 'GET', path: '/keys/greeting?token=3f2504e0-4f89-11d3-9a0c-0305e82c3301' },
      expect: { status: 200, body: 'hello again' },
    },
    {
      title: 'HEAD answers the headers of a GET without the bytes',
      request: { method: 'HEAD', path: '/keys/greeting' },
      expect: { status: 200, headers: { 'content-length': '11', 'content-type': BYTES } },
    },
    {
      title: 'any bytes, whatever their Content-Type; an encoded slash is a slash',
      request: { method: 'PUT', path: '/keys/photos%2F1', headers: { 'content-type': 'image/png' }, body: PNG },
      expect: { status: 200, headers: NO_BODY },
    },
    {
      title: 'the same key read with a plain slash: the bytes, as application/octet-stream',
      request: { method: 'GET', path: '/keys/photos/1' },
      expect: { status: 200, body: PNG, headers: { 'content-type': BYTES } },
    },
    {
      title: 'a key of non-ASCII text, percent-encoded',
      request: { method: 'PUT', path: '/keys/caf%C3%A9', body: 'au lait' },
      expect: { status: 200, headers: NO_BODY },
    },
    {
      title: 'the non-ASCII key reads back',
      request: { method: 'GET', path: '/keys/caf%C3%A9' },
      expect: { status: 200, body: 'au lait' },
    },
    {
      title: 'an empty body is an empty value',
      request: { method: 'PUT', path: '/keys/empty' },
      expect: { status: 200, headers: NO_BODY },
    },
    {
      title: 'the empty value reads back empty, not 404',
      request: { method: 'GET', path: '/keys/empty' },
      expect: { status: 200, headers: { 'content-length': '0', 'content-type': BYTES } },
    },
    {
      title: 'DELETE is not a KeyShift client method: 405 with Allow, and the key stays',
      request: { method: 'DELETE', path: '/keys/greeting' },
      badInput: true,
      expect: {
        status: 405,
        json: problemOf(405, 'KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED', METHODS_MESSAGE('DELETE')),
        headers: { allow: 'GET, HEAD, PUT' },
      },
    },
    {
      title: 'the key DELETE was refused on is still there',
      request: { method: 'GET', path: '/keys/greeting' },
      expect: { status: 200, body: 'hello again' },
    },
    {
      title: 'POST is not a KeyShift method: 405',
      request: { method: 'POST', path: '/keys/greeting', body: 'x' },
      badInput: true,
      expect: {
        status: 405,
        json: problemOf(405, 'KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED', METHODS_MESSAGE('POST')),
        headers: { allow: 'GET, HEAD, PUT' },
      },
    },
    {
      title: 'an empty key is 400',
      request: { method: 'PUT', path: '/keys/', body: 'x' },
      badInput: true,
      expect: { status: 400, json: problemOf(400, 'KVMESH_ERR_KV_KEY_INVALID', 'the key is empty: use /keys/<key>') },
    },
    {
      title: 'a malformed escape in the key is 400',
      request: { method: 'GET', path: '/keys/100%' },
      badInput: true,
      expect: {
        status: 400,
        json: problemOf(
          400,
          'KVMESH_ERR_HTTP_BAD_REQUEST',
          'the key is not valid percent-encoded UTF-8: encode it with encodeURIComponent',
        ),
      },
    },
    {
      title: 'a key that is not UTF-8 is 400',
      request: { method: 'PUT', path: '/keys/%FF%FE', body: 'x' },
      badInput: true,
      expect: {
        status: 400,
        json: problemOf(
          400,
          'KVMESH_ERR_HTTP_BAD_REQUEST',
          'the key is not valid percent-encoded UTF-8: encode it with encodeURIComponent',
        ),
      },
    },
    {
      title: 'a key over limits.maxKeyBytes is 414',
      request: { method: 'PUT', path: `/keys/${LONG_KEY}`, body: 'x' },
      badInput: true,
      expect: {
        status: 414,
        json: problemOf(
          414,
          'KVMESH_ERR_KV_KEY_TOO_LONG',
          `key "${LONG_KEY.slice(0, 64)}…" is 65 bytes of UTF-8; the limit is 64 (limits.maxKeyBytes)`,
        ),
      },
    },
    {
      title: 'reading a key over limits.maxKeyBytes is 414 too',
      request: { method: 'GET', path: `/keys/${LONG_KEY}` },
      badInput: true,
      expect: {
        status: 414,
        json: problemOf(
          414,
          'KVMESH_ERR_KV_KEY_TOO_LONG',
          `key "${LONG_KEY.slice(0, 64)}…" is 65 bytes of UTF-8; the limit is 64 (limits.maxKeyBytes)`,
        ),
      },
    },
    {
      title: 'a value over limits.maxValueBytes is 413, and nothing is written',
      request: { method: 'PUT', path: '/keys/big', body: 'v'.repeat(1025) },
      badInput: true,
      expect: {
        status: 413,
        json: problemOf(
          413,
          'KVMESH_ERR_KV_VALUE_TOO_LARGE',
          'the value is larger than 1024 bytes (limits.maxValueBytes); nothing was written',
        ),
      },
    },
    {
      title: 'the refused value was not written',
      request: { method: 'GET', path: '/keys/big' },
      expect: { status: 404, json: problemOf(404, 'KVMESH_ERR_HTTP_KEY_NOT_FOUND', 'key "big" not found') },
    },
  ],
  errorFormat: keyShiftErrorFormat,
  keyRequests: [
    { method: 'PUT', path: '/keys/{key}', body: '{value}' },
    { method: 'GET', path: '/keys/{key}' },
  ],
};

/**
 * A KeyShift failure: `application/problem+json` with exactly RFC 9457's
 * `type`, `title`, `status` (the answer's) and `detail`, and the `code`.
 */
function keyShiftErrorFormat(answer: FacadeAnswer): string | undefined {
  const body = jsonObjectOf(answer, PROBLEM_TYPE);
  if (typeof body === 'string') return body;
  const { type, title, status, detail, code, ...rest } = body;
  if (typeof type !== 'string' || !/^(?:https:\/\/|about:blank$)/.test(type)) return '"type" is not a URI';
  if (typeof title !== 'string' || title === '') return '"title" is not a non-empty string';
  if (status !== answer.status) return `"status" is ${String(status)}, the answer's ${answer.status}`;
  if (typeof detail !== 'string' || detail === '') return '"detail" is not a non-empty string';
  if (typeof code !== 'string' || !/^KVMESH_ERR_[A-Z0-9_]+$/.test(code)) return '"code" is not a KVMESH_ERR_ code';
  if (Object.keys(rest).length > 0) return `unexpected fields ${Object.keys(rest).join(', ')}`;
  return undefined;
}
