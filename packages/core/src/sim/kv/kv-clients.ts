import type { KvService } from '../../contracts/kv.js';
import { formatVersion } from '../../kv/hlc.js';
import { TOKENS } from '../../tokens.js';
import type { SimCluster } from '../cluster.js';
import type { SeededRandom } from '../seeded-random.js';
import type { KvOp, KvOpKind } from './history.js';

/** Client operations of a run when the options do not say. */
export const DEFAULT_OPS = 400;
/** The error a client records when it gave up waiting for an answer. */
export const CLIENT_TIMEOUT = 'CLIENT_TIMEOUT';
/** The error a client records when the node it talked to crashed before answering. */
export const CONNECTION_LOST = 'CONNECTION_LOST';
/** Longest client think time between two operations, in virtual ms. */
const THINK_MS = 200;
/** Shares of each client operation, out of their sum; `increment` is a read then a conditional write. */
const OP_WEIGHTS: ReadonlyArray<readonly [KvOpKind | 'increment', number]> = [
  ['get', 25],
  ['put', 25],
  ['delete', 10],
  ['create', 10],
  ['cas', 10],
  ['increment', 20],
];

const UTF8 = new TextEncoder();
const TEXT = new TextDecoder();

export interface KvClientsOptions {
  /** Client operations in all (an increment counts as one). */
  readonly ops?: number;
  readonly keys: readonly string[];
  readonly counters: readonly string[];
  readonly opTimeoutMs: number;
  /** Virtual ms the run started at: the history's times count from it. */
  readonly t0: number;
  /** Send nothing to a node while `joining` says it joins (when another node is up). */
  readonly readyOnly: boolean;
  readonly joining: (id: string) => boolean;
}

/**
 * The clients of a simulated KV run: each does operations through a random
 * running node's KV service and records them (`ops`, in completion order).
 * A client gives up on an answer after `opTimeoutMs`, and an operation in
 * flight at a node that crashes ends at the crash (`dropConnections`).
 */
/** Failures after which the operation was certainly not applied; any other leaves it unknown. */
const DEFINITE_FAILURES: ReadonlySet<string> = new Set([
  'KVMESH_ERR_KV_PRECONDITION_FAILED',
  'KVMESH_ERR_KV_NOT_JOINED',
]);

export class KvClients {
  readonly ops: KvOp[] = [];
  readonly #cluster: SimCluster;
  readonly #options: KvClientsOptions;
  /** Per node, what fails the client operations in flight there when it crashes (their connections drop). */
  readonly #inflight = new Map<string, Set<(err: Error) => void>>();
  #nextId = 0;
  #issued = 0;

  constructor(cluster: SimCluster, options: KvClientsOptions) {
    this.#cluster = cluster;
    this.#options = options;
  }

  /** Starts one client per generator; resolves when every one did its share. */
  run(randoms: readonly SeededRandom[]): Promise<void> {
    return Promise.all(randoms.map((random, c) => this.#client(c, random))).then(() => undefined);
  }

  /** One client: `ops` operations shared with the others, each after a think time. */
  async #client(client: number, random: SeededRandom): Promise<void> {
    const total = this.#options.ops ?? DEFAULT_OPS;
    const versions = new Map<string, string>();
    const weightSum = OP_WEIGHTS.reduce((sum, [, w]) => sum + w, 0);
    while (this.#issued < total) {
      this.#issued++;
      await this.#cluster.clock.sleep(1 + random.int(THINK_MS));
      let draw = random.int(weightSum);
      const kind = OP_WEIGHTS.find(([, w]) => (draw -= w) < 0)![0];
      if (kind === 'increment') {
        await this.#increment(client, random, this.#options.counters[random.int(this.#options.counters.length)]!);
        continue;
      }
      const key = this.#options.keys[random.int(this.#options.keys.length)]!;
      const op = await this.#call(client, random, kind, key, versions.get(key));
      if (op.version !== undefined) versions.set(key, op.version);
      if (op.kind === 'delete' && op.outcome === 'ok') versions.delete(key);
    }
  }

  /** Reads a counter, then writes its value + 1 if its version is still the one read (create-only when absent). */
  async #increment(client: number, random: SeededRandom, key: string): Promise<void> {
    const read = await this.#call(client, random, 'get', key, undefined);
    if (read.outcome !== 'ok') return;
    const count = read.read === null || read.read === undefined ? 0 : Number(read.read);
    await this.#call(client, random, read.read === null ? 'create' : 'cas', key, read.version, String(count + 1));
  }

