import type { FacadeAnswer, FacadeConformanceTable } from '@kvmesh/core';
import { jsonObjectOf } from '../support/json-answer.js';

const JSON_HEADERS = { 'content-type': 'application/json' };
const JSON_TYPE = /^application\/json/;
/** A causal context holding one key's version (`<12 hex>-<4 hex>-<node>`). */
const contextOf = (key: string): string => `"causal-context":\\{"${key}":"[0-9a-f]{12}-[0-9a-f]{4}-[^"]+"\\}`;
const LONG_KEY = 'k'.repeat(51);
/** A version far in the future: no replica can hold it, so a read that must not be older waits, then gives up. */
const FUTURE = 'ffffffffffff-0000-elsewhere';

const put = (
  key: string,
  body: unknown,
): { method: string; path: string; headers: Record<string, string>; body: string } => ({
  method: 'PUT',
  path: `/kvs/keys/${key}`,
  headers: JSON_HEADERS,
  body: JSON.stringify(body),
});

const failure = (method: string, error: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  error,
  message: `Error in ${method}`,
  ...extra,
});

/**
 * The cse138 facade's table for `runFacadeConformance`, on the suite's one
 * node (placement `single`, so one shard and nothing is proxied): every
 * answer of its design document, exactly, in order (later rows see earlier writes).
 */
