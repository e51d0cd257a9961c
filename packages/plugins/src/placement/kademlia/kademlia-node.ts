import { setMaxListeners } from 'node:events';
import { KvError, isKvError } from '@kvmesh/core';
import type { Clock, Logger, Message, Random, Rpc, RpcContext, Timer } from '@kvmesh/core';
import { fromWire, toWire } from './contact.js';
import type { Contact, WireContact } from './contact.js';
import { EntryStore } from './entry-store.js';
import { iterativeLookup } from './lookup.js';
import type { LookupResult, QueryAnswer } from './lookup.js';
import { KADEMLIA_MESSAGES } from './messages.js';
import type {
  EntryPayload,
  NodesPayload,
  SenderPayload,
  StorePayload,
  StoreReplyPayload,
  ValuePayload,
} from './messages.js';
import { ID_BYTES, compareDistance, idInBucket, idOf, sameId } from './node-id.js';
import { RoutingTable } from './routing-table.js';

/** Entries per STORE message: a page that fits a datagram with keys of ordinary length. */
const STORE_PAGE = 8;
/** Delay before entries are offered to a newly seen contact, so a burst of arrivals is one pass. */
const HANDOVER_DELAY_MS = 200;

export interface KademliaNodeSettings {
  readonly k: number;
  readonly alpha: number;
  readonly requestTimeoutMs: number;
  readonly refreshIntervalMs: number;
  readonly republishIntervalMs: number;
  readonly expiryMs: number;
}

export interface KademliaNodeComponents {
  readonly rpc: Rpc;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
}

/** Counters for `describe()`. */
export interface KademliaCounters {
  lookups: number;
  lookupHops: number;
  requestsFailed: number;
  storesReceived: number;
  republished: number;
}

/** Raised by a lookup `check` when the caller's deadline passed. */
export function lookupTimeout(what: string): KvError {
  return new KvError('KVMESH_ERR_RPC_TIMEOUT', `${what} did not finish before its deadline`);
}

/**
 * One node of a Kademlia overlay (Maymounkov & Mazières, IPTPS 2002): its
 * routing table, the four RPCs (PING, FIND_NODE, FIND_VALUE, STORE) as
 * registered messages over the node's Rpc, iterative lookups, the entries
 * it holds for others with republish and expiry (§2.5), bucket refresh
 * (§2.3) and bootstrap through seed addresses. Time and randomness come from
 * the injected Clock and Random, so it runs unchanged in the simulator.
 */
export class KademliaNode {
  readonly self: Contact;
  readonly table: RoutingTable;
  readonly entries: EntryStore;
  readonly counters: KademliaCounters = {
    lookups: 0,
    lookupHops: 0,
    requestsFailed: 0,
    storesReceived: 0,
    republished: 0,
  };
  readonly #s: KademliaNodeSettings;
  readonly #c: KademliaNodeComponents;
  readonly #timers: Timer[] = [];
  readonly #lifetime = new AbortController();
  readonly #background = new Set<Promise<unknown>>();
  /** Contacts that entered the table since the last hand-over pass. */
  #arrived: Contact[] = [];
  /**
   * Contacts that left the routing table after failing, and when: still
   * counted among a key's entry holders (mode shift's majorities) until
   * `expiryMs` passed, so a node cut off from the others does not take
   * itself for the whole overlay.
   */
  readonly #departed = new Map<string, { contact: Contact; atMs: number }>();
  #handover: Timer | undefined;
  #running = false;
  /** Publishes this node's own entries again (the owner side, set by the shift protocol). */
  republishOwn: (() => Promise<void>) | undefined;
  /** Told of every contact that enters or leaves the routing table (replicate mode's moves). */
  onContactAdded: ((contact: Contact) => void) | undefined;
  onContactRemoved: ((contact: Contact) => void) | undefined;

