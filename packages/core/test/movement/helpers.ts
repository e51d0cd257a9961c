import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import {
  CORE_MESSAGES,
  Movement,
  RpcService,
  SeededRandom,
  SimNetwork,
  VirtualClock,
  compareRecords,
  coveredBy,
  createMessageRegistry,
  planFilePath,
  silentLogger,
  simAddress,
} from '../../src/index.js';
import type {
  Admission,
  Codec,
  CodecSet,
  Hint,
  Logger,
  HintPage,
  HintStore,
  Member,
  MemberState,
  Membership,
  MembershipEvent,
  MembershipListener,
  MessageRegistry,
  Move,
  NodeInfo,
  OwnershipListener,
  Placement,
  PlanParameters,
  ReplicaSet,
  ScanOptions,
  ScanPage,
  SimTransport,
  Storage,
  StoredRecord,
  Version,
  ViewParameters,
} from '../../src/index.js';

export const UTF8 = new TextEncoder();
export const text = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : new TextDecoder().decode(bytes);

export function member(id: string, state: MemberState = 'alive'): Member {
  return { id, address: simAddress(id), state, incarnation: 0, meta: {} };
}

export function record(
  key: string,
  value: string | Uint8Array,
  wallMs: number,
  node = 'w',
  tombstone = false,
): StoredRecord {
  return {
    key,
    value: typeof value === 'string' ? UTF8.encode(value) : value,
    contentType: 'application/octet-stream',
    version: { wallMs, logical: 0, node },
    tombstone,
  };
}

/** A Map that counts the keys added to it, so a sorted index over it knows when it is stale. */
export class RecordMap extends Map<string, StoredRecord> {
  added = 0;

  override set(key: string, value: StoredRecord): this {
    if (!this.has(key)) this.added++;
    return super.set(key, value);
  }
}

/** What survives a simulated crash of one node: its records and hints. Tests may write to it directly. */
export interface Disk {
  readonly records: RecordMap;
  readonly hints: Map<string, Map<string, StoredRecord>>;
}

export const newDisk = (): Disk => ({ records: new RecordMap(), hints: new Map() });

const compareKeys = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * A Storage over a Disk, with everything data movement uses: scan in key
 * order with filter and cursor, putBatch, purge up to a version, hints.
 * Each call yields once to the event loop, as a real store does. Hooks let
 * a test act between the steps of a move.
 */
export class MoveStorage implements Storage {
  readonly name = 'move-test';
  readonly disk: Disk;
  readonly hints: HintStore;
  /** Runs before every putBatch writes (may be async). */
  beforePutBatch: ((records: readonly StoredRecord[]) => void | Promise<void>) | undefined;
  /** Runs on every purge, before it decides. */
  onPurge: ((key: string, upTo: Version | undefined) => void) | undefined;
  readonly calls = { scan: 0, putBatch: 0, purge: 0, purgeKept: 0 };
  #sorted: string[] = [];
  /** `disk.records.added` when `#sorted` was built. */
  #sortedAt = -1;

  constructor(disk: Disk = newDisk()) {
    this.disk = disk;
    this.hints = new MapHints(disk.hints);
  }

  async get(key: string): Promise<StoredRecord | undefined> {
    await turn();
    return this.disk.records.get(key);
  }

  async put(record: StoredRecord): Promise<boolean> {
    await turn();
    return this.#write(record);
  }

