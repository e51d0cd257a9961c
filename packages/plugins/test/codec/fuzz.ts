import { createMessageRegistry, decodeProblem, type Codec, type MessageRegistry } from '@kvmesh/core';
import fc from 'fast-check';
import { SAMPLES, SAMPLE_PROTO } from './samples.js';

/** A registry with the sample types and a codec built on it. */
export function sampleCodec(create: (messages: MessageRegistry) => Codec): { messages: MessageRegistry; codec: Codec } {
  const messages = createMessageRegistry();
  messages.define(SAMPLE_PROTO);
  return { messages, codec: create(messages) };
}

/** fast-check parameters; KVMESH_FUZZ_SEED replays a failing run (fast-check prints the seed). */
export function runs(numRuns: number): fc.Parameters<unknown> {
  const seed = process.env['KVMESH_FUZZ_SEED'];
  return seed === undefined ? { numRuns } : { numRuns, seed: Number(seed) };
}

/** A property that holds when decode obeys the Codec contract for the input. */
export function decodesSafely(codec: Codec, messages: MessageRegistry): (bytes: Uint8Array) => void {
  return (bytes) => {
    const problem = decodeProblem(codec, messages, bytes);
    if (problem !== undefined) throw new Error(problem);
  };
}

type Mutation =
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'repeat'; at: number; count: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 9 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 9 }) }),
  fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 32 }) }),
);

function mutate(frame: Uint8Array, m: Mutation): Uint8Array {
  const at = frame.length === 0 ? 0 : m.at % (frame.length + 1);
  switch (m.kind) {
    case 'set': {
      const out = Uint8Array.from(frame);
      if (at < out.length) out[at] = m.value;
      return out;
    }
    case 'truncate':
      return frame.slice(0, at);
    case 'insert':
      return concat(frame.subarray(0, at), m.bytes, frame.subarray(at));
    case 'delete':
      return concat(frame.subarray(0, at), frame.subarray(at + m.count));
    case 'repeat':
      return concat(frame.subarray(0, at + m.count), frame.subarray(at));
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Valid frames of every sample with one to four random mutations applied. */
export function mutatedFrames(codec: Codec): fc.Arbitrary<Uint8Array> {
  const frames = SAMPLES.map((s) => codec.encode(s.type, s.payload));
  return fc
    .tuple(fc.constantFrom(...frames), fc.array(mutation, { minLength: 1, maxLength: 4 }))
    .map(([frame, mutations]) => mutations.reduce(mutate, frame));
}

/** Field names of the sample types, plus a few that are not fields, for structure-aware fuzzing. */
export const FIELD_NAMES = [
  'text',
  'data',
  'flag',
  'small',
  'big',
  'ratio',
  'color',
  'signedBig',
  'count',
  'approx',
  'zigzag',
  'fixed',
  'names',
  'numbers',
  'points',
  'blobs',
  'counts',
  'places',
  'labels',
  'colors',
  'flags',
  'ratios',
  'label',
  'children',
  'origin',
  'scalars',
  'collections',
  'tree',
  'word',
  'number',
  'spot',
  'note',
  'error',
  'x',
  'y',
  'code',
  'message',
  '__proto__',
  'constructor',
  'toString',
];

/** Registered type names of the samples plus one that is not registered. */
export const TYPE_NAMES = [...new Set(SAMPLES.map((s) => s.type)), 'kvmesh.sample.Missing'];
