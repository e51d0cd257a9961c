import type { FacadeAnswer, FacadeConformanceTable } from '@kvmesh/core';

const XML = { 'content-type': 'text/xml' };
const XML_TYPE = 'text/xml; charset=utf-8';
const LONG_KEY = 'k'.repeat(65);

/** A methodCall as a client sends it; each param is the inside of a `<value>`. */
const call = (method: string, ...params: string[]): string =>
  `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${params
    .map((p) => `<param><value>${p}</value></param>`)
    .join('')}</params></methodCall>`;

const str = (text: string): string => `<string>${text}</string>`;

/** The node's answer carrying one value (the inside of its `<value>`). */
const result = (value: string): string =>
  `<?xml version="1.0"?>\n<methodResponse><params><param><value>${value}</value></param></params></methodResponse>\n`;

const fault = (code: number, text: string): string =>
  `<?xml version="1.0"?>\n<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>${code}</int></value></member><member><name>faultString</name><value><string>${text}</string></value></member></struct></value></fault></methodResponse>\n`;

const FAULT_SHAPE =
  /^<\?xml version="1\.0"\?>\n<methodResponse><fault><value><struct><member><name>faultCode<\/name><value><int>-?[0-9]+<\/int><\/value><\/member><member><name>faultString<\/name><value><string>[^<]+<\/string><\/value><\/member><\/struct><\/value><\/fault><\/methodResponse>\n$/;

const NIL = result('<nil/>');
const RECORD =
  '<struct><member><name>name</name><value><string>Ada</string></value></member><member><name>tags</name><value><array><data><value><int>1</int></value><value><boolean>1</boolean></value><value><double>2.5</double></value><value><nil/></value></data></array></value></member><member><name>empty</name><value><struct/></value></member></struct>';

/**
 * The dyschord facade's table for `runFacadeConformance`: every answer it
 * gives, exactly, on a node with the suite's limits (keys up to 64 bytes,
 * request bodies up to 1024), in order (later rows see earlier writes).
 * Failures are XML-RPC faults with HTTP 200.
 */
