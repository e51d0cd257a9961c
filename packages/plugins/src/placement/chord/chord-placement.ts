import { chordDrawing } from './drawing.js';
import { setMaxListeners } from 'node:events';
import {
  KvError,
  isKvError,
  type Admission,
  type Clock,
  type Intent,
  type LocateOptions,
  type Logger,
  type Member,
  type MessageRegistry,
  type Move,
  type NodeInfo,
  type OwnershipListener,
  type Placement,
  type Random,
  type ReplicaSet,
  type Rpc,
  type Timer,
} from '@kvmesh/core';
import { resolveQuorum } from '../support/quorum.js';
import { lookup, type LookupResult } from './lookup.js';
import {
  CHORD_MESSAGES,
  CHORD_PROTO,
  type ClaimPayload,
  type FindSuccessorPayload,
  type FindSuccessorReplyPayload,
  type GetNeighboursPayload,
  type JoinPayload,
  type LeavePayload,
  type NeighboursPayload,
  type StabilizePayload,
} from './messages.js';
import { metricNamed, type Metric } from './metric.js';
import { NodeDirectory, nodeRef, type NodeRef, type WireNode } from './node-ref.js';
import { checkChordOptions, type ChordOptions } from './options.js';
import { move, ownershipMoves, type Arc, type ArcMove } from './ownership.js';
import { inClosedOpen, RoutingTable, type Answer } from './routing-table.js';
import { inHalfOpen, inOpen, nextIdent, type Ident } from './ring.js';
import { RingMemory } from './ring-memory.js';
import { RouteCache } from './route-cache.js';
import { RingWindow } from './window.js';

export interface ChordComponents {
  readonly node: NodeInfo;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly messages: MessageRegistry;
  readonly rpc: Rpc;
  /** The node's config: its `join` list is where the node joins through when `seeds` is empty. */
  readonly config: Readonly<Record<string, unknown>>;
}

/** Routed placements share no view: one constant epoch, ownership decided in `admit` alone. */
export const CHORD_EPOCH = 1;
/** A failed node's mentions in other nodes' lists are ignored for this many periods. */
const DEAD_MEMORY_PERIODS = 10;
/** Without a request from the predecessor for this many periods, check it (Chord's check_predecessor). */
const PREDECESSOR_SILENCE_PERIODS = 2;
/**
 * A cached route is a hint: nodes joining inside its arc make it stale, so it
 * lives this many periods (and goes at once when a replica refuses).
 */
const ROUTE_CACHE_TTL_PERIODS = 3;
/** Every this many periods the node directory forgets the nodes lookups named in passing. */
const DIRECTORY_PRUNE_PERIODS = 10;
/** Pieces (owners) one orphaned arc is handed to before the rest waits for the next period. */
const MAX_HANDOVER_PIECES = 32;
/** Longest wait between two join attempts. */
const JOIN_RETRY_MAX_MS = 30_000;
/**
 * Nodes this node heard from or listed lately, remembered past their
 * failure (RingMemory): at least this many, and twice the successor list.
 */
const MIN_CONTACTS = 16;
/**
 * A node remembered counts as a member of the ring for this many periods
 * after it was last heard from or listed: a ring known whole that holds at
 * most half of the members is one side of a partition and names no replicas.
 * Past it a node that failed for good no longer holds the ring back.
 */
const MEMBER_MEMORY_PERIODS = 30;
/**
 * Every this many periods a node whose ring looks whole asks a node outside
 * it (one it remembers, or a seed) for its own successor: two sides of a
 * partition each re-form a ring, and stabilize alone never joins two rings.
 */
const MERGE_PROBE_PERIODS = 3;
/** Addresses a joining node keeps of the nodes that asked to join it meanwhile. */
const MAX_JOIN_HINTS = 8;

type State = 'created' | 'joining' | 'joined' | 'refused' | 'stopped';

/**
 * Chord (Stoica, Morris, Karger, Kaashoek, Balakrishnan, SIGCOMM 2001), as
 * dyschord runs it, made a kvmesh placement.
 *
 * Keys and nodes sit on an identifier circle (`metric`); a key lives at its
 * successor and is backed up on the next `backups` nodes. Each node keeps a
 * predecessor list, a successor list of length `successors` and a finger
 * table; every `heartbeatMs` it stabilizes with its successor (which doubles
 * as notify), checks its predecessor when it has not heard from it, and
 * refreshes one finger. `locate` runs an iterative lookup through the
 * fingers (each step a FindSuccessor request, counted in `hops`), with a
 * route cache. `admit` owns a key that lies in the span this node holds: its
 * own arc and the arcs of the predecessors it backs up. When its neighbours
 * change, the node announces the arcs whose replicas changed
 * (`onOwnershipChange`) and core's mover copies them.
 */
export class ChordPlacement implements Placement {
  readonly name = 'chord';
  readonly epoch = CHORD_EPOCH;
  readonly #c: ChordComponents;
  readonly #o: ChordOptions;
  readonly #metric: Metric;
  readonly #listeners = new Set<OwnershipListener>();
  readonly #random: Random;
  #state: State = 'created';
  #error: KvError | undefined;
  #self!: NodeRef;
  #table!: RoutingTable;
  #directory!: NodeDirectory;
  #cache!: RouteCache;
  #seeds: string[] = [];
  /** Addresses of nodes that asked to join this one while it was joining (#hintJoin). */
  readonly #joinHints: string[] = [];
  #announced: RingWindow | undefined;
  /** What is announced while the node is lost or on the smaller side of a partition: it holds nothing. */
  #isolated: RingWindow | undefined;
  /** The window announced before the node was cut off, to hand over what it no longer holds once back. */
  #heldBeforeIsolation: RingWindow | undefined;
  #departed: string[] = [];
  #timers: Timer[] = [];
  #ticking = false;
  #ticks = 0;
  /** Arcs this node held and must hand to owners it has to look up first. */
  #orphans: Arc[] = [];
  #nextFinger = 0;
  #lastHeardFromPredecessor = 0;
  #joinDelayMs = 0;
  #memory!: RingMemory;
  #nextProbe = 0;
  /** A node found failed but listed by a neighbour is being asked whether it is back (#recheck). */
  #rechecking = false;
  /** Since when (ms) every successor is gone; undefined while the ring is known. */
  #lostSince: number | undefined;
  /** What the successor answered last, so an unchanged answer can leave its lists out. */
  #lastNeighbours: { from: NodeRef; digest: number; neighbours: Neighbours } | undefined;
  readonly #lifetime = new AbortController();
  readonly #stats = { lookups: 0, hops: 0, cacheHits: 0, failedLookups: 0 };

