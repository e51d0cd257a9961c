import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import type { Codec, Message } from '../contracts/codec.js';
import type { MessageRegistry } from '../contracts/rpc.js';
import { isKvError } from '../errors.js';
import { createMessageRegistry } from '../rpc/messages.js';

/** The assertions the suite uses; ava's `t` satisfies it. */
export interface CodecConformanceAssertions {
  deepEqual(actual: unknown, expected: unknown, message?: string): unknown;
  is(actual: unknown, expected: unknown, message?: string): unknown;
  true(actual: boolean, message?: string): unknown;
  pass(message?: string): unknown;
  log(...values: unknown[]): void;
}

/** Registers one test; ava's `test` satisfies it. */
export type CodecConformanceTest = (
  title: string,
  implementation: (t: CodecConformanceAssertions) => void | Promise<void>,
) => void;

export interface CodecSample {
  /** Stable label, the key of this sample in the golden file. Default: `<type>#<n>`. */
  readonly name?: string;
  readonly type: string;
  /** Any value that normalizes; it need not be canonical already. */
  readonly payload: unknown;
}

export interface CodecConformanceOptions {
  /** Prefix of every test title; must be unique per test file. Default: `codec`. */
  readonly title?: string;
  /** Builds the codec under test. Called once per test, with a registry that holds `protoSources`. */
  readonly createCodec: (messages: MessageRegistry) => Codec;
  /** Builds the registry the codec gets. Default: `createMessageRegistry`. */
  readonly createRegistry?: () => MessageRegistry;
  /** `.proto` sources defining the sample types (core types are in every registry already). */
  readonly protoSources: readonly string[];
  /** Messages that must round-trip; cover every kind of field the codec must carry. */
  readonly samples: readonly CodecSample[];
  /**
   * JSON file `{ "<sample name>": "<hex>" }` pinning the wire format. With
   * `KVMESH_UPDATE_GOLDEN=1` in the environment the suite writes it instead.
   */
  readonly goldenFile?: string | URL;
  /** Frames in this codec's format that must fail to decode: wrong field types, absurd lengths, bad framing. */
  readonly invalidFrames?: readonly { readonly name: string; readonly bytes: Uint8Array }[];
  /**
   * Whether every strict prefix of a valid frame must fail to decode. True
   * for self-delimiting formats (JSON, msgpack); a protobuf frame cut at a
   * field boundary is itself a valid message.
   */
  readonly rejectsTruncation?: boolean;
  /** How many random byte strings to decode. Default 2,000. */
  readonly randomInputs?: number;
  /** Seed of the random inputs. Default 1. */
  readonly seed?: number;
}

const DECODE_CODES = ['KVMESH_ERR_CODEC_DECODE', 'KVMESH_ERR_MESSAGE_UNKNOWN'] as const;
const NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const MIME = /^[a-z]+\/[a-z0-9][a-z0-9.+-]*$/;
// Overwritten into valid frames: huge varints and huge big-endian lengths, as length prefixes of any format.
const ABSURD_LENGTHS: readonly (readonly number[])[] = [
  [0xff, 0xff, 0xff, 0xff, 0x0f],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
  [0x7f, 0xff, 0xff, 0xff],
  [0xdb, 0x7f, 0xff, 0xff, 0xff],
  [0xdd, 0x7f, 0xff, 0xff, 0xff],
];
const FLIPS: readonly number[] = [0x01, 0x80, 0xff];

/**
 * Checks one decode of untrusted bytes against the Codec contract.
 * @returns undefined when `codec.decode(bytes)` either returned a message of a
 *   registered type whose payload is already canonical, or threw a KvError
 *   KVMESH_ERR_CODEC_DECODE / KVMESH_ERR_MESSAGE_UNKNOWN; otherwise a
 *   sentence saying what went wrong, with the input in hex.
 */
