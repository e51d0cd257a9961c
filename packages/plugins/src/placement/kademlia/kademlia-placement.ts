import { join } from 'node:path';
import { KvError } from '@kvmesh/core';
import type {
  Admission,
  BucketsDrawing,
  Clock,
  Intent,
  KeyTransfer,
  LocateOptions,
  Logger,
  Member,
  MessageRegistry,
  Move,
  NodeInfo,
  OwnershipListener,
  Placement,
  Random,
  ReplicaSet,
  Rpc,
  Timer,
} from '@kvmesh/core';
import { resolveQuorum } from '../support/quorum.js';
import { contactOf } from './contact.js';
import type { Contact } from './contact.js';
import { KademliaNode, lookupTimeout } from './kademlia-node.js';
import { defineKademliaMessages } from './messages.js';
import { hexOf, idOf } from './node-id.js';
import type { KademliaOptions } from './options.js';
import { seedAddress, seedList } from './options.js';
import { FileJournal, MemoryJournal } from './ownership-journal.js';
import { MulticastDiscovery } from './multicast.js';
import { ReplicaMoves } from './replica-moves.js';
import { ShiftProtocol } from './shift-protocol.js';

/**
 * Routed placements have no view every node shares, so the epoch is a
 * constant (the placement contract): ownership is decided in `admit` alone.
 */
export const KADEMLIA_EPOCH = 1;

export interface KademliaComponents {
  readonly node: NodeInfo;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly messages: MessageRegistry;
  readonly rpc: Rpc;
}

/**
 * Placement over a Kademlia DHT (Maymounkov & Mazières, IPTPS 2002).
 *
 * - `mode: "replicate"`: a classic DHT. A key's replicas are the `replicas`
 *   closest live nodes to SHA-256(key) by XOR distance, found by an
 *   iterative FIND_NODE (answered from the routing table when the buckets
 *   around the key were never full: every node there is known). The KV
 *   service reads and writes them with its quorums.
 * - `mode: "shift"` (KeyShift): a key has one owner, which moves to the node
 *   that uses it (ShiftProtocol); `locate` takes the key over, `admit`
 *   answers own, frozen or moved for it.
 */
export class KademliaPlacement implements Placement {
  readonly name = 'kademlia';
  readonly epoch = KADEMLIA_EPOCH;
  readonly #o: KademliaOptions;
  readonly #c: KademliaComponents;
  readonly #listeners = new Set<OwnershipListener>();
  #dht: KademliaNode | undefined;
  #shift: ShiftProtocol | undefined;
  #moves: ReplicaMoves | undefined;
  #multicast: MulticastDiscovery | undefined;
  /** Bootstraps running or done through a contact heard by multicast, by id. */
  readonly #discovered = new Set<string>();
  #transfer: KeyTransfer | undefined;
  #selfSet: ReplicaSet | undefined;
  #self: Member | undefined;
  #bootstrapTimer: Timer | undefined;
  #state: 'created' | 'running' | 'stopped' = 'created';

  constructor(options: KademliaOptions, components: KademliaComponents) {
    if (options.alpha > options.k) {
      throw new KvError('KVMESH_ERR_CONFIG_INVALID', `alpha ${options.alpha} exceeds k ${options.k}`);
    }
    if (options.replicas > options.k) {
      throw new KvError('KVMESH_ERR_CONFIG_INVALID', `replicas ${options.replicas} exceeds k ${options.k}`);
    }
    for (const [name, quorum] of [
      ['writeQuorum', options.writeQuorum],
      ['readQuorum', options.readQuorum],
    ] as const) {
      if (typeof quorum === 'number' && quorum > options.replicas) {
        throw new KvError(
          'KVMESH_ERR_CONFIG_INVALID',
          `${name} ${quorum} exceeds the ${options.replicas} replicas a key has`,
        );
      }
    }
    this.#o = options;
    this.#c = components;
    defineKademliaMessages(components.messages);
  }

