import type { SeededRandom } from '../seeded-random.js';

/**
 * Faults a simulated KV run can inject:
 * - `crash`: a node stops abruptly and is restarted later (its storage kept, as a disk survives a process crash);
 * - `partition`: the nodes split into two groups that cannot reach each other;
 * - `isolate`: one node is cut off from every other;
 * - `asymmetric`: one node's messages to the others are lost, or theirs to it, one direction only;
 * - `loss`, `duplicate`, `reorder`: every link loses, duplicates or holds back a share of the packets;
 * - `skew`: every node's clock is off the virtual time by its own offset and drift, for the whole run.
 */
export const KV_FAULT_KINDS = [
  'crash',
  'partition',
  'isolate',
  'asymmetric',
  'loss',
  'duplicate',
  'reorder',
  'skew',
] as const;
export type KvFaultKind = (typeof KV_FAULT_KINDS)[number];

/** One fault of the schedule, as it was applied. */
export interface KvFault {
  readonly kind: KvFaultKind;
  /** Virtual ms since the clients started (0 for `skew`). */
  readonly atMs: number;
  /** How long it lasted, in virtual ms (the whole run for `skew`). */
  readonly durationMs: number;
  /**
   * The nodes it hit: the crashed or isolated node; one side of a partition;
   * for `asymmetric` the node whose outgoing (`direction: 'out'`) or incoming
   * (`'in'`) messages are lost. Empty for the link-wide faults.
   */
  readonly nodes: readonly string[];
  readonly direction?: 'in' | 'out';
  /** The share of packets lost, duplicated or held back (link-wide faults). */
  readonly rate?: number;
  /** Per node offset (ms) and drift (ppm), for `skew`. */
  readonly skew?: Readonly<Record<string, { readonly offsetMs: number; readonly driftPpm: number }>>;
  /** What went wrong applying or healing it: a crashed node that did not stop cleanly, a restart that failed. */
  readonly notes?: readonly string[];
}

/** Bounds of the schedule, in virtual ms. */
export interface KvFaultTiming {
  /** Quiet time before each fault, uniform in [min, max]. */
  readonly gapMs: { readonly min: number; readonly max: number };
  /** Length of each fault, uniform in [min, max]. */
  readonly durationMs: { readonly min: number; readonly max: number };
  /** Length of one fault in LONG_FAULT_SHARE instead, uniform in [min, max]: long enough for failure detection. */
  readonly longMs?: { readonly min: number; readonly max: number };
}

/** Share of the faults drawn from `KvFaultTiming.longMs` when it is given. */
export const LONG_FAULT_SHARE = 1 / 3;

export const DEFAULT_FAULT_TIMING: KvFaultTiming = Object.freeze({
  gapMs: Object.freeze({ min: 100, max: 1000 }),
  durationMs: Object.freeze({ min: 300, max: 3000 }),
});

/**
 * Parses a comma-separated fault list (`crash,partition,loss`), `all` or
 * `none`, in KV_FAULT_KINDS order without repeats.
 * @throws RangeError naming the unknown kinds and the known ones.
 */
export function parseFaultList(list: string): KvFaultKind[] {
  const items = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 1 && items[0] === 'all') return [...KV_FAULT_KINDS];
  if (items.length === 1 && items[0] === 'none') return [];
  const unknown = items.filter((s) => !(KV_FAULT_KINDS as readonly string[]).includes(s));
  if (unknown.length > 0) {
    throw new RangeError(
      `unknown fault kind ${unknown.map((s) => `'${s}'`).join(', ')}; known: ${KV_FAULT_KINDS.join(', ')} (or all, none)`,
    );
  }
  return KV_FAULT_KINDS.filter((kind) => items.includes(kind));
}

/** Draws one scheduled fault at a time (never `skew`, which is set when the cluster is built). */
export class FaultPlanner {
  readonly #random: SeededRandom;
  readonly #kinds: readonly KvFaultKind[];
  readonly #timing: KvFaultTiming;