export function decodeProblem(codec: Codec, messages: MessageRegistry, bytes: Uint8Array): string | undefined {
  let message: Message;
  try {
    message = codec.decode(bytes);
  } catch (err) {
    if (DECODE_CODES.some((code) => isKvError(err, code))) return undefined;
    return `decode threw ${describeError(err)} for ${hex(bytes)}`;
  }
  if (typeof message !== 'object' || message === null || typeof message.type !== 'string') {
    return `decode returned ${String(message)} instead of a message for ${hex(bytes)}`;
  }
  if (!messages.has(message.type)) return `decode returned unregistered type ${message.type} for ${hex(bytes)}`;
  let canonical: unknown;
  try {
    canonical = messages.get(message.type).normalize(message.payload);
  } catch (err) {
    return `decode returned a ${message.type} that does not normalize (${describeError(err)}) for ${hex(bytes)}`;
  }
  if (!isDeepStrictEqual(canonical, message.payload)) {
    return `decode returned a ${message.type} payload that is not in canonical form for ${hex(bytes)}`;
  }
  return undefined;
}

/**
 * The shared test suite of the codec family: round trips, determinism,
 * golden bytes, contract errors, and hostile input (random bytes,
 * truncations, flipped bytes, absurd lengths, codec-specific bad frames).
 * Every codec, built-in or third-party, runs it unchanged.
 */