export const cse138Conformance: FacadeConformanceTable = {
  cases: [
    {
      title: 'a key never written is 404 Key does not exist, with an empty causal context',
      request: { method: 'GET', path: '/kvs/keys/sampleKey' },
      expect: {
        status: 404,
        json: { doesExist: false, error: 'Key does not exist', message: 'Error in GET', 'causal-context': {} },
        headers: { 'content-type': JSON_TYPE },
      },
    },
    {
      title: 'PUT of a new key is 201 Added successfully, replaced false, and the context names its version',
      request: put('sampleKey', { value: 'sampleValue' }),
      expect: {
        status: 201,
        bodyMatches: new RegExp(`^\\{"message":"Added successfully","replaced":false,${contextOf('sampleKey')}\\}$`),
      },
    },
    {
      title: 'PUT of an existing key is 200 Updated successfully, replaced true',
      request: put('sampleKey', { value: 'newValue', 'causal-context': {} }),
      expect: {
        status: 200,
        bodyMatches: new RegExp(`^\\{"message":"Updated successfully","replaced":true,${contextOf('sampleKey')}\\}$`),
      },
    },
    {
      title: 'GET is 200 Retrieved successfully with the newest value',
      request: { method: 'GET', path: '/kvs/keys/sampleKey' },
      expect: {
        status: 200,
        bodyMatches: new RegExp(
          `^\\{"doesExist":true,"message":"Retrieved successfully","value":"newValue",${contextOf('sampleKey')}\\}$`,
        ),
      },
    },
    {
      title: 'a value keeps its JSON type: a number',
      request: put('answer', { value: 42 }),
      expect: { status: 201, bodyMatches: /^\{"message":"Added successfully","replaced":false,/ },
    },
    {
      title: 'the number reads back as a number',
      request: { method: 'GET', path: '/kvs/keys/answer' },
      expect: { status: 200, bodyMatches: /^\{"doesExist":true,"message":"Retrieved successfully","value":42,/ },
    },
    {
      title: 'a GET may carry its causal context in a JSON body',
      request: {
        method: 'GET',
        path: '/kvs/keys/answer',
        headers: JSON_HEADERS,
        body: JSON.stringify({ 'causal-context': {} }),
      },
      expect: { status: 200, bodyMatches: new RegExp(`"value":42,${contextOf('answer')}\\}$`) },
    },
    {
      title: 'key-count counts the keys this node stores',
      request: { method: 'GET', path: '/kvs/key-count' },
      expect: { status: 200, json: { message: 'Key count retrieved successfully', 'key-count': 2 } },
    },
    {
      title: 'DELETE of an existing key is 200 Deleted successfully',
      request: { method: 'DELETE', path: '/kvs/keys/sampleKey' },
      expect: {
        status: 200,
        bodyMatches: new RegExp(`^\\{"doesExist":true,"message":"Deleted successfully",${contextOf('sampleKey')}\\}$`),
      },
    },
    {
      title: 'a deleted key is 404 Key does not exist',
      request: { method: 'GET', path: '/kvs/keys/sampleKey' },
      expect: {
        status: 404,
        json: { doesExist: false, error: 'Key does not exist', message: 'Error in GET', 'causal-context': {} },
      },
    },
    {
      title: 'DELETE of a missing key is 404 Error in DELETE',
      request: { method: 'DELETE', path: '/kvs/keys/sampleKey' },
      expect: {
        status: 404,
        json: { doesExist: false, error: 'Key does not exist', message: 'Error in DELETE', 'causal-context': {} },
      },
    },
    {
      title: 'the count drops with the delete',
      request: { method: 'GET', path: '/kvs/key-count' },
      expect: { status: 200, json: { message: 'Key count retrieved successfully', 'key-count': 1 } },
    },
    {
      title: 'a context the client sends back is answered back',
      request: {
        method: 'GET',
        path: '/kvs/keys/nothing',
        headers: JSON_HEADERS,
        body: JSON.stringify({ 'causal-context': { other: '018f2c3a4b5c-0001-n1' } }),
      },
      expect: {
        status: 404,
        json: {
          doesExist: false,
          error: 'Key does not exist',
          message: 'Error in GET',
          'causal-context': { other: '018f2c3a4b5c-0001-n1' },
        },
      },
    },
    {
      title: 'a context naming the key __proto__ comes back whole',
      request: {
        method: 'GET',
        path: '/kvs/keys/nothing',
        headers: JSON_HEADERS,
        body: '{"causal-context":{"__proto__":"018f2c3a4b5c-0001-n1"}}',
      },
      expect: {
        status: 404,
        json: JSON.parse(
          '{"doesExist":false,"error":"Key does not exist","message":"Error in GET","causal-context":{"__proto__":"018f2c3a4b5c-0001-n1"}}',
        ) as unknown,
      },
    },
    {
      title: 'a read that would be older than the context has seen is 503 after 5 s',
      request: {
        method: 'GET',
        path: '/kvs/keys/answer',
        headers: JSON_HEADERS,
        body: JSON.stringify({ 'causal-context': { answer: FUTURE } }),
      },
      expect: {
        status: 503,
        json: failure('GET', 'Unable to satisfy request', { 'causal-context': { answer: FUTURE } }),
      },
    },
    {
      title: 'the shards: one on a single node',
      request: { method: 'GET', path: '/kvs/shards' },
      expect: { status: 200, json: { message: 'Shard membership retrieved successfully', shards: ['1'] } },
    },
    {
      title: 'one shard: its key count and replicas',
      request: { method: 'GET', path: '/kvs/shards/1' },
      expect: {
        status: 200,
        bodyMatches:
          /^\{"message":"Shard information retrieved successfully","shard-id":"1","key-count":1,"replicas":\["127\.0\.0\.1:\d+"\]\}$/,
      },
    },
    {
      title: 'a shard that does not exist is 404',
      request: { method: 'GET', path: '/kvs/shards/7' },
      badInput: true,
      expect: { status: 404, json: failure('GET', 'Shard does not exist') },
    },
    {
      title: 'PUT without a value is 400 Value is missing',
      request: put('sampleKey', { 'causal-context': {} }),
      badInput: true,
      expect: { status: 400, json: failure('PUT', 'Value is missing', { 'causal-context': {} }) },
    },
    {
      title: 'PUT without a body is 400 Value is missing',
      request: { method: 'PUT', path: '/kvs/keys/sampleKey' },
      badInput: true,
      expect: { status: 400, json: failure('PUT', 'Value is missing', { 'causal-context': {} }) },
    },
    {
      title: 'a key of 51 characters is 400 Key is too long',
      request: put(LONG_KEY, { value: 'sampleValue' }),
      badInput: true,
      expect: { status: 400, json: failure('PUT', 'Key is too long', { 'causal-context': {} }) },
    },
    {
      title: 'POST is not a method of /kvs/keys: 405',
      request: { method: 'POST', path: '/kvs/keys/sampleKey' },
      badInput: true,
      expect: {
        status: 405,
        json: failure('POST', 'Method not allowed', { 'causal-context': {} }),
        headers: { allow: 'GET, PUT, DELETE' },
      },
    },
    {
      title: 'a view change without a view is 400 View is missing',
      request: { method: 'PUT', path: '/kvs/view-change', headers: JSON_HEADERS, body: '{}' },
      badInput: true,
      expect: { status: 400, json: failure('PUT', 'View is missing') },
    },
    {
      title: 'a view change with a repl-factor that is not a whole number of at least 1 is 400',
      request: {
        method: 'PUT',
        path: '/kvs/view-change',
        headers: JSON_HEADERS,
        body: '{"view":"127.0.0.1:8085","repl-factor":0}',
      },
      badInput: true,
      expect: { status: 400, json: failure('PUT', 'repl-factor must be a whole number of at least 1; found 0') },
    },
    {
      title: 'a view change with a repl-factor above the nodes of the view is 400',
      request: {
        method: 'PUT',
        path: '/kvs/view-change',
        headers: JSON_HEADERS,
        body: '{"view":"127.0.0.1:8085,127.0.0.2:8085","repl-factor":3}',
      },
      badInput: true,
      expect: { status: 400, json: failure('PUT', 'repl-factor 3 is more than the 2 nodes of the view') },
    },
    {
      title: 'GET of /kvs/view-change is 405',
      request: { method: 'GET', path: '/kvs/view-change' },
      badInput: true,
      expect: { status: 405, json: failure('GET', 'Method not allowed'), headers: { allow: 'PUT' } },
    },
  ],
  errorFormat: (answer: FacadeAnswer) => {
    const body = jsonObjectOf(answer, JSON_TYPE);
    if (typeof body === 'string') return body;
    const { error, message } = body;
    if (typeof error !== 'string' || error === '') return 'no "error" text';
    if (typeof message !== 'string' || !/^Error in [A-Z]+$/.test(message))
      return '"message" is not "Error in <METHOD>"';
    return undefined;
  },
  keyRequests: [
    { method: 'PUT', path: '/kvs/keys/{key}', headers: JSON_HEADERS, body: '{"value":"{value}"}' },
    { method: 'GET', path: '/kvs/keys/{key}' },
    { method: 'DELETE', path: '/kvs/keys/{key}' },
  ],
};
