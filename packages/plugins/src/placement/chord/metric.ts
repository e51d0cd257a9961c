import { hash } from 'node:crypto';
import { KvError } from '@kvmesh/core';
import { toIdent, type Ident } from './ring.js';

export const METRIC_NAMES = ['md5', 'trivial'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/**
 * How keys and nodes get their place on the identifier circle (dyschord's
 * `Metric`): `md5` maps to a 128-bit space; `trivial` takes integer keys mod
 * 16, a circle of 16 places for debugging by hand. Every node of a ring must
 * use the same one (checked on every request).
 */
export interface Metric {
  readonly name: MetricName;
  /** Identifier bits: 128 or 4. */
  readonly bits: number;
  /** The identifier of a key. @throws KvError KVMESH_ERR_PLACEMENT_KEY_INVALID for a key the metric cannot place. */
  keyIdent(key: string): Ident;
  /**
   * The identifier of a node: `configured` when given, else derived from
   * the node id (md5 of it; trivial: the integer the id ends with, mod 16).
   * @throws KvError KVMESH_ERR_CONFIG_INVALID when neither gives one.
   */
  nodeIdent(nodeId: string, configured: string): Ident;
}

/** Largest position of the trivial metric, plus one: dyschord's "mod 16". */
const TRIVIAL_PLACES = 16n;
const INTEGER = /^[-+]?\d+$/;
const HEX = /^[0-9a-fA-F]+$/;

const md5: Metric = {
  name: 'md5',
  bits: 128,
  keyIdent: (key) => hash('md5', key, 'hex'),
  nodeIdent: (nodeId, configured) => {
    if (configured === '') return hash('md5', nodeId, 'hex');
    if (!HEX.test(configured) || configured.length > 32) {
      throw new KvError(
        'KVMESH_ERR_CONFIG_INVALID',
        `chord identifier '${configured}' is not a hex number below 2^128 (metric md5)`,
      );
    }
    return configured.toLowerCase().padStart(32, '0');
  },
};

const trivial: Metric = {
  name: 'trivial',
  bits: 4,
  keyIdent: (key) => {
    if (!INTEGER.test(key)) {
      throw new KvError(
        'KVMESH_ERR_PLACEMENT_KEY_INVALID',
        `key ${JSON.stringify(key.slice(0, 64))} is not an integer: the trivial metric places integer keys only (mod 16); use metric md5 for other keys`,
      );
    }
    return toIdent(mod16(BigInt(key)), 4);
  },
  nodeIdent: (nodeId, configured) => {
    const source = configured !== '' ? configured : (/(\d+)$/.exec(nodeId)?.[1] ?? '');
    if (!INTEGER.test(source)) {
      throw new KvError(
        'KVMESH_ERR_CONFIG_INVALID',
        configured !== ''
          ? `chord identifier '${configured}' is not an integer (metric trivial places nodes at 0..15)`
          : `node id '${nodeId}' ends with no integer, so metric trivial cannot place it: set placement option identifier (0..15)`,
      );
    }
    return toIdent(mod16(BigInt(source)), 4);
  },
};

function mod16(value: bigint): bigint {
  return ((value % TRIVIAL_PLACES) + TRIVIAL_PLACES) % TRIVIAL_PLACES;
}

export function metricNamed(name: MetricName): Metric {
  return name === 'trivial' ? trivial : md5;
}