export function runCodecConformance(test: CodecConformanceTest, options: CodecConformanceOptions): void {
  const prefix = options.title ?? 'codec';
  const setup = (): { messages: MessageRegistry; codec: Codec } => {
    const messages = (options.createRegistry ?? createMessageRegistry)();
    for (const source of options.protoSources) messages.define(source);
    return { messages, codec: options.createCodec(messages) };
  };
  const named = sampleNames(options.samples);
  const frames = (codec: Codec): Uint8Array[] => options.samples.map((s) => codec.encode(s.type, s.payload));

  test(`${prefix}: has a kebab-case name, a tag from 1 to 255 and a MIME content type`, (t) => {
    const { codec } = setup();
    t.true(NAME.test(codec.name), `name ${JSON.stringify(codec.name)}`);
    t.true(Number.isInteger(codec.tag) && codec.tag >= 1 && codec.tag <= 255, `tag ${codec.tag}`);
    t.true(MIME.test(codec.contentType), `content type ${JSON.stringify(codec.contentType)}`);
  });

  test(`${prefix}: round-trips every sample to exactly its normalized payload`, (t) => {
    const { messages, codec } = setup();
    t.true(options.samples.length > 0, 'no samples given');
    options.samples.forEach((sample, i) => {
      const expected: Message = { type: sample.type, payload: messages.get(sample.type).normalize(sample.payload) };
      const bytes = codec.encode(sample.type, sample.payload);
      t.true(bytes instanceof Uint8Array, `${named[i]}: encode returns a Uint8Array`);
      t.deepEqual(codec.decode(bytes), expected, `${named[i]}: decode(encode(payload))`);
      t.deepEqual(codec.decode(codec.encode(sample.type, expected.payload)), expected, `${named[i]}: canonical`);
    });
  });

  test(`${prefix}: encodes deterministically, whatever the instance and the form of the payload`, (t) => {
    const first = setup();
    const second = setup();
    options.samples.forEach((sample, i) => {
      const bytes = first.codec.encode(sample.type, sample.payload);
      t.deepEqual(first.codec.encode(sample.type, sample.payload), bytes, `${named[i]}: same codec`);
      t.deepEqual(second.codec.encode(sample.type, sample.payload), bytes, `${named[i]}: another codec`);
      const canonical = first.messages.get(sample.type).normalize(sample.payload);
      t.deepEqual(first.codec.encode(sample.type, canonical), bytes, `${named[i]}: canonical payload`);
    });
  });

  if (options.goldenFile !== undefined) {
    const file = options.goldenFile;
    test(`${prefix}: encodes every sample to its golden bytes and decodes them`, (t) => {
      const { messages, codec } = setup();
      const actual = Object.fromEntries(frames(codec).map((bytes, i) => [named[i], toHex(bytes)]));
      if (process.env['KVMESH_UPDATE_GOLDEN'] === '1') {
        const path = file instanceof URL ? fileURLToPath(file) : file;
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, `${JSON.stringify(actual, null, 2)}\n`);
        t.log(`wrote ${path}`);
        t.pass();
        return;
      }
      let golden: Record<string, string>;
      try {
        golden = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
      } catch (err) {
        t.true(
          false,
          `cannot read golden file ${String(file)} (${describeError(err)}); write it with KVMESH_UPDATE_GOLDEN=1`,
        );
        return;
      }
      t.deepEqual(Object.keys(golden).sort(), [...named].sort(), 'the golden file lists exactly the samples');
      options.samples.forEach((sample, i) => {
        const name = named[i] as string;
        t.is(actual[name], golden[name], `${name}: bytes differ from the golden file (a wire format change?)`);
        const goldenHex = golden[name];
        if (typeof goldenHex !== 'string') return;
        t.deepEqual(
          codec.decode(fromHex(goldenHex)),
          { type: sample.type, payload: messages.get(sample.type).normalize(sample.payload) },
          `${name}: golden bytes decode to the sample`,
        );
      });
    });
  }

  test(`${prefix}: keeps no reference to what it encodes or decodes`, (t) => {
    const { messages, codec } = setup();
    const encoded = frames(codec);
    const copies = encoded.map((bytes) => Uint8Array.from(bytes));
    frames(codec);
    t.deepEqual(encoded, copies, 'later encodes leave earlier results alone');
    options.samples.forEach((sample, i) => {
      const input = Uint8Array.from(encoded[i] as Uint8Array);
      const decoded = codec.decode(input);
      input.fill(0xa5);
      t.deepEqual(decoded.payload, messages.get(sample.type).normalize(sample.payload), `${named[i]}: input reused`);
    });
  });

  test(`${prefix}: rejects an unknown type and an invalid payload when encoding`, (t) => {
    const { codec } = setup();
    t.is(
      codeOf(() => codec.encode('kvmesh.conformance.NoSuchType', {})),
      'KVMESH_ERR_MESSAGE_UNKNOWN',
    );
    for (const sample of options.samples) {
      t.is(
        codeOf(() => codec.encode(sample.type, 42)),
        'KVMESH_ERR_MESSAGE_INVALID',
        sample.type,
      );
      t.is(
        codeOf(() => codec.encode(sample.type, [sample.payload])),
        'KVMESH_ERR_MESSAGE_INVALID',
        sample.type,
      );
    }
  });

  test(`${prefix}: rejects empty input and input that is not bytes`, (t) => {
    const { codec } = setup();
    const inputs: unknown[] = [new Uint8Array(0), undefined, null, 'text', [1, 2, 3], new ArrayBuffer(4)];
    for (const input of inputs) {
      const code = codeOf(() => codec.decode(input as Uint8Array));
      t.true(isDecodeCode(code), `decode(${describeValue(input)}) threw ${code}`);
    }
  });

  test(`${prefix}: decodes random bytes to a valid message or a decode error`, (t) => {
    const { messages, codec } = setup();
    const next = random(options.seed ?? 1);
    const count = options.randomInputs ?? 2000;
    const problems: string[] = [];
    for (let i = 0; i < count; i++) {
      const length = i % 4 === 0 ? next() % 8 : next() % 512;
      const bytes = new Uint8Array(length);
      for (let j = 0; j < length; j++) bytes[j] = next() & 0xff;
      collect(problems, decodeProblem(codec, messages, bytes));
    }
    t.deepEqual(problems, []);
  });

  test(`${prefix}: ${options.rejectsTruncation ? 'rejects' : 'survives'} every truncation of a valid frame`, (t) => {
    const { messages, codec } = setup();
    const problems: string[] = [];
    for (const frame of frames(codec)) {
      for (let end = 0; end < frame.length; end++) {
        const cut = frame.slice(0, end);
        if (options.rejectsTruncation) {
          const code = codeOf(() => codec.decode(cut));
          if (!isDecodeCode(code)) collect(problems, `decode of ${hex(cut)} gave ${code}`);
        } else {
          collect(problems, decodeProblem(codec, messages, cut));
        }
      }
    }
    t.deepEqual(problems, []);
  });

  test(`${prefix}: survives every single-byte flip of a valid frame`, (t) => {
    const { messages, codec } = setup();
    const problems: string[] = [];
    for (const frame of frames(codec)) {
      for (let at = 0; at < frame.length; at++) {
        for (const mask of FLIPS) {
          const bytes = Uint8Array.from(frame);
          bytes[at] = (bytes[at] as number) ^ mask;
          collect(problems, decodeProblem(codec, messages, bytes));
        }
      }
    }
    t.deepEqual(problems, []);
  });

  test(`${prefix}: survives absurd length prefixes written into a valid frame`, (t) => {
    const { messages, codec } = setup();
    const problems: string[] = [];
    for (const frame of frames(codec)) {
      for (let at = 0; at < frame.length; at++) {
        for (const pattern of ABSURD_LENGTHS) {
          const bytes = Uint8Array.from(frame);
          bytes.set(pattern.slice(0, frame.length - at), at);
          collect(problems, decodeProblem(codec, messages, bytes));
          const inserted = new Uint8Array(frame.length + pattern.length);
          inserted.set(frame.subarray(0, at));
          inserted.set(pattern, at);
          inserted.set(frame.subarray(at), at + pattern.length);
          collect(problems, decodeProblem(codec, messages, inserted));
        }
      }
    }
    t.deepEqual(problems, []);
  });

  if (options.invalidFrames !== undefined && options.invalidFrames.length > 0) {
    const invalid = options.invalidFrames;
    test(`${prefix}: rejects frames with wrong field types or impossible lengths`, (t) => {
      const { codec } = setup();
      for (const frame of invalid) {
        const code = codeOf(() => codec.decode(frame.bytes));
        t.true(isDecodeCode(code), `${frame.name}: decode gave ${code}`);
      }
    });
  }
}