  constructor(random: SeededRandom, kinds: readonly KvFaultKind[], timing: KvFaultTiming = DEFAULT_FAULT_TIMING) {
    this.#random = random;
    this.#kinds = kinds.filter((k) => k !== 'skew');
    this.#timing = timing;
  }

  /** True when there is any fault to schedule. */
  get active(): boolean {
    return this.#kinds.length > 0;
  }

  /** Quiet time before the next fault. */
  gap(): number {
    return this.#between(this.#timing.gapMs);
  }

  /**
   * The next fault at `atMs`, among `nodes` (ids of every node, in order);
   * `crashable` are the ones that may crash. Undefined when the drawn kind
   * has no target (no crashable node).
   */
  next(atMs: number, nodes: readonly string[], crashable: readonly string[]): KvFault | undefined {
    const random = this.#random;
    const kind = this.#kinds[random.int(this.#kinds.length)]!;
    const long = this.#timing.longMs !== undefined && random.next() < LONG_FAULT_SHARE;
    const durationMs = this.#between(long ? this.#timing.longMs! : this.#timing.durationMs);
    const pick = (from: readonly string[]): string => from[random.int(from.length)]!;
    switch (kind) {
      case 'crash':
        return crashable.length === 0 ? undefined : { kind, atMs, durationMs, nodes: [pick(crashable)] };
      case 'isolate':
        return { kind, atMs, durationMs, nodes: [pick(nodes)] };
      case 'asymmetric':
        return { kind, atMs, durationMs, nodes: [pick(nodes)], direction: random.next() < 0.5 ? 'in' : 'out' };
      case 'partition': {
        // The smaller side: 1 .. floor(N / 2) nodes.
        const size = 1 + random.int(Math.max(1, Math.floor(nodes.length / 2)));
        const side = random.shuffle(nodes).slice(0, size).sort(byIndex(nodes));
        return { kind, atMs, durationMs, nodes: side };
      }
      case 'loss':
        return { kind, atMs, durationMs, nodes: [], rate: round(0.05 + 0.25 * random.next()) };
      case 'duplicate':
        return { kind, atMs, durationMs, nodes: [], rate: round(0.05 + 0.25 * random.next()) };
      case 'reorder':
        return { kind, atMs, durationMs, nodes: [], rate: round(0.1 + 0.4 * random.next()) };
      default:
        return undefined;
    }
  }

  #between({ min, max }: { readonly min: number; readonly max: number }): number {
    return min + this.#random.int(max - min + 1);
  }
}

/** One fault as a line: `1.234s crash n3 for 2.100s`. */
export function formatFault(fault: KvFault): string {
  const at = `${(fault.atMs / 1000).toFixed(3)}s`;
  if (fault.kind === 'skew') {
    const each = Object.entries(fault.skew ?? {}).map(([id, s]) => `${id} ${s.offsetMs}ms ${s.driftPpm.toFixed(0)}ppm`);
    return `${at} skew ${each.join(', ')}`;
  }
  const target =
    fault.kind === 'asymmetric'
      ? ` ${fault.nodes[0]} ${fault.direction === 'out' ? 'sends nothing' : 'hears nothing'}`
      : fault.kind === 'partition'
        ? ` {${fault.nodes.join(',')}} | rest`
        : fault.nodes.length > 0
          ? ` ${fault.nodes.join(',')}`
          : '';
  const rate = fault.rate !== undefined ? ` ${(fault.rate * 100).toFixed(0)}%` : '';
  const notes = (fault.notes ?? []).map((note) => ` (${note})`).join('');
  return `${at} ${fault.kind}${target}${rate} for ${(fault.durationMs / 1000).toFixed(3)}s${notes}`;
}

function byIndex(nodes: readonly string[]): (a: string, b: string) => number {
  return (a, b) => nodes.indexOf(a) - nodes.indexOf(b);
}

function round(rate: number): number {
  return Math.round(rate * 1000) / 1000;
}
