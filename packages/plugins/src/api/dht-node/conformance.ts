import type { FacadeAnswer, FacadeConformanceTable } from '@kvmesh/core';
import { jsonObjectOf } from '../support/json-answer.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const ETAG = /^"[0-9a-f]{12}-[0-9a-f]{4}-.+"$/;
const JSON_TYPE = 'application/json; charset=utf-8';
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff]);
const LONG_KEY = 'k'.repeat(65);

const failure = (code: string, error: string): { error: string; code: string } => ({ error, code });

/**
 * The dht-node facade's table for `runFacadeConformance`: every answer it
 * gives, exactly, on a node with the suite's limits (keys up to 64 bytes,
 * values up to 1024), in order (later rows see earlier writes).
 */
export const dhtNodeConformance: FacadeConformanceTable = {
  cases: [
    {
      title: 'a key never written is 404',
      request: { method: 'GET', path: '/d/greeting' },
      expect: {
        status: 404,
        json: failure('KVMESH_ERR_HTTP_KEY_NOT_FOUND', 'key "greeting" not found'),
        headers: { 'content-type': JSON_TYPE },
      },
    },
    {
      title: "POST with curl -d's body creates the key: 201",
      request: { method: 'POST', path: '/d/greeting', headers: FORM, body: 'hello' },
      expect: { status: 201, json: { key: 'greeting', status: 'created' }, headers: { etag: ETAG } },
    },
    {
      title: 'GET answers the value as sent; a form body is stored as text',
      request: { method: 'GET', path: '/d/greeting' },
      expect: { status: 200, body: 'hello', headers: { 'content-type': 'text/plain; charset=utf-8', etag: ETAG } },
    },
    {
      title: 'POST over an existing key replaces it: 200',
      request: { method: 'POST', path: '/d/greeting', headers: FORM, body: 'hello again' },
      expect: { status: 200, json: { key: 'greeting', status: 'updated' } },
    },
    {
      title: 'GET answers the newest value',
      request: { method: 'GET', path: '/d/greeting' },
      expect: { status: 200, body: 'hello again' },
    },
    {
      title: 'HEAD answers the headers of a GET without the bytes',
      request: { method: 'HEAD', path: '/d/greeting' },
      expect: { status: 200, headers: { 'content-length': '11', 'content-type': 'text/plain; charset=utf-8' } },
    },
    {
      title: 'bytes keep their Content-Type; an encoded slash is a slash',
      request: { method: 'POST', path: '/d/photos%2F1', headers: { 'content-type': 'image/png' }, body: PNG },
      expect: { status: 201, json: { key: 'photos/1', status: 'created' } },
    },
    {
      title: 'the same key read with a plain slash',
      request: { method: 'GET', path: '/d/photos/1' },
      expect: { status: 200, body: PNG, headers: { 'content-type': 'image/png' } },
    },
    {
      title: 'a key of non-ASCII text, percent-encoded',
      request: { method: 'POST', path: '/d/caf%C3%A9', body: 'au lait' },
      expect: { status: 201, json: { key: 'café', status: 'created' } },
    },
    {
      title: 'a value sent without a Content-Type is bytes',
      request: { method: 'GET', path: '/d/caf%C3%A9' },
      expect: { status: 200, body: 'au lait', headers: { 'content-type': 'application/octet-stream' } },
    },
    {
      title: 'an empty body is an empty value',
      request: { method: 'POST', path: '/d/empty' },
      expect: { status: 201, json: { key: 'empty', status: 'created' } },
    },
    {
      title: 'the empty value reads back empty',
      request: { method: 'GET', path: '/d/empty' },
      expect: { status: 200, headers: { 'content-length': '0' } },
    },
    {
      title: 'DELETE removes the key: 200',
      request: { method: 'DELETE', path: '/d/greeting' },
      expect: { status: 200, json: { key: 'greeting', status: 'deleted' } },
    },
    {
      title: 'a deleted key is 404',
      request: { method: 'GET', path: '/d/greeting' },
      expect: { status: 404, json: failure('KVMESH_ERR_HTTP_KEY_NOT_FOUND', 'key "greeting" not found') },
    },
    {
      title: 'deleting it again is 404',
      request: { method: 'DELETE', path: '/d/greeting' },
      expect: { status: 404, json: failure('KVMESH_ERR_HTTP_KEY_NOT_FOUND', 'key "greeting" not found') },
    },
    {
      title: 'PUT is not a dht-node method: 405 with Allow',
      request: { method: 'PUT', path: '/d/greeting', body: 'x' },
      badInput: true,
      expect: {
        status: 405,
        json: failure(
          'KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED',
          'PUT is not allowed on /d/<key>; use GET, HEAD, POST, DELETE',
        ),
        headers: { allow: 'GET, HEAD, POST, DELETE' },
      },
    },
    {
      title: 'an empty key is 400',
      request: { method: 'POST', path: '/d/', body: 'x' },
      badInput: true,
      expect: { status: 400, json: failure('KVMESH_ERR_KV_KEY_INVALID', 'the key is empty: use /d/<key>') },
    },
    {
      title: 'a malformed escape in the key is 400',
      request: { method: 'GET', path: '/d/100%' },
      badInput: true,
      expect: {
        status: 400,
        json: failure(
          'KVMESH_ERR_HTTP_BAD_REQUEST',
          'the key is not valid percent-encoded UTF-8: encode it with encodeURIComponent',
        ),
      },
    },
    {
      title: 'a key over limits.maxKeyBytes is 414',
      request: { method: 'POST', path: `/d/${LONG_KEY}`, body: 'x' },
      badInput: true,
      expect: {
        status: 414,
        json: failure(
          'KVMESH_ERR_KV_KEY_TOO_LONG',
          `key "${LONG_KEY.slice(0, 64)}…" is 65 bytes of UTF-8; the limit is 64 (limits.maxKeyBytes)`,
        ),
      },
    },
    {
      title: 'a value over limits.maxValueBytes is 413, and nothing is written',
      request: { method: 'POST', path: '/d/big', body: 'v'.repeat(1025) },
      badInput: true,
      expect: {
        status: 413,
        json: failure(
          'KVMESH_ERR_KV_VALUE_TOO_LARGE',
          'the value is larger than 1024 bytes (limits.maxValueBytes); nothing was written',
        ),
      },
    },
    {
      title: 'the refused value was not written',
      request: { method: 'GET', path: '/d/big' },
      expect: { status: 404, json: failure('KVMESH_ERR_HTTP_KEY_NOT_FOUND', 'key "big" not found') },
    },
  ],
  errorFormat: dhtNodeErrorFormat,
  keyRequests: [
    { method: 'POST', path: '/d/{key}', body: '{value}' },
    { method: 'GET', path: '/d/{key}' },
    { method: 'DELETE', path: '/d/{key}' },
  ],
};

/** A dht-node error: JSON `{"error": "<words>", "code": "KVMESH_ERR_..."}` and nothing else. */
function dhtNodeErrorFormat(answer: FacadeAnswer): string | undefined {
  const body = jsonObjectOf(answer, JSON_TYPE);
  if (typeof body === 'string') return body;
  const { error, code, ...rest } = body;
  if (typeof error !== 'string' || error === '') return '"error" is not a non-empty string';
  if (typeof code !== 'string' || !/^KVMESH_ERR_[A-Z0-9_]+$/.test(code)) return '"code" is not a KVMESH_ERR_ code';
  if (Object.keys(rest).length > 0) return `unexpected fields ${Object.keys(rest).join(', ')}`;
  return undefined;
}