  async putBatch(records: readonly StoredRecord[]): Promise<boolean[]> {
    this.calls.putBatch++;
    await this.beforePutBatch?.(records);
    await turn();
    return records.map((r) => this.#write(r));
  }

  async count(): Promise<number> {
    let n = 0;
    for (const r of this.disk.records.values()) if (!r.tombstone) n++;
    return n;
  }

  async sizeBytes(): Promise<number> {
    return 0;
  }

  async scan(options: ScanOptions): Promise<ScanPage> {
    this.calls.scan++;
    await turn();
    if (this.#sortedAt !== this.disk.records.added) {
      this.#sorted = [...this.disk.records.keys()].sort(compareKeys);
      this.#sortedAt = this.disk.records.added;
    }
    const keys = this.#sorted;
    let i = 0;
    if (options.after !== undefined) i = firstAbove(keys, options.after);
    if (options.start !== undefined) i = Math.max(i, firstAtLeast(keys, options.start));
    const records: StoredRecord[] = [];
    for (; i < keys.length; i++) {
      const key = keys[i]!;
      if (options.end !== undefined && key >= options.end) break;
      const r = this.disk.records.get(key);
      if (r === undefined) continue;
      if (r.tombstone && options.tombstones === false) continue;
      if (options.filter !== undefined && !options.filter(key)) continue;
      records.push(r);
      if (records.length === options.limit) return { records, next: i + 1 < keys.length ? key : undefined };
    }
    return { records, next: undefined };
  }

  async collectTombstones(): Promise<number> {
    return 0;
  }

  async purge(key: string, upTo?: Version): Promise<boolean> {
    this.calls.purge++;
    this.onPurge?.(key, upTo);
    await turn();
    const r = this.disk.records.get(key);
    if (r === undefined) return false;
    if (upTo !== undefined && !coveredBy(r.version, upTo)) {
      this.calls.purgeKept++;
      return false;
    }
    this.disk.records.delete(key);
    return true;
  }

  #write(record: StoredRecord): boolean {
    const current = this.disk.records.get(record.key);
    if (current !== undefined && compareRecords(current, record) >= 0) return false;
    this.disk.records.set(record.key, record);
    return true;
  }
}

