import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';

/**
 * Fault codes of protocol errors, from the XML-RPC fault code interoperability
 * convention (xmlrpc-epi's "specs.xmlrpc.org/xmlrpc_errors"), which Python's
 * and most other servers follow. Failures of the KV operation itself carry
 * the HTTP status kvmesh gives their error code instead (404, 413, 503...).
 */
export const XML_RPC_FAULTS = Object.freeze({
  /** Not well-formed XML (or no body). */
  parseError: -32700,
  /** Well-formed, but not an XML-RPC methodCall (wrong elements, a bad value, a DOCTYPE). */
  invalidRequest: -32600,
  /** No such method. */
  methodNotFound: -32601,
  /** The method exists, but the arguments are wrong in number or type. */
  invalidParams: -32602,
});

/**
 * Deepest element nesting a request may have: about 170 levels of arrays or
 * structs (each level is three elements). Deeper is refused before anything
 * is converted, so no recursion is unbounded.
 */
const MAX_NESTED_TAGS = 512;

/** An XML-RPC fault: answered as a `methodResponse` with a `fault` struct, HTTP 200. */
export class XmlRpcFault extends Error {
  readonly faultCode: number;
  readonly faultString: string;

  constructor(faultCode: number, faultString: string) {
    super(faultString);
    this.name = 'XmlRpcFault';
    this.faultCode = faultCode;
    this.faultString = faultString;
  }
}

/** A `dateTime.iso8601` value, kept as its text: JSON has no date type. */
export class XmlRpcDateTime {
  constructor(readonly text: string) {}
}

/** A value as an XML-RPC request carries it: JSON's types plus bytes (`base64`) and dates. */
export type XmlRpcValue =
  null | boolean | number | string | Buffer | XmlRpcDateTime | XmlRpcValue[] | { [name: string]: XmlRpcValue };

/** A parsed `methodCall`. */
export interface XmlRpcCall {
  readonly methodName: string;
  readonly params: XmlRpcValue[];
}

/** One node of fast-xml-parser's `preserveOrder` tree: `{ tag: children }` or `{ '#text': text }`. */
type XmlNode = Record<string, unknown>;

const parser = new XMLParser({
  preserveOrder: true,
  trimValues: false,
  parseTagValue: false,
  ignoreAttributes: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  cdataPropName: '#cdata',
  commentPropName: '#comment',
  // Numeric character references (&#65;) as well as the five XML entities.
  htmlEntities: true,
  maxNestedTags: MAX_NESTED_TAGS,
});

const builder = new XMLBuilder({ suppressEmptyNode: true, processEntities: true });

/** Anything before the root element that declares a document type. */
const DOCTYPE = /^\uFEFF?\s*(?:<\?[^]*?\?>\s*|<!--[^]*?-->\s*)*<!DOCTYPE/i;
const INTEGER = /^[+-]?[0-9]+$/;
const DOUBLE = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * Parses an XML-RPC request body.
 * @throws XmlRpcFault parseError (not well-formed), invalidRequest (not a methodCall, a bad value, a DOCTYPE).
 */