  /** One operation through a random running node, recorded in the history. */
  async #call(
    client: number,
    random: SeededRandom,
    kind: KvOpKind,
    key: string,
    version: string | undefined,
    counterValue?: string,
  ): Promise<KvOp> {
    const cluster = this.#cluster;
    const clock = cluster.clock;
    const up = cluster.runningIds();
    const ready = this.#options.readyOnly ? up.filter((id) => !this.#options.joining(id)) : up;
    const running = ready.length > 0 ? ready : up;
    const node = running[random.int(running.length)]!;
    const id = this.#nextId++;
    const value = kind === 'get' || kind === 'delete' ? undefined : (counterValue ?? `v${id}`);
    const ifMatch = kind === 'cas' ? (version ?? '*') : undefined;
    const invokeMs = clock.now() - this.#options.t0;
    const base = {
      id,
      client,
      node,
      kind,
      key,
      ...(value !== undefined ? { value } : {}),
      ...(ifMatch !== undefined ? { ifMatch } : {}),
      ...(counterValue !== undefined ? { increment: true } : {}),
      invokeMs,
    };
    const controller = new AbortController();
    let timer: { cancel(): void } | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = clock.setTimeout(() => {
        controller.abort();
        reject(Object.assign(new Error('the client gave up waiting'), { code: CLIENT_TIMEOUT }));
      }, this.#options.opTimeoutMs);
    });
    let op: KvOp;
    try {
      const kv = cluster.node(node).get<KvService>(TOKENS.kv);
      const signal = { signal: controller.signal };
      const work = (async (): Promise<Partial<KvOp>> => {
        switch (kind) {
          case 'get': {
            const { record, servedBy } = await kv.get(key, signal);
            return {
              read: record === undefined ? null : TEXT.decode(record.value),
              ...(record ? { version: formatVersion(record.version) } : {}),
              servedBy: servedBy.id,
            };
          }
          case 'delete': {
            const result = await kv.delete(key, undefined, signal);
            return {
              ...(result.version ? { version: formatVersion(result.version) } : {}),
              servedBy: result.servedBy.id,
              existed: result.existed,
            };
          }
          default: {
            const conditions =
              kind === 'create' ? { ifNoneMatch: '*' as const } : kind === 'cas' ? { ifMatch: ifMatch! } : undefined;
            const result = await kv.put(key, UTF8.encode(value!), 'text/plain', conditions, signal);
            return { version: formatVersion(result.version), servedBy: result.servedBy.id };
          }
        }
      })();
      work.catch(() => undefined);
      // A node that crashes answers nothing more: what its code still does while it stops is not the client's answer.
      let drop: ((err: Error) => void) | undefined;
      const lost = new Promise<never>((_, reject) => (drop = reject));
      const connections = this.#inflight.get(node) ?? new Set();
      this.#inflight.set(node, connections);
      connections.add(drop!);
      let answer: Partial<KvOp>;
      try {
        answer = await Promise.race([work, timeout, lost]);
      } finally {
        connections.delete(drop!);
      }
      op = { ...base, ...answer, completeMs: clock.now() - this.#options.t0, outcome: 'ok' };
    } catch (err) {
      const error = errorCode(err);
      const outcome = DEFINITE_FAILURES.has(error) ? 'refused' : 'unknown';
      op = { ...base, completeMs: clock.now() - this.#options.t0, outcome, error };
    } finally {
      timer?.cancel();
    }
    this.ops.push(op);
    return op;
  }

  /** Fails every client operation in flight at `node`, as a crash drops its connections. */
  dropConnections(node: string): void {
    const connections = this.#inflight.get(node);
    if (connections === undefined) return;
    const lost = Object.assign(new Error(`node ${node} crashed`), { code: CONNECTION_LOST });
    for (const drop of [...connections]) drop(lost);
    connections.clear();
  }
}

/** A failure as the history records it: its KvError code, else its message. */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : String((err as Error | undefined)?.message ?? err);
}