function sampleNames(samples: readonly CodecSample[]): string[] {
  const seen = new Map<string, number>();
  return samples.map((sample) => {
    if (sample.name !== undefined) return sample.name;
    const n = seen.get(sample.type) ?? 0;
    seen.set(sample.type, n + 1);
    return `${sample.type}#${n}`;
  });
}

/** The code a call throws: 'returned' when it does not throw, 'no code: ...' for a throw without a kvmesh code. */
function codeOf(run: () => unknown): string {
  try {
    run();
    return 'returned';
  } catch (err) {
    return isKvError(err) ? err.code : `no code: ${describeError(err)}`;
  }
}

function isDecodeCode(code: string): boolean {
  return (DECODE_CODES as readonly string[]).includes(code);
}

// Only the first problems are kept: one is enough to debug, thousands would flood the report.
function collect(problems: string[], problem: string | undefined): void {
  if (problem !== undefined && problems.length < 5) problems.push(problem);
}

/** mulberry32: a small seeded generator, so a failing input is the same on every run. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return (z ^ (z >>> 14)) >>> 0;
  };
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function fromHex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'hex'));
}

function hex(bytes: Uint8Array): string {
  const text = toHex(bytes);
  return text.length > 200 ? `0x${text.slice(0, 200)}… (${bytes.length} bytes)` : `0x${text}`;
}

function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

function describeValue(value: unknown): string {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (value instanceof ArrayBuffer) return 'an ArrayBuffer';
  return JSON.stringify(value) ?? String(value);
}
