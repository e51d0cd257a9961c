import type { FacadeAnswer, FacadeConformanceTable } from '@kvmesh/core';

/** What curl -d sends. */
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const TEXT_TYPE = 'text/plain; charset=utf-8';
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff]);
const LONG_KEY = 'k'.repeat(65);

/** A refusal as the facade words it: the code, the message, a newline; the code again in X-Kvmesh-Error. */
const refused = (status: number, code: string, message: string, headers: Record<string, string> = {}) => ({
  status,
  body: `${code}: ${message}\n`,
  headers: { 'content-type': TEXT_TYPE, 'x-kvmesh-error': code, ...headers },
});

const NO_BODY = { 'content-length': null, 'content-type': null } as const;

/**
 * The Velour Fog facade's table for `runFacadeConformance`: every answer it
 * gives, exactly, on a node with the suite's limits (keys up to 64 bytes,
 * values up to 1024), in order (later rows see earlier writes). The first
 * rows are the seed's own curl lines: `curl localhost:8000/get/?key=KEY` and
 * `curl -d VALUE localhost:8000/KEY`.
 */
export const velourFogConformance: FacadeConformanceTable = {
  cases: [
    {
      title: 'a key that does not exist is 204 with no body',
      request: { method: 'GET', path: '/get/?key=greeting' },
      expect: { status: 204, headers: NO_BODY },
    },
    {
      title: "POST /KEY with curl -d's body sets it: 200, no body",
      request: { method: 'POST', path: '/greeting', headers: FORM, body: 'hello' },
      expect: { status: 200, headers: { 'content-length': '0' } },
    },
    {
      title: 'GET /get/?key=KEY answers 200 with the value bytes; a form body is stored as text',
      request: { method: 'GET', path: '/get/?key=greeting' },
      expect: { status: 200, body: 'hello', headers: { 'content-type': TEXT_TYPE } },
    },
    {
      title: 'POST over an existing key replaces it',
      request: { method: 'POST', path: '/greeting', headers: FORM, body: 'hello again' },
      expect: { status: 200, headers: { 'content-length': '0' } },
    },
    {
      title: 'GET answers the newest value',
      request: { method: 'GET', path: '/get/?key=greeting' },
      expect: { status: 200, body: 'hello again' },
    },
    {
      title: '/get without the trailing slash is the same read',
      request: { method: 'GET', path: '/get?key=greeting' },
      expect: { status: 200, body: 'hello again' },
    },
    {
      title: 'HEAD answers the headers of a GET without the bytes',
      request: { method: 'HEAD', path: '/get/?key=greeting' },
      expect: { status: 200, headers: { 'content-length': '11', 'content-type': TEXT_TYPE } },
    },
    {
      title: 'other query parameters are ignored',
      request: { method: 'GET', path: '/get/?x=1&key=greeting' },
      expect: { status: 200, body: 'hello again' },
    },
    {
      title: 'bytes keep their Content-Type; a key may hold slashes',
      request: { method: 'POST', path: '/photos/1', headers: { 'content-type': 'image/png' }, body: PNG },
      expect: { status: 200 },
    },
    {
      title: 'the same key, percent-encoded in the query',
      request: { method: 'GET', path: '/get/?key=photos%2F1' },
      expect: { status: 200, body: PNG, headers: { 'content-type': 'image/png' } },
    },
    {
      title: 'a key of non-ASCII text, percent-encoded, sent without a Content-Type',
      request: { method: 'POST', path: '/caf%C3%A9', body: 'au lait' },
      expect: { status: 200 },
    },
    {
      title: 'a value sent without a Content-Type is bytes',
      request: { method: 'GET', path: '/get/?key=caf%C3%A9' },
      expect: { status: 200, body: 'au lait', headers: { 'content-type': 'application/octet-stream' } },
    },
    {
      title: 'a + in the query is a space, as in a form',
      request: { method: 'POST', path: '/two%20words', headers: FORM, body: 'spaced' },
      expect: { status: 200 },
    },
    {
      title: 'the spaced key read with +',
      request: { method: 'GET', path: '/get/?key=two+words' },
      expect: { status: 200, body: 'spaced' },
    },
    {
      title: 'an empty body is an empty value',
      request: { method: 'POST', path: '/empty' },
      expect: { status: 200 },
    },
    {
      title: 'the empty value exists: 200 with no bytes, not 204',
      request: { method: 'GET', path: '/get/?key=empty' },
      expect: { status: 200, headers: { 'content-length': '0' } },
    },
    {
      title: 'a get without a key parameter is 400',
      request: { method: 'GET', path: '/get/' },
      badInput: true,
      expect: refused(400, 'KVMESH_ERR_HTTP_BAD_REQUEST', 'the query names no key: use /get/?key=KEY'),
    },
    {
      title: 'an empty key parameter is 400',
      request: { method: 'GET', path: '/get/?key=' },
      badInput: true,
      expect: refused(400, 'KVMESH_ERR_KV_KEY_INVALID', 'the key is empty: use /get/?key=KEY'),
    },
    {
      title: 'two key parameters are 400',
      request: { method: 'GET', path: '/get/?key=a&key=b' },
      badInput: true,
      expect: refused(400, 'KVMESH_ERR_HTTP_BAD_REQUEST', 'the query names 2 keys: use /get/?key=KEY once'),
    },
    {
      title: 'a malformed escape in the key parameter is 400',
      request: { method: 'GET', path: '/get/?key=100%' },
      badInput: true,
      expect: refused(
        400,
        'KVMESH_ERR_HTTP_BAD_REQUEST',
        'the key parameter is not valid percent-encoded UTF-8: encode it with encodeURIComponent',
      ),
    },
    {
      title: 'a POST to / names no key: 400',
      request: { method: 'POST', path: '/', headers: FORM, body: 'x' },
      badInput: true,
      expect: refused(400, 'KVMESH_ERR_KV_KEY_INVALID', 'the key is empty: set a value with POST /KEY'),
    },
    {
      title: 'PUT is not a Velour Fog method: 405 with Allow',
      request: { method: 'PUT', path: '/greeting', body: 'x' },
      badInput: true,
      expect: refused(
        405,
        'KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED',
        'PUT is not allowed on /KEY; set a value with POST /KEY (the value as the body)',
        { allow: 'POST' },
      ),
    },
    {
      title: 'DELETE of /get/ is 405 with Allow',
      request: { method: 'DELETE', path: '/get/?key=greeting' },
      badInput: true,
      expect: refused(
        405,
        'KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED',
        'DELETE is not allowed on /get/; read with GET /get/?key=KEY',
        { allow: 'GET, HEAD, POST' },
      ),
    },
    {
      title: 'a key over limits.maxKeyBytes is 414',
      request: { method: 'POST', path: `/${LONG_KEY}`, headers: FORM, body: 'x' },
      badInput: true,
      expect: refused(
        414,
        'KVMESH_ERR_KV_KEY_TOO_LONG',
        `key "${LONG_KEY.slice(0, 64)}…" is 65 bytes of UTF-8; the limit is 64 (limits.maxKeyBytes)`,
      ),
    },
    {
      title: 'a value over limits.maxValueBytes is 413, and nothing is written',
      request: { method: 'POST', path: '/big', headers: FORM, body: 'v'.repeat(1025) },
      badInput: true,
      expect: refused(
        413,
        'KVMESH_ERR_KV_VALUE_TOO_LARGE',
        'the value is larger than 1024 bytes (limits.maxValueBytes); nothing was written',
      ),
    },
    {
      title: 'the refused value was not written',
      request: { method: 'GET', path: '/get/?key=big' },
      expect: { status: 204, headers: NO_BODY },
    },
  ],
  errorFormat: velourFogErrorFormat,
  keyRequests: [
    { method: 'POST', path: '/{key}', headers: FORM, body: '{value}' },
    { method: 'GET', path: '/get/?key={key}' },
  ],
};

/** A Velour Fog error: `text/plain`, `KVMESH_ERR_...: <words>\n`, the same code in X-Kvmesh-Error. */
function velourFogErrorFormat(answer: FacadeAnswer): string | undefined {
  if (answer.headers['content-type'] !== TEXT_TYPE) return `Content-Type is ${answer.headers['content-type']}`;
  const code = answer.headers['x-kvmesh-error'];
  if (typeof code !== 'string' || !/^KVMESH_ERR_[A-Z0-9_]+$/.test(code)) return 'X-Kvmesh-Error is not a code';
  const text = answer.body.toString('utf8');
  if (!text.startsWith(`${code}: `)) return `the body does not begin with "${code}: "`;
  if (!text.endsWith('\n') || text.length <= code.length + 3) return 'the body is not one line of words';
  return undefined;
}
