import type { ExecutionContext } from 'ava';
import {
  CoordinatorKvService,
  PluginRegistry,
  SeededRandom,
  SimNetwork,
  VirtualClock,
  compareRecords,
  coveredBy,
  createMessageRegistry,
  createNode,
  definePlugin,
  kvConfigSchema,
  kvServiceDefinition,
  silentLogger,
  simAddress,
  validateConfig,
} from '../../src/index.js';
import type {
  AnyPluginManifest,
  KvNode,
  Logger,
  Member,
  MemberState,
  NodeInfo,
  Placement,
  ReplicaSet,
  Admission,
  Rpc,
  ScanOptions,
  ScanPage,
  Storage,
  StoredRecord,
  Version,
} from '../../src/index.js';
import { mapHints, stubPlugin } from '../helpers/fake-plugins.js';
import { testCodec } from '../helpers/test-codec.js';

export const UTF8 = new TextEncoder();
export const text = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : new TextDecoder().decode(bytes);

/**
 * A Map-backed Storage that yields to the event loop between reading and
 * writing, as a disk-backed store does, so races between operations on one
 * key are real. Counts calls, and can be told to fail.
 */
export class MapStorage implements Storage {
  readonly name = 'map';
  readonly records = new Map<string, StoredRecord>();
  readonly calls = { get: 0, put: 0 };
  readonly hints = mapHints();
  /** When set, every get and put rejects with it. */
  failure: Error | undefined;

  async get(key: string): Promise<StoredRecord | undefined> {
    this.calls.get++;
    await turn();
    if (this.failure) throw this.failure;
    return this.records.get(key);
  }

  async put(record: StoredRecord): Promise<boolean> {
    this.calls.put++;
    await turn();
    if (this.failure) throw this.failure;
    const current = this.records.get(record.key);
    if (current !== undefined && compareRecords(current, record) >= 0) return false;
    this.records.set(record.key, record);
    return true;
  }

  async count(): Promise<number> {
    return [...this.records.values()].filter((r) => !r.tombstone).length;
  }

  async sizeBytes(): Promise<number> {
    return 0;
  }

  async scan(options: ScanOptions): Promise<ScanPage> {
    return { records: [...this.records.values()].slice(0, options.limit), next: undefined };
  }

  async collectTombstones(olderThanMs: number): Promise<number> {
    let removed = 0;
    for (const [key, record] of this.records) {
      if (record.tombstone && record.version.wallMs < olderThanMs) {
        this.records.delete(key);
        removed++;
      }
    }
    return removed;
  }

  async putBatch(records: readonly StoredRecord[]): Promise<boolean[]> {
    const written: boolean[] = [];
    for (const record of records) written.push(await this.put(record));
    return written;
  }

