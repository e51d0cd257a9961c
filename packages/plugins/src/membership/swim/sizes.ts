import type { Codec } from '@kvmesh/core';
import { SWIM_MESSAGES } from './messages.js';
import type { WireUpdate } from './messages.js';

const WIDEST_UINT32 = 0xffffffff;
/**
 * Room for a string's length prefix or quotes beyond the empty string's in
 * the template: protobuf leaves empty strings out (a tag and a length come
 * back), msgpack and protobuf prefixes grow with the length, JSON adds a
 * separator for each further list item.
 */
const stringOverhead = (length: number): number => (length < 32 ? 3 : length < 256 ? 4 : 6);
/** Room per update for a longer array header than the template's. */
const ITEM_OVERHEAD = 3;
/** Printable ASCII other than `"` and `\`: one byte in UTF-8 and in JSON. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** Bytes a string takes at most: its length when plain, else six per UTF-16 unit (a JSON \u escape). */
function stringBytes(text: string): number {
  return (PLAIN.test(text) ? text.length : 6 * text.length) + stringOverhead(text.length);
}

/**
 * Upper bounds of encoded sizes without encoding: each message shape is
 * encoded once with every string empty and every number at its widest, and
 * a message adds what its strings take at most. Encoding every update and
 * every probe twice (once to measure) would double the work of a
 * thousand-member cluster. Works for any codec; an estimate that still
 * came out short is caught by the transport's size check.
 */
export class SizeEstimator {
  readonly #codec: Codec;
  readonly #templates = new Map<string, number>();
  readonly #update: number;

  constructor(codec: Codec) {
    this.#codec = codec;
    const template = {
      id: '',
      state: 'SUSPECT',
      incarnation: Number.MAX_SAFE_INTEGER,
      address: '',
      meta: [],
      from: '',
      ageMs: WIDEST_UINT32,
      confirmations: WIDEST_UINT32,
    };
    // What one more update adds to a message: its fields, its separator or tag and length.
    const one = codec.encode(SWIM_MESSAGES.gossip, { updates: [template] }).length;
    const two = codec.encode(SWIM_MESSAGES.gossip, { updates: [template, template] }).length;
    this.#update = two - one + ITEM_OVERHEAD;
  }

  /** What the update adds to a message at most. */
  update(update: WireUpdate): number {
    let bytes = this.#update + stringBytes(update.id) + stringBytes(update.address) + stringBytes(update.from);
    for (const item of update.meta) bytes += stringBytes(item);
    return bytes;
  }

  /** A message of `type` with `base`'s fields (strings and numbers only) and no updates. */
  message(type: string, base: Readonly<Record<string, unknown>>): number {
    const keys = Object.keys(base);
    const key = `${type} ${keys.join(',')}`;
    let template = this.#templates.get(key);
    if (template === undefined) {
      const widest: Record<string, unknown> = { updates: [] };
      for (const k of keys) {
        const value = base[k];
        widest[k] = typeof value === 'string' ? '' : typeof value === 'number' ? WIDEST_UINT32 : value;
      }
      template = this.#codec.encode(type, widest).length;
      this.#templates.set(key, template);
    }
    let bytes = template;
    for (const k of keys) {
      const value = base[k];
      if (typeof value === 'string') bytes += stringBytes(value);
    }
    return bytes;
  }
}