  constructor(self: Contact, settings: KademliaNodeSettings, components: KademliaNodeComponents) {
    this.self = self;
    this.#s = settings;
    this.#c = components;
    // Every request in flight listens on the lifetime signal.
    setMaxListeners(0, this.#lifetime.signal);
    this.entries = new EntryStore(settings.expiryMs);
    this.table = new RoutingTable({
      self,
      k: settings.k,
      ping: (contact) => this.ping(contact),
      now: () => components.clock.now(),
      onAdded: (contact) => {
        this.#departed.delete(contact.id);
        this.#onAdded(contact);
        this.onContactAdded?.(contact);
      },
      // A node heard from again after failing may have missed entries (or restarted with none).
      onRecovered: (contact) => this.#onAdded(contact),
      onRemoved: (contact) => {
        this.#departed.set(contact.id, { contact, atMs: components.clock.now() });
        this.onContactRemoved?.(contact);
      },
    });
  }

  get settings(): KademliaNodeSettings {
    return this.#s;
  }

  /** Aborted when the node stops. */
  get lifetime(): AbortSignal {
    return this.#lifetime.signal;
  }

  /** Registers the four RPCs and starts the refresh and republish timers. */
  start(): void {
    const { rpc, clock } = this.#c;
    rpc.handle(KADEMLIA_MESSAGES.ping, (p: SenderPayload, ctx) => {
      this.#heard(p.sender, ctx);
      return { type: KADEMLIA_MESSAGES.pong, payload: { sender: toWire(this.self) } };
    });
    rpc.handle(KADEMLIA_MESSAGES.findNode, (p: SenderPayload & { target: Uint8Array }, ctx) => {
      const from = this.#heard(p.sender, ctx);
      const target = checkTarget(p.target);
      // A node looks its own id up when it joins (§2.3), after a restart too, with nothing held:
      // it gets the entries it is among the k closest to, as a newly seen node does (§2.5).
      if (from !== undefined && sameId(target, from.nodeId)) this.#onAdded(from);
      const contacts: WireContact[] = this.table.closest(target, this.#s.k, from?.id);
      return { type: KADEMLIA_MESSAGES.nodes, payload: { sender: toWire(this.self), contacts } };
    });
    rpc.handle(KADEMLIA_MESSAGES.findValue, (p: SenderPayload & { key: string }, ctx) => this.#onFindValue(p, ctx));
    rpc.handle(KADEMLIA_MESSAGES.store, (p: StorePayload, ctx) => this.#onStore(p, ctx));
    this.#running = true;
    this.#timers.push(clock.setInterval(() => this.#track(this.refresh()), this.#s.refreshIntervalMs));
    this.#timers.push(clock.setInterval(() => this.#track(this.republish()), this.#s.republishIntervalMs));
  }

  async stop(): Promise<void> {
    this.#running = false;
    for (const timer of this.#timers.splice(0)) timer.cancel();
    this.#handover?.cancel();
    this.#lifetime.abort(new KvError('KVMESH_ERR_RPC_ABORTED', 'the Kademlia node is stopping'));
    await Promise.allSettled([...this.#background]);
  }

  /** Keeps a background task until it settles (stop waits for it) and logs its failure. */
  track(promise: Promise<unknown>): void {
    this.#track(promise);
  }

  /**
   * Joins the overlay through `seeds` (transport URIs): pings each, looks up
   * this node's own id, then refreshes every bucket farther than the closest
   * neighbour (§2.3). Resolves true when some seed answered.
   */
  async bootstrap(seeds: readonly string[]): Promise<boolean> {
    const others = seeds.filter((s) => s !== this.self.address);
    const answered = await Promise.all(others.map((address) => this.pingAddress(address)));
    if (!answered.some((c) => c !== undefined) && this.table.size === 0) return false;
    await this.findNode(this.self.nodeId, this.#s.k);
    const deepest = this.table.deepestPrefix();
    const refreshes: Promise<unknown>[] = [];
    for (let prefix = 0; prefix < deepest; prefix++) refreshes.push(this.#refreshBucket(prefix));
    await Promise.allSettled(refreshes);
    return true;
  }

  /** Pings a node known only by address; resolves to its contact, or undefined when it does not answer. */
  async pingAddress(address: string): Promise<Contact | undefined> {
    try {
      const reply = await this.#c.rpc.request<SenderPayload>(
        address,
        KADEMLIA_MESSAGES.ping,
        { sender: toWire(this.self) },
        this.#callOptions(),
      );
      const contact = fromWire(reply.payload.sender);
      if (contact !== undefined) this.table.seen(contact);
      return contact;
    } catch {
      return undefined;
    }
  }

  /** PING: resolves true when `contact` answered. */
  async ping(contact: Contact): Promise<boolean> {
    try {
      await this.request(contact, KADEMLIA_MESSAGES.ping, { sender: toWire(this.self) });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * One request to `contact`: an answer marks it seen in the routing table,
   * a failure counts against it.
   */
  async request<P>(contact: Contact, type: string, payload: unknown, timeoutMs?: number): Promise<Message<P>> {
    try {
      const reply = await this.#c.rpc.request<P>(contact.address, type, payload, this.#callOptions(timeoutMs));
      this.table.seen(contact);
      return reply;
    } catch (err) {
      this.counters.requestsFailed++;
      // A node that says it has no handler is alive but not of this overlay; one that refused is still there.
      if (!isKvError(err, 'KVMESH_ERR_RPC_ABORTED')) this.table.failed(contact);
      throw err;
    }
  }

  /**
   * This node and the contacts it knows closest to `target`, closest first
   * (at most `n`).
   */
  closestKnown(target: Uint8Array, n: number): Contact[] {
    const known = this.table.closest(target, n);
    known.push(this.self);
    known.sort((a, b) => compareDistance(a.nodeId, b.nodeId, target));
    if (known.length > n) known.length = n;
    return known;
  }

  /**
   * The nodes this node believes hold entries of `target` (at most `n`,
   * closest first): itself, the contacts it knows and the ones that left its
   * table by failing less than `expiryMs` ago. Mode shift's majorities are
   * counted against it.
   */
  holdersOf(target: Uint8Array, n: number): Contact[] {
    const now = this.#c.clock.now();
    const known = this.table.closest(target, n);
    known.push(this.self);
    for (const [id, d] of this.#departed) {
      if (now - d.atMs >= this.#s.expiryMs) this.#departed.delete(id);
      else if (!this.table.has(id)) known.push(d.contact);
    }
    known.sort((a, b) => compareDistance(a.nodeId, b.nodeId, target));
    if (known.length > n) known.length = n;
    return known;
  }

  /** FIND_NODE lookup: the `width` closest answering nodes to `target` (this node included), with the hops it took. */
  async findNode(target: Uint8Array, width: number, check?: () => void): Promise<LookupResult<never>> {
    this.table.touch(target);
    const result = await iterativeLookup<never>({
      target,
      k: this.#s.k,
      alpha: this.#s.alpha,
      width: Math.min(width, this.#s.k),
      start: this.table.closest(target, this.#s.k),
      self: this.self,
      query: (contact) => this.#findNode(contact, target),
      ...(check === undefined ? {} : { check }),
    });
    this.#counted(result.hops);
    return result;
  }

  /**
   * FIND_VALUE lookup of `key`'s entry. Ends in the round some node answered
   * it (the newest version among that round's answers is kept) or, when none
   * holds it, once the k closest all answered. The entry is then stored at
   * the closest node that answered without it (§2.3's caching). With
   * `everyHolder` it asks on to the k closest and keeps the newest entry any
   * of them holds (to decide who owns a key, not just to find it).
   */
  async findValue(key: string, check?: () => void, everyHolder = false): Promise<FoundEntry> {
    const target = idOf(key);
    this.table.touch(target);
    const local = this.entries.get(key, this.#c.clock.now());
    const result = await iterativeLookup<EntryPayload>({
      target,
      k: this.#s.k,
      alpha: this.#s.alpha,
      width: this.#s.k,
      start: this.table.closest(target, this.#s.k),
      self: this.self,
      query: (contact) => this.#findValue(contact, key),
      stopOnValue: !everyHolder,
      ...(check === undefined ? {} : { check }),
    });
    this.#counted(result.hops);
    let entry = local;
    for (const { value } of result.values) if (entry === undefined || value.version > entry.version) entry = value;
    const entries = local === undefined ? [] : [local];
    for (const { value } of result.values) {
      if (!entries.some((e) => e.ownerId === value.ownerId && e.version === value.version)) entries.push(value);
    }
    if (entry !== undefined && result.nearestWithout !== undefined && result.values.length > 0) {
      this.#track(this.storeAt([result.nearestWithout], [entry], false));
    }
    return { entry, entries, closest: result.closest, hops: result.hops };
  }

  /**
   * STORE `entries` at each of `targets` (this node's own store for itself);
   * resolves with what each target answered it holds (failed targets left out).
   */
  async storeAt(
    targets: readonly Contact[],
    entries: readonly EntryPayload[],
    create: boolean,
    replaces?: EntryPayload,
  ): Promise<{ contact: Contact; current: readonly EntryPayload[] }[]> {
    type Answer = { contact: Contact; current: readonly EntryPayload[] };
    const answers = await Promise.all(
      targets.map(async (contact): Promise<Answer | undefined> => {
        if (contact.id === this.self.id) {
          const now = this.#c.clock.now();
          return { contact, current: entries.map((e) => this.entries.offer(e, create, now, replaces)) };
        }
        const current: EntryPayload[] = [];
        try {
          for (let i = 0; i < entries.length; i += STORE_PAGE) {
            const page = entries.slice(i, i + STORE_PAGE);
            const reply = await this.request<StoreReplyPayload>(contact, KADEMLIA_MESSAGES.store, {
              sender: toWire(this.self),
              entries: page,
              create,
              replaces: replaces ?? null,
            });
            if (reply.payload.current.length !== page.length) {
              throw new KvError(
                'KVMESH_ERR_MESSAGE_INVALID',
                `${contact.id} answered a STORE of ${page.length} entries with ${reply.payload.current.length}`,
              );
            }
            current.push(...reply.payload.current);
          }
          return { contact, current };
        } catch (err) {
          this.#c.logger.debug({ contact: contact.id, err: (err as Error).message }, 'STORE failed');
          return undefined;
        }
      }),
    );
    return answers.filter((a): a is Answer => a !== undefined);
  }

  /** Publishes `entry` at the k closest nodes to its key (a FIND_NODE lookup, then STORE); resolves to how many stored it. */
  async publish(entry: EntryPayload, check?: () => void): Promise<number> {
    const stored = await this.publishAnswers(entry, check);
    return stored.filter((s) => s.current[0]?.version === entry.version && s.current[0]?.ownerId === entry.ownerId)
      .length;
  }

  /** As `publish`, resolving with what each holder that answered holds for the key afterwards. */
  async publishAnswers(
    entry: EntryPayload,
    check?: () => void,
  ): Promise<{ contact: Contact; current: readonly EntryPayload[] }[]> {
    const result = await this.findNode(idOf(entry.key), this.#s.k, check);
    return this.storeAt(result.closest, [entry], false);
  }

  /** Looks up a random id in every bucket no lookup went through for refreshIntervalMs (§2.3). */
  async refresh(): Promise<void> {
    if (!this.#running) return;
    const stale = this.table.staleBuckets(this.#s.refreshIntervalMs);
    await Promise.allSettled(stale.map((prefix) => this.#refreshBucket(prefix)));
  }

  /**
   * §2.5: drops expired entries, publishes again the held entries no STORE
   * refreshed within the interval, and lets the owner side publish its own.
   */
  async republish(): Promise<void> {
    if (!this.#running) return;
    const now = this.#c.clock.now();
    this.entries.expire(now);
    const due = this.entries.takeDue(now, this.#s.republishIntervalMs);
    const work: Promise<unknown>[] = due.map((entry) => this.publish(entry));
    this.counters.republished += due.length;
    if (this.republishOwn !== undefined) work.push(this.republishOwn());
    await Promise.allSettled(work);
  }

  /**
   * A lookup of a random id in the bucket's range (§2.3). It ends once the
   * alpha closest answered rather than all k: what a refresh is for is
   * contacts in that range, which every answer there brings (k of them).
   */
  #refreshBucket(prefix: number): Promise<unknown> {
    const target = idInBucket(this.self.nodeId, prefix, this.#c.random.bytes(ID_BYTES));
    return this.findNode(target, this.#s.alpha).catch(() => undefined);
  }

  async #findNode(contact: Contact, target: Uint8Array): Promise<QueryAnswer<never>> {
    const reply = await this.request<NodesPayload>(contact, KADEMLIA_MESSAGES.findNode, {
      sender: toWire(this.self),
      target,
    });
    return { contacts: contactsOf(reply.payload.contacts) };
  }

  async #findValue(contact: Contact, key: string): Promise<QueryAnswer<EntryPayload>> {
    const reply = await this.request<ValuePayload>(contact, KADEMLIA_MESSAGES.findValue, {
      sender: toWire(this.self),
      key,
    });
    const { found, entry, contacts } = reply.payload;
    return { contacts: contactsOf(contacts), value: found && entry !== null && entry.key === key ? entry : undefined };
  }

  #onFindValue(p: SenderPayload & { key: string }, ctx: RpcContext): Message {
    const from = this.#heard(p.sender, ctx);
    const entry = this.entries.get(p.key, this.#c.clock.now());
    const contacts: WireContact[] = entry === undefined ? this.table.closest(idOf(p.key), this.#s.k, from?.id) : [];
    const payload: ValuePayload = {
      sender: toWire(this.self),
      found: entry !== undefined,
      entry: entry ?? null,
      contacts,
    };
    return { type: KADEMLIA_MESSAGES.value, payload };
  }

  #onStore(p: StorePayload, ctx: RpcContext): Message {
    this.#heard(p.sender, ctx);
    const now = this.#c.clock.now();
    this.counters.storesReceived += p.entries.length;
    const current = p.entries.map((entry) => this.entries.offer(entry, p.create, now, p.replaces));
    const payload: StoreReplyPayload = { sender: toWire(this.self), current };
    return { type: KADEMLIA_MESSAGES.storeReply, payload };
  }

  /** Every request names its sender: it goes into the routing table (§2.2). */
  #heard(sender: WireContact | null, _ctx: RpcContext): Contact | undefined {
    const contact = fromWire(sender);
    if (contact !== undefined) this.table.seen(contact);
    return contact;
  }

  /**
   * §2.5: a newly seen node closer to some keys than this node gets the
   * entries this node holds for which it is now among the k closest.
   */
  #onAdded(contact: Contact): void {
    if (!this.#running || this.entries.size === 0) return;
    if (!this.#arrived.some((c) => c.id === contact.id)) this.#arrived.push(contact);
    this.#handover ??= this.#c.clock.setTimeout(() => {
      this.#handover = undefined;
      const arrived = this.#arrived.splice(0);
      this.#track(this.#handOver(arrived));
    }, HANDOVER_DELAY_MS);
  }

  async #handOver(arrived: readonly Contact[]): Promise<void> {
    const now = this.#c.clock.now();
    const work: Promise<unknown>[] = [];
    for (const contact of arrived) {
      if (!this.table.has(contact.id)) continue;
      const entries = this.entries
        .all(now)
        .filter((entry) => this.closestKnown(idOf(entry.key), this.#s.k).some((c) => c.id === contact.id));
      if (entries.length > 0) work.push(this.storeAt([contact], entries, false));
    }
    await Promise.allSettled(work);
  }

  #counted(hops: number): void {
    this.counters.lookups++;
    this.counters.lookupHops += hops;
  }

  #callOptions(timeoutMs?: number): { timeoutMs: number; signal: AbortSignal } {
    return { timeoutMs: timeoutMs ?? this.#s.requestTimeoutMs, signal: this.#lifetime.signal };
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise.catch((err: unknown) => {
      if (this.#running) this.#c.logger.debug({ err: (err as Error)?.message }, 'Kademlia background task failed');
    });
    this.#background.add(tracked);
    void tracked.finally(() => this.#background.delete(tracked));
  }
}

/** What a FIND_VALUE lookup found. */
export interface FoundEntry {
  readonly entry: EntryPayload | undefined;
  /** Every distinct entry (owner and version) answered, this node's own first. */
  readonly entries: readonly EntryPayload[];
  /** The closest nodes that answered (and this node), closest first. */
  readonly closest: readonly Contact[];
  readonly hops: number;
}

function contactsOf(wire: readonly WireContact[]): Contact[] {
  const out: Contact[] = [];
  for (const w of wire) {
    const c = fromWire(w);
    if (c !== undefined) out.push(c);
  }
  return out;
}

function checkTarget(target: Uint8Array): Uint8Array {
  if (!(target instanceof Uint8Array) || target.length !== ID_BYTES) {
    throw new KvError('KVMESH_ERR_MESSAGE_INVALID', `a FIND_NODE target must be ${ID_BYTES} bytes`);
  }
  return target;
}