  /** The DHT node (after start): routing table, held entries, counters. */
  get dht(): KademliaNode {
    if (this.#dht === undefined) throw new KvError('KVMESH_ERR_KERNEL_STATE', 'the kademlia placement is not started');
    return this.#dht;
  }

  /** The ownership shift (mode shift, after start). */
  get shift(): ShiftProtocol | undefined {
    return this.#shift;
  }

  useKeyTransfer(transfer: KeyTransfer): void {
    this.#transfer = transfer;
    this.#shift?.useKeyTransfer(transfer);
  }

  // The transport knows its final address (a port chosen at listen) after its own start(), which runs
  // before this one: the contact is built here.
  async start(): Promise<void> {
    if (this.#state !== 'created') return;
    this.#state = 'running';
    const { node, rpc, clock, random, logger } = this.#c;
    const o = this.#o;
    const self = contactOf(node.id, rpc.address);
    const dht = new KademliaNode(
      self,
      {
        k: o.k,
        alpha: o.alpha,
        requestTimeoutMs: o.requestTimeoutMs,
        refreshIntervalMs: o.refreshIntervalMs,
        republishIntervalMs: o.republishIntervalMs,
        expiryMs: o.expiryMs,
      },
      { rpc, clock, random: random.fork(), logger },
    );
    this.#dht = dht;
    dht.start();
    if (o.mode === 'shift') {
      const journal =
        o.persistOwnership && node.dataDir !== ''
          ? new FileJournal(join(node.dataDir, `kademlia-ownership-${safeName(node.id)}.jsonl`), o.forwardMaxKeys)
          : new MemoryJournal();
      const shift = new ShiftProtocol(
        dht,
        {
          freezeMs: o.freezeMs,
          shiftAfterAccesses: o.shiftAfterAccesses,
          forwardTtlMs: o.forwardTtlMs,
          forwardMaxKeys: o.forwardMaxKeys,
        },
        { rpc, clock, random: random.fork(), logger },
        journal,
      );
      if (this.#transfer !== undefined) shift.useKeyTransfer(this.#transfer);
      this.#shift = shift;
      await shift.start();
    } else {
      const moves = new ReplicaMoves({
        dht,
        clock,
        replicas: o.replicas,
        epoch: this.epoch,
        member: (contact) => this.#member(contact),
        emit: (change) => {
          for (const listener of this.#listeners) listener(change);
        },
      });
      this.#moves = moves;
      dht.onContactAdded = (contact) => moves.added(contact);
      dht.onContactRemoved = (contact) => moves.removed(contact);
    }
    const seeds = seedList(o.seeds).map((s) => seedAddress(s, self.address));
    const seeded = seeds.some((s) => s !== self.address);
    if (o.multicast.enabled) {
      const discovery = new MulticastDiscovery(o.multicast, {
        self,
        messages: this.#c.messages,
        clock,
        logger,
        host: hostOf(node.address),
        wanted: () => dht.table.size < o.k,
        heard: (contact) => this.#heard(contact),
      });
      await discovery.start();
      this.#multicast = discovery;
      // The answer to an announcement is a ping from the node that heard it: the first contact this
      // node learns that way is where it bootstraps.
      const added = dht.onContactAdded;
      dht.onContactAdded = (contact) => {
        added?.(contact);
        if (!seeded && this.#discovered.size === 0) this.#heard(contact);
      };
    }
    // With no seed (the first node, or discovery by multicast alone) there is nobody to wait for.
    if (!seeded) this.#shift?.joined();
    if (seeded) {
      const joined = await dht.bootstrap(seeds).catch(() => false);
      if (joined) this.#shift?.joined();
      if (!joined) {
        logger.info({ seeds }, 'no Kademlia seed answered yet; trying again');
        this.#retryBootstrap(seeds);
      }
    }
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    this.#bootstrapTimer?.cancel();
    this.#moves?.stop();
    this.#multicast?.stop();
    await this.#shift?.stop();
    await this.#dht?.stop();
  }

  /**
   * Contacts seed addresses (transport URIs) again: for a node that started
   * before any seed, and for tools that bootstrap a simulated node later.
   */
  bootstrap(seeds: readonly string[]): Promise<boolean> {
    return this.dht.bootstrap(seeds);
  }

  async locate(key: string, options: LocateOptions): Promise<ReplicaSet> {
    const dht = this.dht;
    if (this.#state !== 'running') throw new KvError('KVMESH_ERR_KERNEL_STATE', 'the kademlia placement is stopped');
    const check = this.#check(key, options);
    if (this.#shift !== undefined) {
      const sleep = (ms: number): Promise<void> => this.#c.clock.sleep(ms, options.signal ?? dht.lifetime);
      const answer = await this.#shift.locate(key, check, sleep, options.retry === true);
      if (answer.kind === 'here') return answer.hops === 0 ? this.#own() : { ...this.#own(), hops: answer.hops };
      return this.#single(answer.owner, answer.hops);
    }
    const target = idOf(key);
    const wanted = this.#o.replicas;
    if (dht.table.knowsAll()) return this.#replicated(dht.closestKnown(target, wanted), 0);
    // The lookup runs to the k closest, as the paper's does, whatever the replica count: ending at
    // the few closest would trust the routing tables more than a lookup should.
    const result = await dht.findNode(target, this.#o.k, check);
    return this.#replicated(result.closest, result.hops);
  }

  admit(key: string, _intent: Intent, _epoch: number): Admission {
    const dht = this.#dht;
    if (dht === undefined) return { kind: 'not-owner', epoch: this.epoch };
    if (this.#shift !== undefined) {
      const admission = this.#shift.admission(key);
      switch (admission.kind) {
        case 'own':
          return admission;
        case 'frozen':
          return admission;
        case 'moved':
          return { kind: 'moved', to: this.#member(admission.to) };
        default:
          return { kind: 'not-owner', epoch: this.epoch };
      }
    }
    // A routed view is this node's own: it keeps a key while it is among the k closest it knows
    // (replicas <= k), so coordinators whose tables differ a little still find it.
    const closest = dht.closestKnown(idOf(key), this.#o.k);
    if (closest.some((c) => c.id === dht.self.id)) return { kind: 'own' };
    return {
      kind: 'not-owner',
      epoch: this.epoch,
      owners: closest.slice(0, this.#o.replicas).map((c) => this.#member(c)),
    };
  }

  plan(_before: readonly Member[], _after: readonly Member[]): readonly Move[] {
    return [];
  }

  onOwnershipChange(listener: OwnershipListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  describe(): Record<string, unknown> {
    const dht = this.#dht;
    const base: Record<string, unknown> = {
      strategy: 'kademlia',
      mode: this.#o.mode,
      epoch: this.epoch,
      k: this.#o.k,
      alpha: this.#o.alpha,
    };
    if (dht === undefined) return base;
    const { lookups, lookupHops } = dht.counters;
    base['self'] = { id: dht.self.id, nodeId: hexOf(dht.self.nodeId), address: dht.self.address };
    base['contacts'] = dht.table.size;
    const buckets = dht.table.describe();
    base['buckets'] = buckets;
    base['drawing'] = {
      shape: 'buckets',
      caption: `this node's k-buckets by shared id prefix, ${buckets.length} not empty, up to k = ${this.#o.k} contacts each`,
      buckets: buckets.map((b) => ({ index: b.prefix, size: b.contacts, capacity: this.#o.k, members: b.members })),
    } satisfies BucketsDrawing;
    base['lookups'] = { count: lookups, meanHops: lookups === 0 ? 0 : lookupHops / lookups };
    base['requestsFailed'] = dht.counters.requestsFailed;
    if (this.#o.mode === 'replicate') {
      base['replicas'] = this.#o.replicas;
      base['writeQuorum'] = this.#o.writeQuorum;
      base['readQuorum'] = this.#o.readQuorum;
    }
    const shift = this.#shift;
    if (shift !== undefined) {
      base['entriesHeld'] = dht.entries.size;
      base['owned'] = shift.ownedCount;
      base['frozen'] = shift.frozenCount;
      base['forwards'] = shift.forwardCount;
      base['inDoubt'] = shift.doubtCount;
      base['shifts'] = { ...shift.counters };
      base['freezeMs'] = this.#o.freezeMs;
      base['shiftAfterAccesses'] = this.#o.shiftAfterAccesses;
    }
    return base;
  }

  /** A node heard on the multicast group (or the first to answer this node's announcement): bootstrap through it once. */
  #heard(contact: Contact): void {
    const dht = this.#dht;
    if (dht === undefined || this.#state !== 'running' || this.#discovered.has(contact.id)) return;
    this.#discovered.add(contact.id);
    if (dht.table.has(contact.id) && dht.table.size >= this.#o.k) return;
    dht.track(dht.bootstrap([contact.address]));
  }

  #retryBootstrap(seeds: readonly string[]): void {
    if (this.#state !== 'running') return;
    this.#bootstrapTimer = this.#c.clock.setTimeout(() => {
      this.#bootstrapTimer = undefined;
      const dht = this.#dht;
      if (dht === undefined || this.#state !== 'running') return;
      if (dht.table.size > 0) return;
      dht.track(
        dht.bootstrap(seeds).then((joined) => {
          if (joined) this.#shift?.joined();
          else this.#retryBootstrap(seeds);
        }),
      );
    }, this.#o.bootstrapRetryMs);
  }

  /** A check the lookups call before each round: the caller's deadline or signal, else a generous bound. */
  #check(key: string, options: LocateOptions): () => void {
    const clock = this.#c.clock;
    const o = this.#o;
    const deadline = options.deadlineMs ?? clock.now() + 2 * o.freezeMs + 10 * o.requestTimeoutMs;
    const signal = options.signal;
    return () => {
      if (signal?.aborted) throw signal.reason;
      if (clock.now() > deadline) throw lookupTimeout(`locating key ${JSON.stringify(key)}`);
    };
  }

  /** This node alone (mode shift: it owns the key). */
  #own(): ReplicaSet {
    if (this.#selfSet === undefined) this.#selfSet = this.#single(this.dht.self, 0);
    return this.#selfSet;
  }

  #single(contact: Contact, hops: number): ReplicaSet {
    return Object.freeze({
      replicas: Object.freeze([this.#member(contact)]),
      fallbacks: Object.freeze([]),
      writeQuorum: 1,
      conditionalWriteQuorum: 1,
      readQuorum: 1,
      epoch: this.epoch,
      hops,
    });
  }

  #replicated(closest: readonly Contact[], hops: number): ReplicaSet {
    const replicas = closest.slice(0, this.#o.replicas).map((c) => this.#member(c));
    if (replicas.length === 0)
      throw new KvError('KVMESH_ERR_PLACEMENT_EMPTY', 'no node of the overlay can hold the key');
    return Object.freeze({
      replicas: Object.freeze(replicas),
      fallbacks: Object.freeze([]),
      writeQuorum: resolveQuorum(this.#o.writeQuorum, replicas.length),
      // Nodes whose k-buckets differ name different closest nodes: every replica, so that two sets meet.
      conditionalWriteQuorum: replicas.length,
      readQuorum: resolveQuorum(this.#o.readQuorum, replicas.length),
      epoch: this.epoch,
      hops,
    });
  }

  /** The Member handed out for a contact (one object per contact and address, shared). */
  #member(contact: Contact): Member {
    if (contact.id === this.#c.node.id) {
      if (this.#self === undefined || this.#self.address !== contact.address) {
        this.#self = Object.freeze({
          id: contact.id,
          address: contact.address,
          state: 'alive',
          incarnation: 0,
          meta: Object.freeze({ role: this.#c.node.role }),
        });
      }
      return this.#self;
    }
    return memberOf(contact);
  }
}

const members = new WeakMap<Contact, Member>();
const NO_META: Readonly<Record<string, string>> = Object.freeze({});

/** Contacts are interned (contactOf), so their Members can be too. */
function memberOf(contact: Contact): Member {
  let member = members.get(contact);
  if (member === undefined) {
    member = Object.freeze({ id: contact.id, address: contact.address, state: 'alive', incarnation: 0, meta: NO_META });
    members.set(contact, member);
  }
  return member;
}

/** The host of a `host:port` (brackets of an IPv6 literal removed). */
function hostOf(hostPort: string): string {
  const at = hostPort.lastIndexOf(':');
  const host = at < 0 ? hostPort : hostPort.slice(0, at);
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function safeName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_');
}