function firstAbove(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function firstAtLeast(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

class MapHints implements HintStore {
  readonly #byTarget: Map<string, Map<string, StoredRecord>>;

  constructor(byTarget: Map<string, Map<string, StoredRecord>>) {
    this.#byTarget = byTarget;
  }

  async add(hint: Hint): Promise<void> {
    await turn();
    let hints = this.#byTarget.get(hint.target);
    if (hints === undefined) this.#byTarget.set(hint.target, (hints = new Map()));
    const current = hints.get(hint.record.key);
    if (current === undefined || compareRecords(hint.record, current) > 0) {
      hints.set(hint.record.key, hint.record);
    }
  }

  async targets(): Promise<string[]> {
    return [...this.#byTarget.entries()]
      .filter(([, hints]) => hints.size > 0)
      .map(([target]) => target)
      .sort(compareKeys);
  }

  async list(target: string, options: { readonly after?: string; readonly limit: number }): Promise<HintPage> {
    await turn();
    const keys = [...(this.#byTarget.get(target)?.keys() ?? [])].sort(compareKeys);
    const from = options.after === undefined ? 0 : firstAbove(keys, options.after);
    const page = keys.slice(from, from + options.limit);
    const hints = page.map((key) => ({ target, record: this.#byTarget.get(target)!.get(key)! }));
    return { hints, next: from + options.limit < keys.length ? page[page.length - 1] : undefined };
  }

  async remove(target: string, key: string, upTo: Version): Promise<boolean> {
    const hints = this.#byTarget.get(target);
    const current = hints?.get(key);
    if (current === undefined || !coveredBy(current.version, upTo)) return false;
    hints!.delete(key);
    return true;
  }

  async count(): Promise<number> {
    let n = 0;
    for (const hints of this.#byTarget.values()) n += hints.size;
    return n;
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A membership whose view the test sets; listeners hear every change, as the contract says. */
export class TestMembership implements Membership {
  readonly name = 'test';
  readonly bounds = { detectionMs: 1000, toleratedLoss: 0, periodMs: 100, healMs: 1000 };
  readonly self: Member;
  viewParameters: ViewParameters = {};
  #members: Member[];
  readonly #listeners = new Set<MembershipListener>();

  constructor(selfId: string, members: readonly Member[]) {
    this.self = member(selfId);
    this.#members = sortById(members);
  }

  members(): readonly Member[] {
    return this.#members;
  }

  on(listener: MembershipListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Installs a new view and tells the listeners about every member whose state changed. */
  set(members: readonly Member[]): void {
    const before = new Map(this.#members.map((m) => [m.id, m.state]));
    this.#members = sortById(members);
    const events: MembershipEvent[] = [];
    for (const m of this.#members)
      if (before.get(m.id) !== m.state) events.push({ member: m, previous: before.get(m.id) });
    for (const [id, state] of before) {
      if (!this.#members.some((m) => m.id === id)) {
        events.push({ member: { ...member(id), state: 'left' }, previous: state });
      }
    }
    for (const event of events) for (const listener of this.#listeners) listener(event);
  }

  /** Replaces the view's parameters and, as an administered membership does, tells the listeners about every member. */
  setParameters(parameters: ViewParameters): void {
    this.viewParameters = { ...parameters };
    this.#members = [...this.#members];
    for (const m of this.#members) for (const listener of this.#listeners) listener({ member: m, previous: m.state });
  }

  async join(): Promise<void> {}
  async leave(): Promise<void> {}
}

const sortById = (members: readonly Member[]): Member[] => [...members].sort((a, b) => compareKeys(a.id, b.id));

/** Buckets of the test placement. */
export const BUCKETS = 16;

function fnv(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** MurmurHash3's 32-bit finalizer: FNV of short strings differing in the last character is poorly spread. */
function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export function bucketOfKey(key: string): number {
  return mix(fnv(key)) % BUCKETS;
}

/**
 * A placement the test controls: keys fall in 16 buckets; a bucket's
 * owners are the `replicas` present members ranked first by a hash of
 * (bucket, id) (rendezvous hashing), so adding a member moves only the
 * buckets it wins. It follows its node's membership, one epoch per change.
 * `refuse` makes `admit` refuse keys on purpose. A view parameter
 * `replicas` replaces the replica count.
 */
export class BucketPlacement implements Placement {
  readonly name = 'buckets';
  readonly replicas: number;
  epoch = 1;
  refuse: ((key: string) => boolean) | undefined;
  /** Owners of a bucket in the current view, set by hand (as a routed placement decides alone). */
  readonly overrides = new Map<number, string[]>();
  readonly #selfId: string;
  readonly #membership: Membership;
  #view: readonly Member[];
  readonly #ownership = new Set<OwnershipListener>();

  constructor(selfId: string, membership: Membership, replicas: number) {
    this.#selfId = selfId;
    this.#membership = membership;
    this.replicas = replicas;
    this.#view = membership.members();
    membership.on(() => {
      this.#view = membership.members();
      this.epoch++;
    });
  }

  owners(
    bucket: number,
    view: readonly Member[] = this.#view,
    parameters: ViewParameters = this.#membership.viewParameters ?? {},
  ): Member[] {
    const present = view.filter((m) => m.state === 'alive' || m.state === 'suspect');
    const score = (id: string): number => mix(fnv(`${bucket}/${id}`));
    return present
      .map((m) => [score(m.id), m] as const)
      .sort((a, b) => b[0] - a[0])
      .slice(0, parameters['replicas'] ?? this.replicas)
      .map(([, m]) => m);
  }

  checkViewParameters(parameters: ViewParameters): void {
    if (Object.keys(parameters).some((k) => k !== 'replicas')) throw new Error('only replicas');
  }

  ownersOf(key: string): Member[] {
    const bucket = bucketOfKey(key);
    const override = this.overrides.get(bucket);
    if (override !== undefined) return override.map((id) => this.#view.find((m) => m.id === id) ?? member(id));
    return this.owners(bucket);
  }

  onOwnershipChange(listener: OwnershipListener): () => void {
    this.#ownership.add(listener);
    return () => this.#ownership.delete(listener);
  }

  /** Announces that `bucket` moved from `from` to `to`, as a routed placement would. */
  announce(bucket: number, from: string[], to: string[]): void {
    this.overrides.set(bucket, to);
    this.epoch++;
    const move: Move = { range: `bucket ${bucket}`, contains: (key) => bucketOfKey(key) === bucket, from, to };
    for (const listener of this.#ownership) listener({ epoch: this.epoch, moves: [move] });
  }

  async locate(key: string): Promise<ReplicaSet> {
    const replicas = this.ownersOf(key);
    return {
      replicas,
      fallbacks: [],
      writeQuorum: 1,
      conditionalWriteQuorum: 1,
      readQuorum: 1,
      epoch: this.epoch,
      hops: 0,
    };
  }

  admit(key: string): Admission {
    if (this.refuse?.(key)) return { kind: 'not-owner', epoch: this.epoch };
    return this.ownersOf(key).some((m) => m.id === this.#selfId)
      ? { kind: 'own' }
      : { kind: 'not-owner', epoch: this.epoch };
  }

  plan(before: readonly Member[], after: readonly Member[], parameters?: PlanParameters): Move[] {
    const moves: Move[] = [];
    for (let b = 0; b < BUCKETS; b++) {
      const from = this.owners(b, before, parameters?.before).map((m) => m.id);
      const to = this.owners(b, after, parameters?.after).map((m) => m.id);
      if (from.join() === to.join()) continue;
      moves.push({ range: `bucket ${b}`, contains: (key) => bucketOfKey(key) === b, from, to });
    }
    return moves;
  }

  describe(): Record<string, unknown> {
    return { strategy: 'buckets' };
  }
}

/** A binary codec over the registry's protobuf schemas, for simulated nodes. */
export function binaryCodecs(messages: MessageRegistry): CodecSet {
  const envelope = messages.get(CORE_MESSAGES.envelope);
  const codec: Codec = {
    name: 'proto-test',
    tag: 9,
    contentType: 'application/x-protobuf',
    encode: (type, payload) => envelope.toBinary({ type, payload: messages.get(type).toBinary(payload) }),
    decode: (bytes) => {
      const { type, payload } = envelope.fromBinary(bytes) as { type: string; payload: Uint8Array };
      return { type, payload: messages.get(type).fromBinary(payload) };
    },
  };
  return { primary: codec, byTag: (tag) => (tag === codec.tag ? codec : undefined), all: [codec] };
}

export interface MovementNode {
  readonly id: string;
  movement: Movement;
  storage: MoveStorage;
  placement: BucketPlacement;
  readonly membership: TestMembership;
  readonly disk: Disk;
  readonly dataDir: string;
  rpc: RpcService;
  transport: SimTransport;
  running: boolean;
}

export interface ClusterOptions {
  /** Ids of the nodes built (and started). */
  readonly ids: readonly string[];
  /** Members every membership lists at first; default: the nodes, all alive. */
  readonly members?: readonly Member[];
  readonly replicas?: number;
  readonly kv?: Record<string, unknown>;
  /** The config's `limits` section of every node (its `maxValueBytes` caps a batch's bytes). */
  readonly limits?: Record<string, unknown>;
  readonly seed?: number;
  /** Logger of every node (default silent), e.g. `consoleLogger` while debugging. */
  readonly logger?: Logger;
}

/** Logs every line to the console, with the node's bindings. */
export function consoleLogger(bindings: Record<string, unknown> = {}): Logger {
  const line =
    (level: string) =>
    (fields: Record<string, unknown>, message?: string): void => {
      const { err, ...rest } = fields;
      console.log(level, message, JSON.stringify({ ...bindings, ...rest }), err instanceof Error ? err.message : '');
    };
  return {
    debug: line('debug'),
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
    child: (more) => consoleLogger({ ...bindings, ...more }),
  };
}

/** Nodes of real RpcServices over one SimNetwork, each with a Movement over a MoveStorage. */
export async function movementCluster(t: ExecutionContext, options: ClusterOptions) {
  const clock = new VirtualClock();
  const network = new SimNetwork({
    clock,
    random: new SeededRandom(options.seed ?? 11),
    defaults: { latencyMs: { min: 0, max: 1 } },
  });
  const root = mkdtempSync(join(tmpdir(), 'kvmesh-movement-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const nodes = new Map<string, MovementNode>();
  const initial = options.members ?? options.ids.map((id) => member(id));
  const kv = { moveDebounceMs: 10, antiEntropyIntervalMs: 0, ...options.kv };

  const build = (id: string, disk: Disk, membership: TestMembership, dataDir: string, generation: number) => {
    const messages = createMessageRegistry();
    const transport = network.endpoint(id);
    const rpc = new RpcService({
      transport,
      codecs: binaryCodecs(messages),
      messages,
      clock,
      logger: silentLogger,
      timeoutMs: 1000,
    });
    const storage = new MoveStorage(disk);
    const placement = new BucketPlacement(id, membership, options.replicas ?? 1);
    const node: NodeInfo = { id, address: `${id}:7000`, role: 'storage', dataDir, configDir: dataDir };
    const movement = new Movement({
      node,
      clock,
      random: new SeededRandom((options.seed ?? 11) * 100 + generation),
      storage,
      placement,
      membership,
      rpc,
      messages,
      logger: options.logger?.child({ node: id }) ?? silentLogger,
      config: options.limits === undefined ? { kv } : { kv, limits: options.limits },
    });
    return { movement, storage, placement, rpc, transport };
  };

  const start = async (n: MovementNode): Promise<void> => {
    await n.transport.start();
    n.movement.start();
    n.running = true;
  };

  const stopNode = async (n: MovementNode): Promise<void> => {
    if (!n.running) return;
    n.running = false;
    await n.movement.stop();
    n.rpc.stop();
    await n.transport.stop();
  };

  let generation = 0;
  for (const id of options.ids) {
    const disk = newDisk();
    // A node outside the first view has not joined yet: it knows only itself.
    const membership = new TestMembership(id, initial.some((m) => m.id === id) ? initial : [member(id)]);
    const dataDir = join(root, id);
    const parts = build(id, disk, membership, dataDir, generation++);
    nodes.set(id, { id, ...parts, membership, disk, dataDir, running: false });
  }
  for (const n of nodes.values()) await start(n);
  t.teardown(async () => {
    for (const n of nodes.values()) await stopNode(n);
  });
  // Let every node plan its first view while its storage is still empty.
  await clock.advanceAsync(100);

  const byId = (id: string): MovementNode => nodes.get(id)!;
  return {
    clock,
    network,
    nodes,
    byId,
    /** Sets the view of every running node's membership (or of `only`). */
    setView(members: readonly Member[], only?: readonly string[]): void {
      for (const n of nodes.values()) if (only === undefined || only.includes(n.id)) n.membership.set(members);
    },
    /** Stops a node as a crash would leave it: its disk and data directory stay. */
    crash: (id: string) => stopNode(byId(id)),
    /** Builds the node again over the same disk and data directory, and starts it. */
    async restart(id: string): Promise<MovementNode> {
      const n = byId(id);
      await stopNode(n);
      const parts = build(id, n.disk, n.membership, n.dataDir, generation++);
      Object.assign(n, parts);
      await start(n);
      return n;
    },
  };
}

/** How many member views a node's plan file holds (0 when it has none). */
export function savedViews(n: MovementNode): number {
  const path = planFilePath(n.dataDir, n.id);
  if (!existsSync(path)) return 0;
  return (JSON.parse(readFileSync(path, 'utf8')) as { views: unknown[] }).views.length;
}

/** Drives the virtual clock until `condition` holds. */
export async function until(clock: VirtualClock, condition: () => boolean, limitMs = 120_000): Promise<void> {
  for (let elapsed = 0; !condition() && elapsed < limitMs; elapsed++) await clock.advanceAsync(1);
  if (!condition()) throw new Error(`condition still false after ${limitMs} ms of virtual time`);
}

/** Drives the virtual clock until `promise` settles, then returns it. */
export async function settle<T>(clock: VirtualClock, promise: Promise<T>, limitMs = 120_000): Promise<T> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await until(clock, () => done, limitMs);
  return promise;
}

/** Writes `count` records `k00000`.. into `storage`'s disk directly, each with a value of `valueBytes`. */
export function fill(disk: Disk, count: number, wallMs: number, valueBytes = 8, prefix = 'k'): StoredRecord[] {
  const out: StoredRecord[] = [];
  const value = new Uint8Array(valueBytes).fill(0x61);
  for (let i = 0; i < count; i++) {
    const r = record(`${prefix}${String(i).padStart(6, '0')}`, value, wallMs);
    disk.records.set(r.key, r);
    out.push(r);
  }
  return out;
}