  constructor(components: ChordComponents, options: ChordOptions) {
    checkChordOptions(options);
    this.#c = components;
    this.#o = options;
    this.#metric = metricNamed(options.metric);
    this.#random = components.random.fork();
    // Every request in flight listens to the lifetime signal: lookups, claims and maintenance add up past 10.
    setMaxListeners(0, this.#lifetime.signal);
    // Fails early on an identifier the metric cannot use.
    this.#metric.nodeIdent(components.node.id, options.identifier);
    components.messages.define(CHORD_PROTO);
    const { rpc } = components;
    rpc.handle(CHORD_MESSAGES.findSuccessor, (p: FindSuccessorPayload) => this.#onFindSuccessor(p));
    rpc.handle(CHORD_MESSAGES.join, (p: JoinPayload) => this.#onJoin(p));
    rpc.handle(CHORD_MESSAGES.stabilize, (p: StabilizePayload) => this.#onStabilize(p));
    rpc.handle(CHORD_MESSAGES.getNeighbours, (p: GetNeighboursPayload) => this.#onGetNeighbours(p));
    rpc.handle(CHORD_MESSAGES.leave, (p: LeavePayload) => this.#onLeave(p));
    rpc.handle(CHORD_MESSAGES.claim, (p: ClaimPayload) => this.#onClaim(p));
  }

  /** This node as a member of the ring. */
  get self(): Member {
    return this.#self.member;
  }

  /** Whether this node is part of a ring (joined one, or started its own). */
  get joined(): boolean {
    return this.#state === 'joined';
  }

  /** The routing state, for tests and tools. Undefined before start. */
  get table(): RoutingTable | undefined {
    return this.#table;
  }

  // The transport learns its final address in its own start(), which runs before this one.
  async start(): Promise<void> {
    if (this.#state !== 'created') return;
    const { node, rpc } = this.#c;
    const ident = this.#metric.nodeIdent(node.id, this.#o.identifier);
    this.#self = nodeRef({ id: node.id, address: rpc.address, ident, api: `http://${node.address}`, role: node.role });
    this.#table = new RoutingTable({
      self: this.#self,
      bits: this.#metric.bits,
      successors: this.#o.successors,
      backups: this.#o.backups,
    });
    this.#directory = new NodeDirectory(this.#self);
    this.#memory = new RingMemory(
      Math.max(MIN_CONTACTS, 2 * this.#o.successors),
      MEMBER_MEMORY_PERIODS * this.#o.heartbeatMs,
    );
    this.#cache = new RouteCache(this.#o.routeCacheSize, ROUTE_CACHE_TTL_PERIODS * this.#o.heartbeatMs, this.#c.clock);
    const configured = this.#o.seeds.length > 0 ? this.#o.seeds : joinList(this.#c.config);
    const seeds = configured.map((s) => peerUri(rpc.address, s));
    this.#seeds = seeds.filter((s) => s !== rpc.address);
    this.#state = 'joining';
    if (this.#seeds.length === 0) {
      this.#becomeAlone('no seed but itself: starting a new ring');
    } else {
      try {
        await this.#join();
      } catch (err) {
        if (isKvError(err, 'KVMESH_ERR_PLACEMENT_INCOMPATIBLE')) {
          this.#refuse(err);
          throw err;
        }
        if (seeds[0] === rpc.address) {
          this.#becomeAlone('listed first among the seeds and no other seed is in a ring: starting a new ring');
        } else {
          this.#scheduleJoin(err);
        }
      }
    }
    const period = this.#o.heartbeatMs;
    // A random phase, so that nodes started together do not all stabilize at the same instant.
    this.#timers.push(
      this.#c.clock.setTimeout(() => {
        if (this.#state === 'stopped') return;
        this.#timers.push(this.#c.clock.setInterval(() => void this.#tick(), period));
        void this.#tick();
      }, this.#random.int(period)),
    );
  }

  /**
   * Leaves: tells the predecessor and the successor (a graceful leave closes
   * the ring at once; they promote the backups and restore their count),
   * then stops the timers. A node whose transport is already down (a crash
   * in the simulator) sends nothing.
   */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    const wasJoined = this.#state === 'joined';
    this.#state = 'stopped';
    for (const timer of this.#timers.splice(0)) timer.cancel();
    this.#lifetime.abort(new KvError('KVMESH_ERR_RPC_ABORTED', 'the chord placement is stopping'));
    if (!wasJoined) return;
    const table = this.#table;
    const payload: LeavePayload = {
      metric: this.#metric.name,
      node: this.#wire(this.#self),
      predecessors: table.predecessors.map((n) => this.#wire(n)),
      successors: table.successors.map((n) => this.#wire(n)),
    };
    const targets = new Map<string, NodeRef>();
    for (const n of [table.successor, table.predecessor]) if (n !== undefined) targets.set(n.id, n);
    await Promise.allSettled(
      [...targets.values()].map((n) =>
        this.#c.rpc.request(n.address, CHORD_MESSAGES.leave, payload, { timeoutMs: this.#o.requestTimeoutMs }),
      ),
    );
  }

  async locate(key: string, options: LocateOptions): Promise<ReplicaSet> {
    this.#checkJoined();
    this.#checkConnected();
    const target = this.#metric.keyIdent(key);
    if (options.retry === true) this.#cache.forget(target);
    const local = this.#table.answer(target);
    if (local.done) return this.#replicaSet(local.replicas, 0);
    const cached = this.#cache.find(target);
    if (cached !== undefined) {
      this.#stats.cacheHits++;
      return cached;
    }
    const found = await this.#lookup(target, local.closer, options.deadlineMs, options.signal);
    // A later hit of the cache costs no hop.
    this.#cache.remember(found.rangeStart, found.replicas[0]!.ident, this.#replicaSet(found.replicas, 0));
    return this.#replicaSet(found.replicas, found.hops);
  }

  admit(key: string, _intent: Intent, _epoch: number): Admission {
    // Lost, or on the smaller side of a partition: what it held may be served by others meanwhile.
    if (this.#state !== 'joined' || this.#table.lost || this.#minority() !== undefined) {
      return { kind: 'not-owner', epoch: CHORD_EPOCH };
    }
    let target: Ident;
    try {
      target = this.#metric.keyIdent(key);
    } catch {
      return { kind: 'not-owner', epoch: CHORD_EPOCH };
    }
    const window = this.#table.window();
    if (window.holds(target)) return OWN;
    const owners = window.replicasAt(target);
    return owners === undefined
      ? { kind: 'not-owner', epoch: CHORD_EPOCH }
      : { kind: 'not-owner', epoch: CHORD_EPOCH, owners: owners.map((n) => n.member) };
  }

  plan(): readonly Move[] {
    return [];
  }

  onOwnershipChange(listener: OwnershipListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  describe(): Record<string, unknown> {
    const replicas = this.#o.backups + 1;
    const base = {
      strategy: 'chord',
      epoch: CHORD_EPOCH,
      metric: this.#metric.name,
      state: this.#state === 'joined' && this.#table.lost ? 'rejoining' : this.#state,
      ...(this.#error ? { error: this.#error.message } : {}),
      replicas,
      writeQuorum: resolveQuorum(this.#o.writeQuorum, replicas),
      readQuorum: resolveQuorum(this.#o.readQuorum, replicas),
      heartbeatMs: this.#o.heartbeatMs,
    };
    if (this.#table === undefined) return base;
    const table = this.#table;
    const window = table.window();
    const short = (n: NodeRef): Record<string, string> => ({ id: n.id, ident: n.ident });
    const owned = window.owned();
    return {
      ...base,
      self: short(this.#self),
      predecessors: table.predecessors.map(short),
      successors: table.successors.map(short),
      fingers: table.distinctFingers().map(short),
      drawing: chordDrawing(this.#self, table, table.distinctFingers(), this.#metric.bits),
      ringComplete: window.complete,
      // Owned and backed-up arcs are kept apart: a failed predecessor's arc is promoted, not merged.
      owned: owned === undefined ? null : { start: owned.start, end: owned.end },
      backups: window.backupArcs().map((a) => ({ start: a.start, end: a.end, owner: a.owner.id })),
      routeCache: { entries: this.#cache.size, max: this.#o.routeCacheSize },
      lookups: {
        count: this.#stats.lookups,
        failed: this.#stats.failedLookups,
        meanHops: this.#stats.lookups > 0 ? round(this.#stats.hops / this.#stats.lookups) : 0,
        cacheHits: this.#stats.cacheHits,
      },
    };
  }

  // ---- joining ----

  /** A node that asked this one to join it while this one was joining itself: another place to join through. */
  #hintJoin(address: string): void {
    if (address === this.#self.address || this.#seeds.includes(address) || this.#joinHints.includes(address)) return;
    this.#joinHints.push(address);
    if (this.#joinHints.length > MAX_JOIN_HINTS) this.#joinHints.shift();
  }

  /** One pass over the seeds and hints: find this node's successor through the first that answers, and settle in. */
  async #join(): Promise<void> {
    let last: unknown;
    for (const seed of [...this.#seeds, ...this.#joinHints]) {
      if (this.#state !== 'joining') return;
      try {
        await this.#joinThrough(seed);
        return;
      } catch (err) {
        if (isKvError(err, 'KVMESH_ERR_PLACEMENT_INCOMPATIBLE')) {
          throw new KvError(
            'KVMESH_ERR_PLACEMENT_INCOMPATIBLE',
            `cannot join the ring through ${seed}: ${err.message}`,
            {
              cause: err,
            },
          );
        }
        last = err;
      }
    }
    throw last ?? new KvError('KVMESH_ERR_PLACEMENT_EMPTY', 'no seed to join through');
  }

  /**
   * Finds this node's successor through `seed` and settles in. `rejoin`: the
   * node is in the ring but lost every successor (it gives up as soon as
   * another node's stabilize gave it one).
   */
  async #joinThrough(seed: string, rejoin = false): Promise<void> {
    const wanted = (): boolean => (rejoin ? this.#state === 'joined' && this.#table.lost : this.#state === 'joining');
    const { rpc, clock } = this.#c;
    const reply = await rpc.request<FindSuccessorReplyPayload>(
      seed,
      CHORD_MESSAGES.join,
      { metric: this.#metric.name, node: this.#wire(this.#self) } satisfies JoinPayload,
      { timeoutMs: this.#o.requestTimeoutMs, signal: this.#lifetime.signal },
    );
    let found: LookupResult;
    const first = this.#answerOf(reply.payload);
    if (first.done) {
      found = { replicas: first.replicas, rangeStart: first.rangeStart, hops: 1 };
    } else {
      found = await this.#lookup(this.#self.ident, first.closer);
    }
    const successor = found.replicas.find((n) => n.id !== this.#self.id);
    if (successor === undefined) throw new KvError('KVMESH_ERR_PLACEMENT_EMPTY', `${seed} named no successor`);
    if (successor.ident === this.#self.ident) {
      throw new KvError(
        'KVMESH_ERR_PLACEMENT_INCOMPATIBLE',
        `node ${successor.id} already sits at position ${successor.ident}; give node ${this.#self.id} another identifier`,
      );
    }
    if (!wanted()) return;
    const neighbours = await this.#stabilizeWith(successor, true);
    if (!wanted()) return;
    const now = clock.now();
    const table = this.#table;
    const predecessors = neighbours.predecessors.filter((n) => n.id !== this.#self.id);
    const accepted = neighbours.predecessors[0]?.id === this.#self.id;
    const between = neighbours.predecessors[0];
    if (!accepted && between !== undefined && inOpen(between.ident, this.#self.ident, successor.ident)) {
      // Another node joined between this one and the successor meanwhile: it is the successor.
      table.setSuccessors(between, [successor, ...neighbours.successors], now);
    } else {
      table.setSuccessors(successor, neighbours.successors, now);
      if (accepted) table.setPredecessors(predecessors, now);
    }
    table.seedFingers([successor, ...neighbours.successors, ...predecessors, ...neighbours.fingers], now);
    this.#state = 'joined';
    this.#lastHeardFromPredecessor = now;
    this.#c.logger.info(
      { ident: this.#self.ident, successor: successor.id, hops: found.hops },
      rejoin ? 'found the chord ring again' : 'joined the chord ring',
    );
    this.#afterChange();
  }

  /**
   * Every successor failed (Stoica et al. 2001, section 5: the r successors
   * failed together, which for a node cut off from the others is no rare
   * event): the node joins again through the nodes it heard from lately,
   * nearest clockwise first, then its seeds. The failures it recorded while
   * cut off are forgotten, as it was most likely itself the one cut off.
   * Meanwhile it names no replicas (KVMESH_ERR_PLACEMENT_EMPTY, retriable)
   * and admits no key. It never falls back to a ring of its own: that would
   * acknowledge writes alone that the ring does not see.
   */
  async #rejoin(): Promise<void> {
    const now = this.#c.clock.now();
    if (this.#lostSince === undefined) {
      this.#lostSince = now;
      this.#c.logger.warn({ contacts: this.#memory.size }, 'every chord successor failed: rejoining the ring');
    }
    this.#table.forgiveAll();
    const contacts = this.#memory.nearest(this.#self.ident).map((n) => n.address);
    const addresses = [...new Set([...contacts, ...this.#seeds])].filter((a) => a !== this.#self.address);
    let last: unknown;
    for (const address of addresses) {
      if (this.#state !== 'joined' || !this.#table.lost) break;
      try {
        await this.#joinThrough(address, true);
      } catch (err) {
        last = err;
      }
    }
    if (this.#state === 'joined' && this.#table.lost) {
      this.#c.logger.debug(
        { err: last === undefined ? 'no node to ask' : errorText(last), lostForMs: now - this.#lostSince },
        'rejoining the chord ring failed; trying again next period',
      );
    }
  }

  #scheduleJoin(err: unknown): void {
    this.#joinDelayMs = Math.min(JOIN_RETRY_MAX_MS, Math.max(this.#o.heartbeatMs, this.#joinDelayMs * 2));
    const delay = Math.round(this.#joinDelayMs * (0.5 + this.#random.next()));
    this.#c.logger.warn({ err: errorText(err), seeds: this.#seeds, retryInMs: delay }, 'joining the ring failed');
    this.#timers.push(
      this.#c.clock.setTimeout(() => {
        if (this.#state !== 'joining') return;
        this.#join().then(
          () => undefined,
          (next: unknown) => {
            if (isKvError(next, 'KVMESH_ERR_PLACEMENT_INCOMPATIBLE')) this.#refuse(next);
            else if (this.#state === 'joining') this.#scheduleJoin(next);
          },
        );
      }, delay),
    );
  }

  #becomeAlone(why: string): void {
    this.#table.alone();
    this.#state = 'joined';
    this.#c.logger.info({ ident: this.#self.ident }, why);
    this.#afterChange();
  }

  #refuse(err: KvError): void {
    this.#state = 'refused';
    this.#error = err;
    this.#c.logger.error({ err: err.message }, 'refusing to join the ring');
  }

  /**
   * @throws KvError KVMESH_ERR_PLACEMENT_EMPTY (retriable) while the node
   *   rejoins the ring it lost, or while its ring is a minority of the nodes it saw lately.
   */
  #checkConnected(): void {
    if (this.#table.lost) {
      throw new KvError(
        'KVMESH_ERR_PLACEMENT_EMPTY',
        `node ${this.#c.node.id} lost every successor in its chord ring and is joining it again; retry shortly or through another node`,
      );
    }
    const minority = this.#minority();
    if (minority !== undefined) {
      throw new KvError(
        'KVMESH_ERR_PLACEMENT_EMPTY',
        `node ${this.#c.node.id} reaches only ${minority.ring} of the ${minority.seen} chord nodes it saw in the last ${this.#memory.memoryMs} ms (a partition?); it names no replicas until its ring holds a majority of them again; retry shortly or through another node`,
      );
    }
  }

  /**
   * The ring this node knows whole holds at most half of the nodes it saw
   * lately: it is one side of a partition, and the other side may be serving
   * the same keys. Undefined when it is not (or the ring is not known whole:
   * a ring larger than the successor list).
   */
  #minority(): { ring: number; seen: number } | undefined {
    const window = this.#table.window();
    if (!window.complete) return undefined;
    this.#rememberWindow();
    const seen = this.#memory.recent(this.#c.clock.now()) + 1;
    return window.nodes.length * 2 <= seen ? { ring: window.nodes.length, seen } : undefined;
  }

  /** The nodes of the window are members seen now. */
  #rememberWindow(): void {
    const now = this.#c.clock.now();
    for (const n of this.#table.window().nodes) if (n.id !== this.#self.id) this.#memory.saw(n, now);
  }

  /**
   * Asks one node outside this node's ring (remembered, or a seed), in turn,
   * for the successor of this node; one in the gap before this node's
   * successor becomes its successor, and stabilize joins the two rings from
   * there (each ring has a node whose gap holds a node of the other).
   * Only while the ring is known whole: a larger ring is not two small ones.
   */
  async #probeOtherRing(): Promise<void> {
    const table = this.#table;
    const window = table.window();
    if (!window.complete || table.lost) return;
    const inRing = new Set(window.nodes.map((n) => n.address));
    const outside = [
      ...new Set([...this.#memory.nearest(this.#self.ident).map((n) => n.address), ...this.#seeds]),
    ].filter((a) => !inRing.has(a) && a !== this.#self.address);
    if (outside.length === 0) return;
    const address = outside[this.#nextProbe++ % outside.length]!;
    let found: readonly NodeRef[];
    try {
      // A Join, not a FindSuccessor: it names this node, so a node still joining learns of a ring to join.
      const reply = await this.#c.rpc.request<FindSuccessorReplyPayload>(
        address,
        CHORD_MESSAGES.join,
        { metric: this.#metric.name, node: this.#wire(this.#self) } satisfies JoinPayload,
        { timeoutMs: this.#o.requestTimeoutMs, signal: this.#lifetime.signal },
      );
      const answer = this.#answerOf(reply.payload);
      found = answer.done ? answer.replicas : (await this.#lookup(this.#self.ident, answer.closer)).replicas;
    } catch {
      // Down, or not in a ring: nothing to join.
      return;
    }
    if (this.#state !== 'joined') return;
    const x = found.find((n) => n.id !== this.#self.id);
    if (x === undefined || table.window().nodes.some((n) => n.id === x.id)) return;
    const successor = table.successor;
    if (successor !== undefined && !inOpen(x.ident, this.#self.ident, successor.ident)) return;
    this.#c.logger.info({ node: x.id, through: address }, 'found a chord node outside this ring: joining the rings');
    table.heard(x.id);
    table.setSuccessors(x, table.successors, this.#c.clock.now());
    this.#afterChange();
  }

  #checkJoined(): void {
    if (this.#state === 'joined') return;
    if (this.#state === 'refused' && this.#error !== undefined) {
      throw new KvError(this.#error.code, this.#error.message);
    }
    throw new KvError(
      'KVMESH_ERR_PLACEMENT_EMPTY',
      this.#state === 'stopped'
        ? `node ${this.#c.node.id} has left its chord ring`
        : `node ${this.#c.node.id} has not joined its chord ring yet (seeds: ${this.#seeds.join(', ')}); retry shortly`,
    );
  }

  // ---- maintenance ----

  /** One period: stabilize, check the predecessor, refresh one finger. A slow period skips the next. */
  async #tick(): Promise<void> {
    if (this.#ticking || this.#state !== 'joined') return;
    this.#ticking = true;
    if (++this.#ticks % DIRECTORY_PRUNE_PERIODS === 0) {
      this.#directory.prune([...this.#table.known(), ...this.#memory.refs()]);
    }
    try {
      await this.#stabilize();
      await this.#checkPredecessor();
      await this.#fixFinger();
      await this.#handOver();
      this.#rememberWindow();
      // Nodes it saw once and no longer does are forgotten in time: a minority can end without a change of lists.
      this.#afterChange();
      if (this.#ticks % MERGE_PROBE_PERIODS === 0) await this.#probeOtherRing();
    } catch (err) {
      if (this.#state === 'joined') this.#c.logger.warn({ err: errorText(err) }, 'chord maintenance failed');
    } finally {
      this.#ticking = false;
    }
  }

  /**
   * Chord's stabilize: ask the successor for its predecessor (adopting it
   * when it sits between), take its successor list, and notify it. A
   * successor that does not answer is dropped and the next one asked.
   */
  async #stabilize(): Promise<void> {
    const table = this.#table;
    const now = (): number => this.#c.clock.now();
    if (table.successor === undefined) {
      // Alone, or every successor failed: the nearest node known, else the predecessor (a ring of two).
      const next = table.known()[0] ?? table.predecessor;
      if (next === undefined) {
        if (table.lost) await this.#rejoin();
        return;
      }
      table.setSuccessors(next, [], now());
    }
    for (let attempt = 0; attempt <= this.#o.successors + 1; attempt++) {
      const successor = table.successor;
      if (successor === undefined || this.#state !== 'joined') return;
      let neighbours: Neighbours;
      try {
        neighbours = await this.#stabilizeWith(successor, false);
      } catch (err) {
        if (this.#state !== 'joined') return;
        if (failed(err)) this.#markDead(successor);
        else return;
        continue;
      }
      const x = neighbours.predecessors[0];
      if (
        x !== undefined &&
        x.id !== this.#self.id &&
        !table.isDead(x.id, now()) &&
        inOpen(x.ident, this.#self.ident, successor.ident)
      ) {
        // A node joined between: it is the successor now, and hears from this node right away.
        table.setSuccessors(x, [successor, ...neighbours.successors], now());
        this.#afterChange();
        continue;
      }
      table.setSuccessors(successor, neighbours.successors, now());
      this.#afterChange();
      this.#recheck([...neighbours.successors, ...neighbours.predecessors]);
      return;
    }
  }

  /**
   * The successor (or predecessor) lists a node this node found failed: ask
   * that node directly, one at a time, not waiting. An answer ends the
   * failure recorded here, so the next stabilize takes it back into the
   * lists instead of ignoring it for the rest of DEAD_MEMORY_PERIODS: it
   * was only cut off for a moment (or this node was), and a ring whose
   * nodes leave out a live member names the wrong replicas.
   */
  #recheck(mentioned: readonly NodeRef[]): void {
    if (this.#rechecking || this.#state !== 'joined') return;
    const now = this.#c.clock.now();
    const node = mentioned.find((n) => n.id !== this.#self.id && this.#table.isDead(n.id, now));
    if (node === undefined) return;
    this.#rechecking = true;
    this.#neighboursFrom(node)
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        this.#rechecking = false;
      });
  }

  async #stabilizeWith(successor: NodeRef, wantFingers: boolean): Promise<Neighbours> {
    const last = this.#lastNeighbours;
    const same = !wantFingers && last !== undefined && last.from === successor;
    const known = same ? last.digest : 0;
    // The successor's last answer listed this node, then this node's predecessors: no need to send them again.
    const mine = this.#table.predecessors;
    const theirs = same ? last.neighbours.predecessors : [];
    const tailKnown =
      theirs[0]?.id === this.#self.id &&
      theirs.length - 1 === Math.min(mine.length, this.#o.backups) &&
      theirs.slice(1).every((n, i) => n.id === mine[i]?.id);
    const payload: StabilizePayload = {
      metric: this.#metric.name,
      from: this.#wire(this.#self),
      predecessors: tailKnown ? [] : mine.map((n) => this.#wire(n)),
      wantFingers,
      known,
      tailKnown,
    };
    const reply = await this.#c.rpc.request<NeighboursPayload>(successor.address, CHORD_MESSAGES.stabilize, payload, {
      timeoutMs: this.#o.requestTimeoutMs,
      signal: this.#lifetime.signal,
    });
    this.#heard(successor);
    if (reply.payload.unchanged && last !== undefined && known !== 0) return last.neighbours;
    const neighbours = this.#neighboursOf(reply.payload);
    this.#lastNeighbours = { from: successor, digest: reply.payload.digest, neighbours };
    return neighbours;
  }

  /** Chord's check_predecessor, skipped while the predecessor keeps stabilizing with this node. */
  async #checkPredecessor(): Promise<void> {
    const table = this.#table;
    const silence = PREDECESSOR_SILENCE_PERIODS * this.#o.heartbeatMs;
    for (let attempt = 0; attempt <= this.#o.backups + 1; attempt++) {
      const predecessor = table.predecessor;
      if (predecessor === undefined || this.#state !== 'joined') return;
      if (this.#c.clock.now() - this.#lastHeardFromPredecessor < silence) return;
      try {
        const neighbours = await this.#neighboursFrom(predecessor);
        if (this.#state !== 'joined') return;
        if (table.predecessor === predecessor) {
          table.setPredecessors([predecessor, ...neighbours.predecessors], this.#c.clock.now());
          this.#lastHeardFromPredecessor = this.#c.clock.now();
          this.#afterChange();
        }
        return;
      } catch (err) {
        if (this.#state !== 'joined' || !failed(err)) return;
        // The backups of its arc are here: the next predecessor is the provisional one until it notifies.
        this.#markDead(predecessor);
        this.#lastHeardFromPredecessor = 0;
      }
    }
  }

  /**
   * Refreshes the next finger that is not simply the successor. A finger
   * that answers is checked against its predecessor list (the finger is
   * the first node at or after its start, so it moves back past the
   * predecessors that are at or after the start too): one request instead
   * of a lookup. A finger that is unknown, failed or before its start is
   * looked up (Chord's fix_fingers).
   */
  async #fixFinger(): Promise<void> {
    const table = this.#table;
    if (table.successor === undefined) return;
    const i = table.nextFingerIndex(this.#nextFinger);
    const start = table.start(i);
    const current = table.finger(i);
    let value: NodeRef | undefined;
    if (
      current !== undefined &&
      current.id !== this.#self.id &&
      !inOpen(current.ident, this.#self.ident, start) &&
      !table.isDead(current.id, this.#c.clock.now())
    ) {
      try {
        const neighbours = await this.#neighboursFrom(current);
        value = current;
        for (const p of neighbours.predecessors) {
          if (p.id === this.#self.id || !inClosedOpen(p.ident, start, value.ident)) break;
          value = p;
        }
      } catch (err) {
        if (!failed(err) || this.#state !== 'joined') return;
        this.#markDead(current);
      }
    }
    if (value === undefined) {
      try {
        const local = table.answer(start);
        value = local.done ? local.replicas[0] : (await this.#lookup(start, local.closer)).replicas[0];
      } catch {
        this.#nextFinger = i + 1;
        return;
      }
    }
    if (this.#state !== 'joined') return;
    this.#nextFinger = table.setFinger(i, value);
  }

  /**
   * Hands the orphaned arcs to their owners: a lookup names the node after
   * the arc's start and its successors, which own the first piece of it;
   * the walk goes on from there until the arc's end. Each piece is
   * announced as a move from this node to its owners (core copies, then
   * purges here). A failed lookup leaves the rest for the next period.
   */
  async #handOver(): Promise<void> {
    const replicas = this.#o.backups + 1;
    while (this.#orphans.length > 0 && this.#state === 'joined') {
      const arc = this.#orphans[0]!;
      let cursor = arc.start;
      for (let piece = 0; piece < MAX_HANDOVER_PIECES; piece++) {
        const target = nextIdent(cursor, this.#metric.bits);
        const local = this.#table.answer(target);
        let owners: readonly NodeRef[];
        try {
          owners = local.done ? local.replicas : (await this.#lookup(target, local.closer)).replicas;
        } catch {
          this.#orphans[0] = { start: cursor, end: arc.end };
          return;
        }
        const owner = owners[0]!;
        const end = inHalfOpen(arc.end, cursor, owner.ident) ? arc.end : owner.ident;
        const to = owners.slice(0, replicas);
        if (!to.some((n) => n.id === this.#self.id)) {
          const handed = move(
            cursor,
            end,
            [this.#self.id],
            to.map((n) => n.id),
            this.#metric,
          );
          this.#emit([handed], [this.#self.member, ...to.map((n) => n.member)], []);
        }
        if (end === arc.end) {
          cursor = arc.end;
          break;
        }
        cursor = end;
      }
      if (cursor !== arc.end) {
        this.#orphans[0] = { start: cursor, end: arc.end };
        return;
      }
      this.#orphans.shift();
    }
  }

  async #neighboursFrom(node: NodeRef): Promise<Neighbours> {
    const reply = await this.#c.rpc.request<NeighboursPayload>(
      node.address,
      CHORD_MESSAGES.getNeighbours,
      { metric: this.#metric.name } satisfies GetNeighboursPayload,
      { timeoutMs: this.#o.requestTimeoutMs, signal: this.#lifetime.signal },
    );
    this.#heard(node);
    return this.#neighboursOf(reply.payload);
  }

  // ---- requests from other nodes ----

  #onFindSuccessor(payload: FindSuccessorPayload): { type: string; payload: FindSuccessorReplyPayload } {
    this.#checkPeer(payload.metric);
    if (payload.target.length !== this.#self.ident.length) {
      throw new KvError('KVMESH_ERR_MESSAGE_INVALID', `lookup target '${payload.target}' is not an identifier`);
    }
    return this.#answerMessage(this.#table.answer(payload.target));
  }

  #onJoin(payload: JoinPayload): { type: string; payload: FindSuccessorReplyPayload } {
    if (this.#state === 'joining' && payload.metric === this.#metric.name && payload.node !== null) {
      // Refused below, but the sender may be in a ring this node can join through (its own seeds may all
      // be joining too, as after two nodes restarted through each other).
      this.#hintJoin(payload.node.address);
    }
    this.#checkPeer(payload.metric);
    const joiner = payload.node === null ? undefined : this.#intern(payload.node);
    if (joiner === undefined) throw new KvError('KVMESH_ERR_MESSAGE_INVALID', 'a Join names no valid node');
    if (joiner.ident === this.#self.ident && joiner.id !== this.#self.id) {
      throw new KvError(
        'KVMESH_ERR_PLACEMENT_INCOMPATIBLE',
        `node ${this.#self.id} already sits at position ${joiner.ident}; give node ${joiner.id} another identifier`,
      );
    }
    this.#heard(joiner);
    // Lost itself, this node knows no successor to name but itself: the two form a ring again, and
    // stabilize and the probes for other rings join it to the rest (every node may be lost at once).
    if (this.#table.lost) {
      return this.#answerMessage({ done: true, replicas: [this.#self], rangeStart: this.#self.ident });
    }
    return this.#answerMessage(this.#table.answer(joiner.ident));
  }

  /** Chord's notify, plus the reply stabilize needs: this node's predecessors and successors. */
  #onStabilize(payload: StabilizePayload): { type: string; payload: NeighboursPayload } {
    this.#checkPeer(payload.metric);
    const from = payload.from === null ? undefined : this.#intern(payload.from);
    if (from === undefined) throw new KvError('KVMESH_ERR_MESSAGE_INVALID', 'a Stabilize names no valid node');
    const table = this.#table;
    const now = this.#c.clock.now();
    this.#heard(from);
    const current = table.predecessor;
    if (
      from.id !== this.#self.id &&
      (current === undefined || current.id === from.id || inOpen(from.ident, current.ident, this.#self.ident))
    ) {
      const theirs = this.#nodes(payload.predecessors);
      if (payload.tailKnown && current?.id === from.id) {
        // Left out: the predecessor's predecessors are the ones this node holds already.
      } else {
        // A newcomer between the old predecessor and this node does not know its own predecessors
        // yet: they are this node's old ones.
        const tail = theirs.length > 0 || current === undefined || current.id === from.id ? theirs : table.predecessors;
        table.setPredecessors([from, ...tail], now);
        this.#recheck(tail);
      }
      this.#lastHeardFromPredecessor = now;
      // Alone until now: the newcomer is the successor too (a ring of two).
      if (table.successor === undefined) table.setSuccessors(from, [], now);
      this.#afterChange();
    }
    const digest = table.digest();
    if (!payload.wantFingers && payload.known === digest) {
      return { type: CHORD_MESSAGES.neighbours, payload: { ...UNCHANGED, digest } };
    }
    return this.#neighboursMessage(payload.wantFingers, true);
  }

  #onGetNeighbours(payload: GetNeighboursPayload): { type: string; payload: NeighboursPayload } {
    this.#checkPeer(payload.metric);
    return this.#neighboursMessage(false, false);
  }

  /** A neighbour leaves: close the ring around it now instead of waiting to find it failed. */
  #onLeave(payload: LeavePayload): { type: string; payload: Record<string, never> } {
    this.#checkPeer(payload.metric);
    const leaving = payload.node === null ? undefined : this.#intern(payload.node);
    if (leaving !== undefined && leaving.id !== this.#self.id) {
      const table = this.#table;
      const now = this.#c.clock.now();
      const wasPredecessor = table.predecessor?.id === leaving.id;
      const wasSuccessor = table.successors.some((n) => n.id === leaving.id);
      this.#memory.forget(leaving.id);
      this.#markDead(leaving, false);
      if (wasPredecessor) {
        table.setPredecessors(this.#nodes(payload.predecessors), now);
        this.#lastHeardFromPredecessor = now;
      }
      const next = this.#nodes(payload.successors).filter((n) => n.id !== leaving.id);
      if (wasSuccessor && table.successor === undefined && next[0] !== undefined) {
        table.setSuccessors(next[0], next.slice(1), now);
      }
      this.#c.logger.info({ node: leaving.id }, 'a neighbour left the ring');
      this.#afterChange();
    }
    return { type: 'kvmesh.core.Empty', payload: {} };
  }

  #checkPeer(metric: string): void {
    if (metric !== this.#metric.name) {
      throw new KvError(
        'KVMESH_ERR_PLACEMENT_INCOMPATIBLE',
        `node ${this.#c.node.id} places keys by metric ${this.#metric.name} and the request came from a node using ${metric || 'no metric'}: every node of a chord ring needs the same metric`,
      );
    }
    if (this.#state !== 'joined') {
      throw new KvError('KVMESH_ERR_PLACEMENT_EMPTY', `node ${this.#c.node.id} is not part of a chord ring yet`);
    }
  }

  // ---- lookups ----

  async #lookup(
    target: Ident,
    first: readonly NodeRef[],
    deadlineMs?: number,
    signal?: AbortSignal,
  ): Promise<LookupResult> {
    this.#stats.lookups++;
    try {
      const result = await lookup({
        target,
        first,
        selfId: this.#self.id,
        clock: this.#c.clock,
        timeoutMs: this.#o.requestTimeoutMs,
        ...(deadlineMs !== undefined ? { deadlineMs } : {}),
        signal: signal === undefined ? this.#lifetime.signal : AbortSignal.any([signal, this.#lifetime.signal]),
        isDead: (id) => this.#table.isDead(id, this.#c.clock.now()),
        ask: async (node) => {
          const reply = await this.#c.rpc.request<FindSuccessorReplyPayload>(
            node.address,
            CHORD_MESSAGES.findSuccessor,
            { metric: this.#metric.name, target } satisfies FindSuccessorPayload,
            { timeoutMs: this.#lookupTimeout(deadlineMs), ...(signal ? { signal } : {}) },
          );
          this.#heard(node);
          return this.#answerOf(reply.payload);
        },
        onFailure: (node, err) => {
          if (failed(err)) this.#markDead(node);
        },
      });
      this.#stats.hops += result.hops;
      return result;
    } catch (err) {
      this.#stats.failedLookups++;
      throw err;
    }
  }

  #lookupTimeout(deadlineMs: number | undefined): number {
    if (deadlineMs === undefined) return this.#o.requestTimeoutMs;
    return Math.max(1, Math.min(this.#o.requestTimeoutMs, deadlineMs - this.#c.clock.now()));
  }

  #replicaSet(nodes: readonly NodeRef[], hops: number): ReplicaSet {
    const count = Math.min(nodes.length, this.#o.backups + 1);
    const replicas = nodes.slice(0, count).map((n) => n.member);
    return Object.freeze({
      replicas: Object.freeze(replicas),
      fallbacks: Object.freeze(nodes.slice(count).map((n) => n.member)),
      writeQuorum: resolveQuorum(this.#o.writeQuorum, count),
      // Two nodes may name different replicas for one key at once (one whose successor list lacks a
      // live node names the next one): a conditional write needs every replica, so that the two
      // sets' quorums meet on any replica they share, which stores only one compare-and-set.
      conditionalWriteQuorum: count,
      readQuorum: resolveQuorum(this.#o.readQuorum, count),
      epoch: CHORD_EPOCH,
      hops,
    });
  }

  // ---- changes ----

  #heard(node: NodeRef): void {
    this.#table?.heard(node.id);
    if (node.id !== this.#self?.id) this.#memory?.saw(node, this.#c.clock.now());
  }

  #markDead(node: NodeRef, failedNode = true): void {
    const table = this.#table;
    table.markDead(node.id, this.#c.clock.now() + DEAD_MEMORY_PERIODS * this.#o.heartbeatMs);
    this.#cache.forgetNode(node.id);
    this.#departed.push(node.id);
    if (failedNode) this.#c.logger.debug({ node: node.id }, 'a chord node did not answer');
    this.#afterChange();
  }

  /**
   * After the lists changed: when the stretch of ring this node knows is
   * another, announce the arcs whose replicas changed.
   */
  #afterChange(): void {
    if (this.#state !== 'joined') return;
    if (this.#lostSince !== undefined && !this.#table.lost) {
      this.#c.logger.info({ lostForMs: this.#c.clock.now() - this.#lostSince }, 'back in the chord ring');
      this.#lostSince = undefined;
    }
    if (this.#table.lost || this.#minority() !== undefined) {
      // Cut off, it admits no key: to the mover it holds nothing until it is back.
      const isolated = (this.#isolated ??= new RingWindow(this.#self, [], [], false, this.#o.backups));
      if (this.#announced !== isolated) {
        this.#heldBeforeIsolation = this.#announced;
        this.#announced = isolated;
      }
      const departed = this.#departed.splice(0);
      if (departed.length > 0) this.#emit([], [], departed);
      return;
    }
    const window = this.#table.window();
    if (this.#announced !== undefined && this.#announced.signature === window.signature) return;
    const before = this.#announced;
    this.#announced = window;
    // Back from isolation: every arc it holds now is claimed from the others (it may have missed writes
    // meanwhile), and what it held before and no longer does is handed over.
    const { moves, orphans } = ownershipMoves(before, window, this.#self, this.#metric);
    const back = before !== undefined && before === this.#isolated;
    const held = back ? this.#heldBeforeIsolation : undefined;
    const handOver = !back
      ? orphans
      : held !== undefined
        ? ownershipMoves(held, window, this.#self, this.#metric).orphans
        : [];
    if (back) this.#heldBeforeIsolation = undefined;
    if (handOver.length > 0) this.#orphans.push(...handOver);
    const departed = this.#departed.splice(0);
    if (this.#listeners.size === 0 || (moves.length === 0 && departed.length === 0)) return;
    const members = new Map<string, Member>();
    const now = this.#c.clock.now();
    for (const w of before === undefined ? [window] : [before, window]) {
      for (const n of w.nodes) if (!this.#table.isDead(n.id, now)) members.set(n.id, n.member);
    }
    this.#emit(moves, [...members.values()], departed);
    this.#claim(moves);
  }

  #emit(moves: readonly ArcMove[], members: readonly Member[], departed: readonly string[]): void {
    const change = Object.freeze({ epoch: CHORD_EPOCH, moves, members, departed });
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (err) {
        this.#c.logger.error({ err: errorText(err) }, 'an ownership listener threw');
      }
    }
  }

  /**
   * For each arc this node just became a replica of, asks the replicas that
   * held it to copy it here. Their own lists may have named this node
   * before it admitted the arc (news travels one node per period), so a
   * write in between reached them and not this node, and they see no
   * change of their own to announce.
   */
  #claim(moves: readonly ArcMove[]): void {
    const window = this.#table.window();
    for (const m of moves) {
      if (!m.to.includes(this.#self.id) || m.from.includes(this.#self.id)) continue;
      const payload: ClaimPayload = {
        metric: this.#metric.name,
        node: this.#wire(this.#self),
        start: m.start,
        end: m.end,
      };
      for (const holder of window.replicasAt(m.end) ?? []) {
        if (holder.id === this.#self.id || !m.from.includes(holder.id)) continue;
        this.#c.rpc
          .request(holder.address, CHORD_MESSAGES.claim, payload, {
            timeoutMs: this.#o.requestTimeoutMs,
            signal: this.#lifetime.signal,
          })
          .catch(() => undefined);
      }
    }
  }

  /** A node became a replica of an arc this node holds: copy it there (core's mover runs the copy). */
  #onClaim(payload: ClaimPayload): { type: string; payload: Record<string, never> } {
    this.#checkPeer(payload.metric);
    const claimant = payload.node === null ? undefined : this.#intern(payload.node);
    const digits = this.#self.ident.length;
    if (claimant !== undefined && payload.start.length === digits && payload.end.length === digits) {
      const replicas = this.#table.window().replicasAt(payload.end);
      if (replicas?.some((n) => n.id === this.#self.id) && claimant.id !== this.#self.id) {
        this.#heard(claimant);
        const copy = move(payload.start, payload.end, [this.#self.id], [this.#self.id, claimant.id], this.#metric);
        this.#emit([copy], [this.#self.member, claimant.member], []);
      }
    }
    return { type: 'kvmesh.core.Empty', payload: {} };
  }

  // ---- wire ----

  #wire(node: NodeRef): WireNode {
    return this.#directory.wire(node);
  }

  #intern(wire: WireNode): NodeRef | undefined {
    return this.#directory.intern(wire, this.#self.ident.length);
  }

  #nodes(wires: readonly WireNode[]): NodeRef[] {
    const out: NodeRef[] = [];
    for (const w of wires) {
      const n = this.#intern(w);
      if (n !== undefined) out.push(n);
    }
    return out;
  }

  #answerOf(payload: FindSuccessorReplyPayload): Answer {
    if (payload.done) {
      const replicas = this.#nodes(payload.replicas);
      if (replicas.length > 0) return { done: true, replicas, rangeStart: payload.rangeStart };
    }
    return { done: false, closer: this.#nodes(payload.closer) };
  }

  #answerMessage(answer: Answer): { type: string; payload: FindSuccessorReplyPayload } {
    const payload: FindSuccessorReplyPayload = answer.done
      ? { done: true, replicas: answer.replicas.map((n) => this.#wire(n)), rangeStart: answer.rangeStart, closer: [] }
      : { done: false, replicas: [], rangeStart: '', closer: answer.closer.map((n) => this.#wire(n)) };
    return { type: CHORD_MESSAGES.findSuccessorReply, payload };
  }

  #neighboursMessage(withFingers: boolean, withSuccessors: boolean): { type: string; payload: NeighboursPayload } {
    const table = this.#table;
    return {
      type: CHORD_MESSAGES.neighbours,
      payload: {
        predecessors: table.predecessors.map((n) => this.#wire(n)),
        successors: withSuccessors ? table.successors.map((n) => this.#wire(n)) : [],
        fingers: withFingers ? table.distinctFingers().map((n) => this.#wire(n)) : [],
        unchanged: false,
        digest: withSuccessors ? table.digest() : 0,
      },
    };
  }

  #neighboursOf(payload: NeighboursPayload): Neighbours {
    return {
      predecessors: this.#nodes(payload.predecessors),
      successors: this.#nodes(payload.successors),
      fingers: this.#nodes(payload.fingers),
    };
  }
}

interface Neighbours {
  readonly predecessors: readonly NodeRef[];
  readonly successors: readonly NodeRef[];
  readonly fingers: readonly NodeRef[];
}

const OWN: Admission = Object.freeze({ kind: 'own' });

const UNCHANGED: Omit<NeighboursPayload, 'digest'> = Object.freeze({
  predecessors: [],
  successors: [],
  fingers: [],
  unchanged: true,
});

/**
 * A request failure that says the node is gone from the ring: no answer,
 * nothing listening, or it is not in a ring (it restarted and is joining
 * again: kept in the lists, it would stall stabilize, which waits for it,
 * and the ring it is to join through could not place it).
 */
function failed(err: unknown): boolean {
  return (
    isKvError(err, 'KVMESH_ERR_TRANSPORT_UNREACHABLE') ||
    isKvError(err, 'KVMESH_ERR_RPC_TIMEOUT') ||
    isKvError(err, 'KVMESH_ERR_PLACEMENT_EMPTY')
  );
}

function joinList(config: Readonly<Record<string, unknown>>): string[] {
  const join = config['join'];
  return Array.isArray(join) ? join.filter((s): s is string => typeof s === 'string' && s !== '') : [];
}

/** `host:port` as a URI of the transport `ownUri` belongs to; a URI stays as it is. */
function peerUri(ownUri: string, hostPort: string): string {
  if (hostPort.includes('://')) return hostPort;
  const at = ownUri.indexOf('://');
  return at > 0 ? `${ownUri.slice(0, at)}://${hostPort}` : hostPort;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