export function parseMethodCall(body: Buffer): XmlRpcCall {
  const text = body.toString('utf8');
  if (text.trim() === '')
    throw new XmlRpcFault(XML_RPC_FAULTS.parseError, 'the request body is empty: send a methodCall');
  // Entities declared in a DTD are how "billion laughs" bodies grow; XML-RPC has no DTD, so none is read.
  if (DOCTYPE.test(text)) {
    throw new XmlRpcFault(XML_RPC_FAULTS.invalidRequest, 'a DOCTYPE is not accepted: XML-RPC requests have none');
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    const { msg, line, col } = valid.err;
    throw new XmlRpcFault(XML_RPC_FAULTS.parseError, `not well-formed XML: ${msg} (line ${line}, column ${col})`);
  }
  let tree: XmlNode[];
  try {
    tree = parser.parse(text) as XmlNode[];
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new XmlRpcFault(XML_RPC_FAULTS.invalidRequest, `the request cannot be read: ${reason}`);
  }
  const roots = elements(tree, 'the document');
  if (roots.length !== 1 || roots[0]!.name !== 'methodCall') {
    throw invalid(`the root element must be methodCall (found ${roots.map((r) => r.name).join(', ') || 'none'})`);
  }
  let methodName: string | undefined;
  let params: XmlRpcValue[] = [];
  for (const child of elements(roots[0]!.children, 'methodCall')) {
    if (child.name === 'methodName' && methodName === undefined)
      methodName = textOf(child.children, 'methodName').trim();
    else if (child.name === 'params' && params.length === 0) params = paramsOf(child.children);
    else throw invalid(`unexpected <${child.name}> in methodCall`);
  }
  if (methodName === undefined || methodName === '') throw invalid('methodCall has no methodName');
  return { methodName, params };
}

/** A `methodResponse` carrying one value. */
export function methodResponse(value: XmlRpcValue): string {
  return document({ methodResponse: { params: { param: { value: valueXml(value) } } } });
}

/** A `methodResponse` carrying a fault. */
export function faultResponse(faultCode: number, faultString: string): string {
  return document({
    methodResponse: { fault: { value: valueXml({ faultCode, faultString }) } },
  });
}

/** Whether `value` holds only JSON's types, so it can be stored as JSON as it is. */
export function isJsonValue(value: XmlRpcValue): boolean {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Buffer.isBuffer(value) || value instanceof XmlRpcDateTime) return false;
  if (Array.isArray(value)) return value.every(isJsonValue);
  return Object.values(value).every(isJsonValue);
}

/** The XML-RPC type name of a value, for fault messages. */
export function typeName(value: XmlRpcValue): string {
  if (value === null) return 'nil';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'double';
  if (typeof value === 'string') return 'string';
  if (Buffer.isBuffer(value)) return 'base64';
  if (value instanceof XmlRpcDateTime) return 'dateTime.iso8601';
  return Array.isArray(value) ? 'array' : 'struct';
}

function document(root: Record<string, unknown>): string {
  return `<?xml version="1.0"?>\n${builder.build(root) as string}\n`;
}

/** The inside of a `<value>` element for the builder. */
function valueXml(value: XmlRpcValue): Record<string, unknown> {
  if (value === null) return { nil: '' };
  if (typeof value === 'boolean') return { boolean: value ? 1 : 0 };
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX) return { int: String(value) };
    if (Number.isSafeInteger(value)) return { i8: String(value) };
    return { double: String(value) };
  }
  if (typeof value === 'string') return { string: value };
  if (Buffer.isBuffer(value)) return { base64: value.toString('base64') };
  if (value instanceof XmlRpcDateTime) return { 'dateTime.iso8601': value.text };
  if (Array.isArray(value)) return { array: { data: value.length === 0 ? '' : { value: value.map(valueXml) } } };
  const members = Object.entries(value).map(([name, v]) => ({ name, value: valueXml(v) }));
  return { struct: members.length === 0 ? '' : { member: members } };
}

interface Element {
  readonly name: string;
  readonly children: XmlNode[];
}

/** The child elements of a node; comments and whitespace between them are skipped, other text is refused. */
function elements(children: XmlNode[], where: string): Element[] {
  const found: Element[] = [];
  for (const node of children) {
    const [name] = Object.keys(node);
    if (name === undefined || name === '#comment') continue;
    if (name === '#text') {
      if (String(node['#text']).trim() !== '') throw invalid(`unexpected text in ${where}`);
      continue;
    }
    if (name === '#cdata') throw invalid(`unexpected CDATA in ${where}`);
    found.push({ name, children: node[name] as XmlNode[] });
  }
  return found;
}

