import type { FinalRead, KvHistory, KvOp, ReplicaState } from './history.js';
import { isWrite } from './history.js';

/**
 * The four properties a settled run must show:
 * - `a`: no acknowledged write is lost: every key reads as the value of its
 *   last acknowledged write or of a write concurrent with it (never older,
 *   never a value nobody wrote, never absent when a put was the last word).
 * - `b`: convergence: every replica of a key holds the same version.
 * - `c`: a counter incremented with If-Match counts every acknowledged increment once.
 * - `d`: no read returns a value an acknowledged delete removed.
 */
export type KvCheck = 'a' | 'b' | 'c' | 'd';

export type KvRule =
  /** (a) A key reads as absent although an acknowledged put was its last write. */
  | 'lost-write'
  /** (a) A key reads as a value that an acknowledged write replaced. */
  | 'stale-read'
  /** (a) A key reads as a value no client wrote to it. */
  | 'phantom-read'
  /** (a) A final read failed although every fault had healed. */
  | 'final-read-failed'
  /** (b) The replicas of a key hold different versions after settling. */
  | 'divergent-replicas'
  /** (b) After settling, placement could not name the replicas of a key, so nobody can say they agree. */
  | 'replicas-unknown'
  /** (c) Two acknowledged increments wrote the same count: one of them was lost. */
  | 'counter-duplicate'
  /** (c) A counter does not end at the number of acknowledged increments (plus at most the unanswered ones). */
  | 'counter-total'
  /** (d) A key reads as a value written before an acknowledged delete. */
  | 'deleted-read';

const CHECK_OF: Record<KvRule, KvCheck> = {
  'lost-write': 'a',
  'stale-read': 'a',
  'phantom-read': 'a',
  'final-read-failed': 'a',
  'divergent-replicas': 'b',
  'replicas-unknown': 'b',
  'counter-duplicate': 'c',
  'counter-total': 'c',
  'deleted-read': 'd',
};

export interface KvViolation {
  readonly rule: KvRule;
  readonly check: KvCheck;
  readonly key: string;
  /** One sentence saying what is wrong. */
  readonly message: string;
  /** The fewest operations that show it, in invoke order. */
  readonly excerpt: readonly KvOp[];
  /** The final reads that show it (one per node that read the same wrong answer). */
  readonly reads: readonly FinalRead[];
  /** The replica records that show it (divergent-replicas). */
  readonly replicas?: ReplicaState;
}

/**
 * Judges a settled run's history (see KvHistory) against the four properties
 * of `KvCheck`, one key at a time. An acknowledged write W is superseded
 * when another acknowledged write was invoked after W completed: a final
 * read may return the value of any write that is not superseded. An
 * `unknown` write is never superseded: as in Jepsen's model of an
 * indeterminate operation, it may take effect at any time after it was
 * invoked, also after the client heard it fail (its record may wait on a
 * replica that was cut off or crashed with it, and win later under
 * last-writer-wins). A `refused` one was never applied.
 *
 * Pure: the same history gives the same violations, in key order.
 */
export function checkHistory(history: KvHistory): KvViolation[] {
  const ops = groupBy(history.ops, (op) => op.key);
  const finals = groupBy(history.finals, (read) => read.key);
  const counters = new Set(history.counters);
  const keys = [...new Set([...ops.keys(), ...finals.keys(), ...history.replicas.map((r) => r.key)])].sort();
  const replicas = new Map(history.replicas.map((r) => [r.key, r]));
  const violations: KvViolation[] = [];
  for (const key of keys) {
    const keyOps = ops.get(key) ?? [];
    const keyReads = finals.get(key) ?? [];
    violations.push(...checkFinalReads(key, keyOps, keyReads));
    const state = replicas.get(key);
    if (state !== undefined) violations.push(...checkReplicas(state, keyOps));
    if (counters.has(key)) violations.push(...checkCounter(key, keyOps, keyReads));
  }
  return violations;
}