  async purge(key: string, upTo: Version): Promise<boolean> {
    const current = this.records.get(key);
    if (current === undefined || !coveredBy(current.version, upTo)) return false;
    return this.records.delete(key);
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export function member(id: string, state: MemberState = 'alive'): Member {
  return { id, address: simAddress(id), state, incarnation: 0, meta: {} };
}

/** A replica set as tests write it: fallbacks, epoch and the conditional quorum (the write quorum) may be left out. */
export type ReplicaSpec = Pick<ReplicaSet, 'replicas' | 'writeQuorum' | 'readQuorum'> & Partial<ReplicaSet>;

/** A placement that returns the same replica set for every key, and counts calls. */
export class FixedPlacement implements Placement {
  readonly name = 'fixed';
  /** The view's epoch; tests change it to stand for a view change this node has (not) seen. */
  epoch = 1;
  calls = 0;
  /** This node's id: when set, `admit` owns only the keys whose set lists it. */
  selfId: string | undefined;
  #set!: ReplicaSet;

  constructor(set: ReplicaSpec, selfId?: string) {
    this.set = set;
    this.selfId = selfId;
  }

  get set(): ReplicaSet {
    return this.#set;
  }

  /** Fallbacks default to none, the epoch to 1, hops to 0 and the conditional quorum to the write quorum. */
  set set(spec: ReplicaSpec) {
    this.#set = { fallbacks: [], epoch: this.epoch, hops: 0, conditionalWriteQuorum: spec.writeQuorum, ...spec };
  }

  async locate(): Promise<ReplicaSet> {
    this.calls++;
    return this.#set.epoch === this.epoch ? this.#set : { ...this.#set, epoch: this.epoch };
  }

  admit(): Admission {
    if (this.selfId === undefined || this.#set.replicas.some((m) => m.id === this.selfId)) return { kind: 'own' };
    return { kind: 'not-owner', epoch: this.epoch, owners: this.#set.replicas };
  }

  plan(): [] {
    return [];
  }

  describe(): Record<string, unknown> {
    return { strategy: 'fixed' };
  }
}

/** An Rpc for a node with no peers: handlers are kept, requests fail. */
export class LoneRpc implements Rpc {
  readonly address = simAddress('n1');
  readonly handlers = new Map<string, unknown>();

  request(): Promise<never> {
    return Promise.reject(new Error('a lone node has no peers'));
  }

  send(): void {}

  handle(type: string, handler: unknown): void {
    this.handlers.set(type, handler);
  }

  on(): () => void {
    return () => undefined;
  }
}

export interface SingleOptions {
  readonly maxKeyBytes?: number;
  readonly maxValueBytes?: number;
  readonly kv?: Record<string, unknown>;
}

/** A started KV service on one node that holds every key, without a kernel. */
export function singleNode(t: ExecutionContext, options: SingleOptions = {}) {
  const clock = new VirtualClock();
  const storage = new MapStorage();
  const placement = new FixedPlacement({ replicas: [member('n1')], writeQuorum: 1, readQuorum: 1 });
  const rpc = new LoneRpc();
  const node: NodeInfo = { id: 'n1', address: '127.0.0.1:4000', role: 'storage', dataDir: '/tmp', configDir: '/tmp' };
  const kv = new CoordinatorKvService({
    node,
    random: new SeededRandom(1),
    config: {
      limits: { maxKeyBytes: options.maxKeyBytes ?? 1024, maxValueBytes: options.maxValueBytes ?? 1024 },
      ...(options.kv ? { kv: options.kv } : {}),
    },
    clock,
    storage,
    placement,
    rpc,
    messages: createMessageRegistry(),
    logger: silentLogger,
  });
  kv.start();
  t.teardown(() => kv.stop());
  return { kv, clock, storage, placement, rpc };
}

export interface ClusterOptions {
  readonly ids?: readonly string[];
  readonly writeQuorum?: number;
  readonly readQuorum?: number;
  readonly timeoutMs?: number;
  readonly seed?: number;
  readonly kv?: Record<string, unknown>;
  /** Nodes that hold the keys (default: every node); the others coordinate only. */
  readonly replicaIds?: readonly string[];
  /** Clock offset in ms of each node (default 0): its view of the shared virtual clock. */
  readonly clockOffsetMs?: Readonly<Record<string, number>>;
  /** Each node's logger (default: silent). */
  readonly logger?: (id: string) => Logger;
}

export interface ClusterNode {
  readonly id: string;
  readonly node: KvNode;
  readonly kv: CoordinatorKvService;
  readonly storage: MapStorage;
  readonly placement: FixedPlacement;
}

/**
 * Nodes built by the kernel with the real RpcService over a SimNetwork and
 * `kvServiceDefinition()`, each holding a replica of every key (a fixed
 * placement listing all of them).
 */
export async function kvCluster(t: ExecutionContext, options: ClusterOptions = {}) {
  const ids = options.ids ?? ['a', 'b', 'c'];
  const clock = new VirtualClock();
  const network = new SimNetwork({ clock, random: new SeededRandom(options.seed ?? 7) });
  const set: ReplicaSet = {
    replicas: (options.replicaIds ?? ids).map((id) => member(id)),
    fallbacks: [],
    epoch: 1,
    hops: 0,
    writeQuorum: options.writeQuorum ?? 2,
    conditionalWriteQuorum: options.writeQuorum ?? 2,
    readQuorum: options.readQuorum ?? 2,
  };
  const fixed: AnyPluginManifest = definePlugin({
    family: 'placement',
    name: 'fixed',
    description: 'Every key on the same replicas.',
    optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
    needs: ['node'],
    create: () => (c: { node: NodeInfo }) => new FixedPlacement(set, c.node.id),
  });
  const map: AnyPluginManifest = definePlugin({
    family: 'storage',
    name: 'map',
    description: 'Map-backed storage for KV tests.',
    optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
    needs: [],
    create: () => () => new MapStorage(),
  });
  const registry = new PluginRegistry([fixed, map, testCodec(), stubPlugin('transport', 'http')]);
  const nodes: ClusterNode[] = [];
  for (const [i, id] of ids.entries()) {
    const raw = {
      node: { id, address: `127.0.0.${i + 1}:4000` },
      storage: { name: 'map' },
      placement: { name: 'fixed' },
      rpc: { timeoutMs: options.timeoutMs ?? 500 },
      limits: { maxKeyBytes: 64, maxValueBytes: 64 },
      ...(options.kv ? { kv: options.kv } : {}),
    };
    const config = validateConfig(raw, registry, { extensions: { kv: kvConfigSchema } });
    const node = await createNode({
      config,
      registry,
      provide: {
        clock: options.clockOffsetMs?.[id] ? clock.skewed(options.clockOffsetMs[id]) : clock,
        random: new SeededRandom(i),
        transport: network.endpoint(id),
        ...(options.logger ? { logger: options.logger(id) } : {}),
      },
      extras: [kvServiceDefinition()],
    });
    t.teardown(() => node.stop());
    nodes.push({
      id,
      node,
      kv: node.get<CoordinatorKvService>('kv'),
      storage: node.get<MapStorage>('storage'),
      placement: node.get<FixedPlacement>('placement'),
    });
  }
  await Promise.all(nodes.map((n) => n.node.start()));
  const byId = (id: string): ClusterNode => nodes.find((n) => n.id === id)!;
  return { clock, network, nodes, byId, set };
}

/**
 * Drives the virtual clock until `promise` settles (the network and the
 * deadlines run on it), then returns it. Gives up after `limitMs` of virtual time.
 */
export async function settle<T>(clock: VirtualClock, promise: Promise<T>, limitMs = 60_000): Promise<T> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  for (let elapsed = 0; !done && elapsed < limitMs; elapsed++) await clock.advanceAsync(1);
  if (!done) throw new Error(`still pending after ${limitMs} ms of virtual time`);
  return promise;
}

/** Drives the virtual clock until `condition` holds. */
export async function until(clock: VirtualClock, condition: () => boolean, limitMs = 60_000): Promise<void> {
  for (let elapsed = 0; !condition() && elapsed < limitMs; elapsed++) await clock.advanceAsync(1);
  if (!condition()) throw new Error(`condition still false after ${limitMs} ms of virtual time`);
}
