// The plaintext facade's conformance table: every answer exactly, on a node
// with the suite's limits (keys up to 64 bytes, values up to 1024).
const TEXT = 'text/plain; charset=utf-8';
const LONG_KEY = 'k'.repeat(65);

const err = (status, code, message) => ({
  status,
  body: `ERR ${code} ${message}\n`,
  headers: { 'content-type': TEXT },
});

export const table = {
  cases: [
    {
      title: 'a key never written is 404, in one line of text',
      request: { method: 'GET', path: '/text?key=greeting' },
      expect: err(404, 'KVMESH_ERR_HTTP_KEY_NOT_FOUND', 'no key "greeting"'),
    },
    {
      title: 'PUT creates it: 201',
      request: { method: 'PUT', path: '/text?key=greeting', body: 'hello' },
      expect: { status: 201, body: 'OK created\n', headers: { 'content-type': TEXT } },
    },
    {
      title: 'GET answers the bytes',
      request: { method: 'GET', path: '/text?key=greeting' },
      expect: { status: 200, body: 'hello', headers: { 'content-type': TEXT } },
    },
    {
      title: 'PUT again replaces it: 200',
      request: {
        method: 'PUT',
        path: '/text?key=greeting',
        headers: { 'content-type': 'application/json' },
        body: '{"a":1}',
      },
      expect: { status: 200, body: 'OK replaced\n' },
    },
    {
      title: 'the Content-Type given is kept',
      request: { method: 'GET', path: '/text?key=greeting' },
      expect: { status: 200, body: '{"a":1}', headers: { 'content-type': 'application/json' } },
    },
    {
      title: 'keys are percent-encoded UTF-8, + is a space',
      request: { method: 'PUT', path: '/text?key=caf%C3%A9+au+lait', body: 'noir' },
      expect: { status: 201, body: 'OK created\n' },
    },
    {
      title: 'the same key spelled with %20',
      request: { method: 'GET', path: '/text?key=caf%C3%A9%20au%20lait' },
      expect: { status: 200, body: 'noir' },
    },
    {
      title: 'the members, one a line',
      request: { method: 'GET', path: '/text/members' },
      // The one member's address carries the port the node got.
      expect: {
        status: 200,
        bodyMatches: /^conformance alive http:\/\/127\.0\.0\.1:\d+\n$/,
        headers: { 'content-type': TEXT },
      },
    },
    {
      title: 'DELETE removes the key',
      request: { method: 'DELETE', path: '/text?key=greeting' },
      expect: { status: 200, body: 'OK deleted\n' },
    },
    {
      title: 'a deleted key is 404',
      request: { method: 'DELETE', path: '/text?key=greeting' },
      expect: err(404, 'KVMESH_ERR_HTTP_KEY_NOT_FOUND', 'no key "greeting"'),
    },
    {
      title: 'no key parameter is 400',
      request: { method: 'GET', path: '/text' },
      badInput: true,
      expect: err(400, 'KVMESH_ERR_HTTP_BAD_REQUEST', 'name the key: ?key=<key>'),
    },
    {
      title: 'POST is not a method of /text: 405 with Allow',
      request: { method: 'POST', path: '/text?key=greeting', body: 'x' },
      badInput: true,
      expect: {
        ...err(405, 'KVMESH_ERR_HTTP_METHOD_NOT_ALLOWED', 'POST is not allowed on /text; use GET, HEAD, PUT, DELETE'),
        headers: { 'content-type': TEXT, allow: 'GET, HEAD, PUT, DELETE' },
      },
    },
    {
      title: 'a key over limits.maxKeyBytes is 414',
      request: { method: 'PUT', path: `/text?key=${LONG_KEY}`, body: 'x' },
      badInput: true,
      expect: err(
        414,
        'KVMESH_ERR_KV_KEY_TOO_LONG',
        `key "${'k'.repeat(64)}…" is 65 bytes of UTF-8; the limit is 64 (limits.maxKeyBytes)`,
      ),
    },
  ],
  errorFormat: (answer) => {
    if (answer.headers['content-type'] !== TEXT) return `Content-Type is ${answer.headers['content-type']}`;
    const text = answer.body.toString('utf8');
    return /^ERR KVMESH_ERR_[A-Z0-9_]+ [^\n]+\n$/.test(text)
      ? undefined
      : `not one line "ERR <code> <message>": ${JSON.stringify(text)}`;
  },
  keyRequests: [
    { method: 'PUT', path: '/text?key={key}', body: '{value}' },
    { method: 'GET', path: '/text?key={key}' },
    { method: 'DELETE', path: '/text?key={key}' },
  ],
};