function checkFinalReads(key: string, ops: readonly KvOp[], reads: readonly FinalRead[]): KvViolation[] {
  const writes = ops.filter((op) => isWrite(op) && op.outcome !== 'refused');
  const acked = writes.filter((op) => op.outcome === 'ok');
  const supersededBy = (w: KvOp): KvOp | undefined =>
    w.outcome === 'ok' ? acked.find((a) => a !== w && a.invokeMs > w.completeMs) : undefined;
  const live = writes.filter((w) => supersededBy(w) === undefined);
  const allowed = new Set<string | null>(live.map(writtenValue));
  if (acked.length === 0) allowed.add(null);
  const latestAcked = live.filter((w) => w.outcome === 'ok');
  const violations: KvViolation[] = [];
  const failed = reads.filter((r) => r.value === undefined);
  if (failed.length > 0) {
    violations.push({
      rule: 'final-read-failed',
      check: CHECK_OF['final-read-failed'],
      key,
      message: `${nodes(failed)} could not read '${key}' after every fault healed: ${failed[0]!.error ?? 'no answer'}`,
      excerpt: [],
      reads: failed,
    });
  }
  const wrong = groupBy(
    reads.filter((r) => r.value !== undefined && !allowed.has(r.value)),
    (r) => JSON.stringify(r.value),
  );
  for (const group of wrong.values()) {
    const value = group[0]!.value!;
    const shown = value === null ? 'absent' : JSON.stringify(value);
    if (value === null) {
      const last = latestAcked.filter((w) => w.kind !== 'delete');
      violations.push({
        rule: 'lost-write',
        check: CHECK_OF['lost-write'],
        key,
        message: `${nodes(group)} read '${key}' as absent, but its last acknowledged write was ${describe(last)}`,
        excerpt: last,
        reads: group,
      });
      continue;
    }
    const source = writes.find((w) => w.kind !== 'delete' && w.value === value);
    if (source === undefined) {
      violations.push({
        rule: 'phantom-read',
        check: CHECK_OF['phantom-read'],
        key,
        message: `${nodes(group)} read '${key}' as ${shown}, which no client wrote to it`,
        excerpt: [],
        reads: group,
      });
      continue;
    }
    const newer = supersededBy(source)!;
    const rule = newer.kind === 'delete' ? 'deleted-read' : 'stale-read';
    violations.push({
      rule,
      check: CHECK_OF[rule],
      key,
      message: `${nodes(group)} read '${key}' as ${shown} (op ${source.id}), but the acknowledged ${newer.kind} op ${newer.id} began after op ${source.id} ended`,
      excerpt: [source, newer].sort(byId),
      reads: group,
    });
  }
  return violations;
}

function checkReplicas(state: ReplicaState, ops: readonly KvOp[]): KvViolation[] {
  if (state.error !== undefined) {
    return [
      {
        rule: 'replicas-unknown',
        check: CHECK_OF['replicas-unknown'],
        key: state.key,
        message: `after settling, placement could not name the replicas of '${state.key}': ${state.error}`,
        excerpt: [],
        reads: [],
        replicas: state,
      },
    ];
  }
  // A tombstone and no record both say absent: a replica may never have seen the key it then saw deleted.
  const held = state.replicas.map((r) => (r.version === null || r.tombstone ? 'absent' : r.version));
  if (new Set(held).size <= 1) return [];
  const versions = new Set(state.replicas.map((r) => r.version));
  return [
    {
      rule: 'divergent-replicas',
      check: CHECK_OF['divergent-replicas'],
      key: state.key,
      message: `the replicas of '${state.key}' differ after settling: ${state.replicas
        .map(
          (r, i) =>
            `${r.node} ${held[i] === 'absent' ? (r.tombstone ? `tombstone ${r.version}` : 'nothing') : `${r.version} ${JSON.stringify(r.value)}`}`,
        )
        .join(', ')}`,
      excerpt: ops.filter((op) => isWrite(op) && op.version !== undefined && versions.has(op.version)),
      reads: [],
      replicas: state,
    },
  ];
}