/** The text of a node (CDATA included); an element inside is refused. */
function textOf(children: XmlNode[], where: string): string {
  let text = '';
  for (const node of children) {
    const [name] = Object.keys(node);
    if (name === '#text') text += String(node['#text']);
    else if (name === '#cdata') text += textOf(node['#cdata'] as XmlNode[], where);
    else if (name !== '#comment' && name !== undefined) throw invalid(`unexpected <${name}> in <${where}>`);
  }
  return text;
}

function paramsOf(children: XmlNode[]): XmlRpcValue[] {
  return elements(children, 'params').map((param) => {
    if (param.name !== 'param') throw invalid(`unexpected <${param.name}> in params`);
    const inside = elements(param.children, 'param');
    if (inside.length !== 1 || inside[0]!.name !== 'value') throw invalid('each param must hold one value');
    return valueOf(inside[0]!.children);
  });
}

/** The value of a `<value>` element's children. */
function valueOf(children: XmlNode[]): XmlRpcValue {
  const typed = children.filter((n) => {
    const [name] = Object.keys(n);
    return name !== '#text' && name !== '#cdata' && name !== '#comment';
  });
  // No type element: the text is a string, whitespace included (the spec's default type).
  if (typed.length === 0) return textOf(children, 'value');
  const [element] = elements(children, 'value');
  if (typed.length > 1 || element === undefined) throw invalid('a value must hold one typed element');
  return typedValue(element);
}

function typedValue({ name, children }: Element): XmlRpcValue {
  switch (name) {
    case 'string':
      return textOf(children, name);
    case 'int':
    case 'i4':
    case 'i8': {
      const text = textOf(children, name).trim();
      const n = Number(text);
      if (!INTEGER.test(text)) throw invalid(`<${name}>${text}</${name}> is not an integer`);
      if (!Number.isSafeInteger(n))
        throw invalid(`<${name}>${text}</${name}> is beyond ±2^53 and cannot be kept exactly`);
      return n;
    }
    case 'boolean': {
      const text = textOf(children, name).trim();
      if (text !== '0' && text !== '1') throw invalid(`<boolean>${text}</boolean> must be 0 or 1`);
      return text === '1';
    }
    case 'double': {
      const text = textOf(children, name).trim();
      const n = Number(text);
      if (!DOUBLE.test(text) || !Number.isFinite(n)) throw invalid(`<double>${text}</double> is not a finite number`);
      return n;
    }
    case 'base64': {
      const text = textOf(children, name).replace(/\s+/g, '');
      if (!BASE64.test(text)) throw invalid('<base64> is not valid base64');
      return Buffer.from(text, 'base64');
    }
    case 'dateTime.iso8601':
      return new XmlRpcDateTime(textOf(children, name).trim());
    case 'nil':
      if (textOf(children, name).trim() !== '') throw invalid('<nil/> must be empty');
      return null;
    case 'array': {
      const [data, ...rest] = elements(children, 'array');
      if (data?.name !== 'data' || rest.length > 0) throw invalid('an array must hold one <data>');
      return elements(data.children, 'data').map((v) => {
        if (v.name !== 'value') throw invalid(`unexpected <${v.name}> in array data`);
        return valueOf(v.children);
      });
    }
    case 'struct': {
      const struct: Record<string, XmlRpcValue> = {};
      for (const member of elements(children, 'struct')) {
        if (member.name !== 'member') throw invalid(`unexpected <${member.name}> in struct`);
        const parts = elements(member.children, 'member');
        const nameEl = parts.find((p) => p.name === 'name');
        const valueEl = parts.find((p) => p.name === 'value');
        if (parts.length !== 2 || nameEl === undefined || valueEl === undefined) {
          throw invalid('each struct member must hold one <name> and one <value>');
        }
        Object.defineProperty(struct, textOf(nameEl.children, 'name'), {
          value: valueOf(valueEl.children),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return struct;
    }
    default:
      throw invalid(`<${name}> is not an XML-RPC type`);
  }
}

function invalid(message: string): XmlRpcFault {
  return new XmlRpcFault(XML_RPC_FAULTS.invalidRequest, message);
}