export const dyschordConformance: FacadeConformanceTable = {
  cases: [
    {
      title: "lookup of a key never stored is dyschord's fault 404, the key as faultString",
      request: { method: 'POST', path: '/RPC2', headers: XML, body: call('lookup', str('greeting')) },
      expect: { status: 200, body: fault(404, 'greeting'), headers: { 'content-type': XML_TYPE } },
    },
    {
      title: 'store answers nil once the write is acknowledged',
      request: { method: 'POST', path: '/RPC2', headers: XML, body: call('store', str('greeting'), str('hello')) },
      expect: { status: 200, body: NIL, headers: { 'content-type': XML_TYPE } },
    },
    {
      title: 'lookup answers the value stored',
      request: { method: 'POST', path: '/RPC2', headers: XML, body: call('lookup', str('greeting')) },
      expect: { status: 200, body: result(str('hello')) },
    },
    {
      title: 'the endpoint answers on / too, as a SimpleXMLRPCServer does',
      request: { method: 'POST', path: '/', headers: XML, body: call('lookup', str('greeting')) },
      expect: { status: 200, body: result(str('hello')) },
    },
    {
      title: 'a struct of every JSON type is stored',
      request: { method: 'POST', path: '/RPC2', headers: XML, body: call('store', str('record'), RECORD) },
      expect: { status: 200, body: NIL },
    },
    {
      title: 'and answered as it was sent',
      request: { method: 'POST', path: '/RPC2', headers: XML, body: call('lookup', str('record')) },
      expect: { status: 200, body: result(RECORD) },
    },
    {
      title: 'a value with no type element is a string, whitespace kept; entities and character references decoded',
      request: {
        method: 'POST',
        path: '/RPC2',
        body: call('store', str('caf&#xE9;'), '  fish &amp; chips &lt;3 &#65; '),
      },
      expect: { status: 200, body: NIL },
    },
    {
      title: 'a non-ASCII key reads back; text is escaped on the way out',
      request: { method: 'POST', path: '/RPC2', body: call('lookup', str('café')) },
      expect: { status: 200, body: result(str('  fish &amp; chips &lt;3 A ')) },
    },
    {
      title: 'integers beyond 32 bits are kept exactly and answered as i8',
      request: { method: 'POST', path: '/RPC2', body: call('store', str('big'), '<i8>9007199254740991</i8>') },
      expect: { status: 200, body: NIL },
    },
    {
      title: 'the i8 reads back',
      request: { method: 'POST', path: '/RPC2', body: call('lookup', str('big')) },
      expect: { status: 200, body: result('<i8>9007199254740991</i8>') },
    },
    {
      title: 'a base64 value is stored as its bytes',
      request: { method: 'POST', path: '/RPC2', body: call('store', str('blob'), '<base64>iVBORw0KGgo=</base64>') },
      expect: { status: 200, body: NIL },
    },
    {
      title: 'and answered as base64',
      request: { method: 'POST', path: '/RPC2', body: call('lookup', str('blob')) },
      expect: { status: 200, body: result('<base64>iVBORw0KGgo=</base64>') },
    },
    {
      title: 'store replaces the value of an existing key',
      request: { method: 'POST', path: '/RPC2', body: call('store', str('greeting'), '<int>42</int>') },
      expect: { status: 200, body: NIL },
    },
    {
      title: 'lookup answers the newest value',
      request: { method: 'POST', path: '/RPC2', body: call('lookup', str('greeting')) },
      expect: { status: 200, body: result('<int>42</int>') },
    },
    {
      title: "ping answers the node's id, as dyschord's nodes do",
      request: { method: 'POST', path: '/RPC2', body: call('ping') },
      expect: {
        status: 200,
        bodyMatches:
          /^<\?xml version="1\.0"\?>\n<methodResponse><params><param><value><struct><member><name>id<\/name><value><string>[^<]+<\/string><\/value><\/member><\/struct><\/value><\/param><\/params><\/methodResponse>\n$/,
      },
    },
    {
      title: 'system.listMethods names the methods',
      request: { method: 'POST', path: '/RPC2', body: call('system.listMethods') },
      expect: {
        status: 200,
        body: result(
          `<array><data>${['lookup', 'ping', 'store', 'system.listMethods', 'system.methodHelp']
            .map((m) => `<value>${str(m)}</value>`)
            .join('')}</data></array>`,
        ),
      },
    },
    {
      title: 'GET is not an XML-RPC call: 405 with Allow: POST and a fault',
      request: { method: 'GET', path: '/RPC2' },
      expect: {
        status: 405,
        body: fault(-32600, 'XML-RPC calls are POSTs; GET is not one'),
        headers: { allow: 'POST', 'content-type': XML_TYPE },
      },
    },
    {
      title: 'an unknown method is fault -32601',
      badInput: true,
      request: { method: 'POST', path: '/RPC2', body: call('delete', str('greeting')) },
      expect: {
        status: 200,
        body: fault(
          -32601,
          'method &quot;delete&quot; is not supported; use lookup, store, ping, system.listMethods, system.methodHelp',
        ),
      },
    },
    {
      title: 'too few arguments are fault -32602',
      badInput: true,
      request: { method: 'POST', path: '/RPC2', body: call('store', str('greeting')) },
      expect: { status: 200, body: fault(-32602, 'store(key, value) takes 2 arguments (1 given)') },
    },
    {
      title: 'too many arguments are fault -32602',
      badInput: true,
      request: { method: 'POST', path: '/RPC2', body: call('lookup', str('a'), str('b')) },
      expect: { status: 200, body: fault(-32602, 'lookup(key) takes 1 argument (2 given)') },
    },
    {
      title: 'a key that is not a string is fault -32602',
      badInput: true,
      request: { method: 'POST', path: '/RPC2', body: call('lookup', '<int>7</int>') },
      expect: { status: 200, body: fault(-32602, 'lookup(key): key must be a string (found int)') },
    },
    {
      title: 'a date is not JSON-encodable: fault -32602, nothing written',
      badInput: true,
      request: {
        method: 'POST',
        path: '/RPC2',
        body: call(
          'store',
          str('when'),
          '<array><data><value><dateTime.iso8601>20260101T00:00:00</dateTime.iso8601></value></data></array>',
        ),
      },
      expect: {
        status: 200,
        body: fault(
          -32602,
          'store(key, value): value must be JSON-encodable (found a dateTime.iso8601 inside); send dates as strings and bytes as a base64 value of their own',
        ),
      },
    },
    {
      title: 'the refused value was not written',
      request: { method: 'POST', path: '/RPC2', body: call('lookup', str('when')) },
      expect: { status: 200, body: fault(404, 'when') },
    },
    {
      title: 'XML that is not well-formed is fault -32700',
      badInput: true,
      request: { method: 'POST', path: '/RPC2', body: '<methodCall><methodName>lookup</methodName>' },
      expect: {
        status: 200,
        body: fault(-32700, 'not well-formed XML: Unclosed tag &apos;methodCall&apos;. (line 1, column 1)'),
      },
    },
    {
      title: 'an empty body is fault -32700',
      badInput: true,
      request: { method: 'POST', path: '/RPC2' },
      expect: { status: 200, body: fault(-32700, 'the request body is empty: send a methodCall') },
    },
    {
      title: 'a DOCTYPE (where entity expansion bombs live) is refused before parsing: fault -32600',
      badInput: true,
      request: {
        method: 'POST',
        path: '/RPC2',
        body: `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>${call('lookup', str('&lol2;'))}`,
      },
      expect: { status: 200, body: fault(-32600, 'a DOCTYPE is not accepted: XML-RPC requests have none') },
    },
    {
      title: 'a document that is not a methodCall is fault -32600',
      badInput: true,
      request: { method: 'POST', path: '/RPC2', body: '<methodResponse/>' },
      expect: { status: 200, body: fault(-32600, 'the root element must be methodCall (found methodResponse)') },
    },
    {
      title: 'a malformed value is fault -32600',
      badInput: true,
      request: { method: 'POST', path: '/RPC2', body: call('store', str('n'), '<int>twelve</int>') },
      expect: { status: 200, body: fault(-32600, '&lt;int&gt;twelve&lt;/int&gt; is not an integer') },
    },
    {
      title: 'an empty key is fault 400',
      badInput: true,
      request: { method: 'POST', path: '/RPC2', body: call('store', str(''), str('x')) },
      expect: { status: 200, bodyMatches: /<int>400<\/int>.*KVMESH_ERR_KV_KEY_INVALID: / },
    },
    {
      title: 'a key over limits.maxKeyBytes is fault 414',
      badInput: true,
      request: { method: 'POST', path: '/RPC2', body: call('lookup', str(LONG_KEY)) },
      expect: {
        status: 200,
        body: fault(
          414,
          `KVMESH_ERR_KV_KEY_TOO_LONG: key &quot;${LONG_KEY.slice(0, 64)}…&quot; is 65 bytes of UTF-8; the limit is 64 (limits.maxKeyBytes)`,
        ),
      },
    },
    {
      title: 'a body over limits.maxValueBytes is fault 413, and nothing is written',
      badInput: true,
      request: { method: 'POST', path: '/RPC2', body: call('store', str('big2'), str('v'.repeat(1000))) },
      expect: { status: 200, bodyMatches: /<int>413<\/int>.*KVMESH_ERR_KV_VALUE_TOO_LARGE: / },
    },
    {
      title: 'the refused value was not written',
      request: { method: 'POST', path: '/RPC2', body: call('lookup', str('big2')) },
      expect: { status: 200, body: fault(404, 'big2') },
    },
  ],
  errorFormat: dyschordErrorFormat,
  faultStatus: 200,
  keyRequests: [
    { method: 'POST', path: '/RPC2', headers: XML, body: call('store', str('{key}'), str('{value}')) },
    { method: 'POST', path: '/RPC2', headers: XML, body: call('lookup', str('{key}')) },
  ],
};

/** An XML-RPC fault: `text/xml`, a methodResponse holding a fault struct of an int faultCode and a string faultString. */
function dyschordErrorFormat(answer: FacadeAnswer): string | undefined {
  if (answer.headers['content-type'] !== XML_TYPE) return `Content-Type is ${answer.headers['content-type']}`;
  if (!FAULT_SHAPE.test(answer.body.toString('utf8'))) return 'the body is not a methodResponse with a fault struct';
  return undefined;
}
