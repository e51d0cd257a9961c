import { readFileSync } from 'node:fs';
import type { CodecSample } from '@kvmesh/core';

/** Text of test/fixtures/sample.proto (read from the sources, not dist). */
export const SAMPLE_PROTO = readFileSync(new URL('../../../test/fixtures/sample.proto', import.meta.url), 'utf8');

/** Where each codec's golden bytes live. */
export function goldenFile(codec: string): URL {
  return new URL(`../../../test/fixtures/golden/${codec}.json`, import.meta.url);
}

const EVERY_BYTE = Uint8Array.from({ length: 256 }, (_, i) => i);

/**
 * Messages covering every kind of field: string, bytes, bool, 32- and 64-bit
 * integers, floats, enums, repeated, maps, nested and recursive messages,
 * oneofs, proto3 optional, empty messages. Some payloads are deliberately
 * not canonical (missing fields, Buffers, enum numbers) to test normalizing.
 */
export const SAMPLES: readonly CodecSample[] = [
  { name: 'scalars-defaults', type: 'kvmesh.sample.Scalars', payload: {} },
  {
    name: 'scalars-full',
    type: 'kvmesh.sample.Scalars',
    payload: {
      text: 'héllo, wörld — ключ 🔑 \u0000 "quoted" \\',
      data: EVERY_BYTE,
      flag: true,
      small: -2147483648,
      big: Number.MAX_SAFE_INTEGER,
      ratio: -1.5e300,
      color: 'COLOR_GREEN',
      signedBig: -Number.MAX_SAFE_INTEGER,
      count: 4294967295,
      approx: 0.1,
      zigzag: -5,
      fixed: 2 ** 40 + 7,
    },
  },
  {
    name: 'scalars-loose-input',
    type: 'kvmesh.sample.Scalars',
    payload: { data: Buffer.from('buffer bytes'), color: 1, small: 2147483647, big: 1n, ratio: -0, unknown: 'dropped' },
  },
  { name: 'scalars-infinity', type: 'kvmesh.sample.Scalars', payload: { ratio: Infinity, approx: -Infinity } },
  { name: 'scalars-nan', type: 'kvmesh.sample.Scalars', payload: { ratio: NaN, text: 'not a number' } },
  { name: 'collections-empty', type: 'kvmesh.sample.Collections', payload: {} },
  {
    name: 'collections-full',
    type: 'kvmesh.sample.Collections',
    payload: {
      names: ['a', '', 'ß', 'a'],
      numbers: [0, 1, 2 ** 32, Number.MAX_SAFE_INTEGER],
      points: [{ x: 1, y: -1 }, {}, { y: 3 }],
      blobs: [new Uint8Array(0), Uint8Array.of(0, 255)],
      // A computed key makes "__proto__" an own property: map keys are data, whatever their text.
      counts: { zeta: 1, alpha: -2, '': 0, ['__proto__']: 3 },
      places: { home: { x: 10, y: 20 }, origin: {} },
      labels: { '18': 'eighteen', '2': 'two', '9007199254740991': 'max' },
      colors: ['COLOR_RED', 'COLOR_UNSPECIFIED', 2],
      flags: { true: Uint8Array.of(1), false: new Uint8Array(0) },
      ratios: [0.5, -0.25, 1e-300],
    },
  },
  { name: 'nested-empty', type: 'kvmesh.sample.Nested', payload: {} },
  {
    name: 'nested-full',
    type: 'kvmesh.sample.Nested',
    payload: {
      origin: { x: -7, y: 7 },
      scalars: { text: 'inner', flag: true, big: 12345678901234 },
      collections: { names: ['x'], places: { p: { x: 1 } } },
      tree: { label: 'root', children: [{ label: 'leaf' }, { label: 'branch', children: [{ label: 'deep' }] }] },
      word: 'chosen',
      note: '',
      error: { code: 'KVMESH_ERR_RPC_TIMEOUT', message: 'no answer' },
    },
  },
  { name: 'nested-oneof-number', type: 'kvmesh.sample.Nested', payload: { number: 0 } },
  { name: 'nested-oneof-message', type: 'kvmesh.sample.Nested', payload: { spot: {}, note: 'present' } },
  { name: 'nothing', type: 'kvmesh.sample.Nothing', payload: {} },
  {
    name: 'core-error',
    type: 'kvmesh.core.Error',
    payload: { code: 'KVMESH_ERR_CODEC_DECODE', message: 'cannot decode json frame: Unexpected end of JSON input' },
  },
  { name: 'core-empty', type: 'kvmesh.core.Empty', payload: {} },
];