function checkCounter(key: string, ops: readonly KvOp[], reads: readonly FinalRead[]): KvViolation[] {
  const increments = ops.filter((op) => op.increment === true);
  const acked = increments.filter((op) => op.outcome === 'ok');
  const unknown = increments.filter((op) => op.outcome === 'unknown');
  const violations: KvViolation[] = [];
  for (const same of groupBy(acked, (op) => op.value ?? '').values()) {
    if (same.length < 2) continue;
    violations.push({
      rule: 'counter-duplicate',
      check: CHECK_OF['counter-duplicate'],
      key,
      message: `counter '${key}': ${same.length} acknowledged increments all wrote ${same[0]!.value} (ops ${same.map((op) => op.id).join(', ')}), so ${same.length - 1} of them were lost`,
      excerpt: same.slice(0, 2),
      reads: [],
    });
  }
  const low = acked.length;
  const high = acked.length + unknown.length;
  for (const group of groupBy(
    reads.filter((r) => r.value !== undefined),
    (r) => String(r.value),
  ).values()) {
    const count = group[0]!.value === null ? 0 : Number(group[0]!.value);
    if (count >= low && count <= high) continue;
    const range = low === high ? `${low}` : `between ${low} and ${high}`;
    violations.push({
      rule: 'counter-total',
      check: CHECK_OF['counter-total'],
      key,
      message: `counter '${key}' reads ${count} on ${nodes(group)}, but ${low} increments were acknowledged and ${unknown.length} unanswered, so it must be ${range}`,
      excerpt: acked.length > 0 ? [acked.reduce((a, b) => (b.completeMs > a.completeMs ? b : a))] : [],
      reads: group,
    });
  }
  return violations;
}

/** What a write leaves the key as: its value, or null for a delete. */
function writtenValue(op: KvOp): string | null {
  return op.kind === 'delete' ? null : (op.value ?? null);
}

function describe(writes: readonly KvOp[]): string {
  return writes.map((w) => `${w.kind} of ${JSON.stringify(w.value)} (op ${w.id})`).join(' or ');
}

function nodes(reads: readonly FinalRead[]): string {
  return reads.map((r) => r.node).join(', ');
}

const byId = (a: KvOp, b: KvOp): number => a.id - b.id;

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group === undefined) groups.set(k, [item]);
    else group.push(item);
  }
  return groups;
}

/** One operation as a line of an excerpt: `op 12 c3@n2 put k4="v12" ok [1.200s..1.250s] version 1.0.n2`. */
export function formatOp(op: KvOp): string {
  const write =
    op.kind === 'get'
      ? ` -> ${op.read === undefined ? '?' : op.read === null ? 'absent' : JSON.stringify(op.read)}`
      : op.kind === 'delete'
        ? ''
        : `=${JSON.stringify(op.value)}`;
  const condition =
    op.kind === 'create' ? ' if-none-match:*' : op.ifMatch !== undefined ? ` if-match:${op.ifMatch}` : '';
  const outcome = op.outcome === 'ok' ? 'ok' : `${op.outcome} (${op.error ?? 'no answer'})`;
  const version = op.version !== undefined ? ` version ${op.version}` : '';
  const served = op.servedBy !== undefined ? ` by ${op.servedBy}` : '';
  const nothing = op.existed === false ? ' (nothing to delete)' : '';
  return `op ${op.id} c${op.client}@${op.node} ${op.kind} ${op.key}${write}${condition} ${outcome} [${seconds(op.invokeMs)}..${seconds(op.completeMs)}]${served}${version}${nothing}`;
}

/** A final read as a line of an excerpt. */
export function formatFinalRead(read: FinalRead): string {
  const value =
    read.value === undefined
      ? `failed (${read.error ?? 'no answer'})`
      : read.value === null
        ? 'absent'
        : JSON.stringify(read.value);
  return `final read ${read.key}@${read.node} -> ${value}${read.version !== undefined ? ` version ${read.version}` : ''}`;
}

/** A violation as lines: the rule and message, then the excerpt. */
export function formatViolation(violation: KvViolation): string[] {
  return [
    `(${violation.check}) ${violation.rule} on '${violation.key}': ${violation.message}`,
    ...violation.excerpt.map((op) => `    ${formatOp(op)}`),
    ...violation.reads.map((read) => `    ${formatFinalRead(read)}`),
  ];
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(3)}s`;
}
