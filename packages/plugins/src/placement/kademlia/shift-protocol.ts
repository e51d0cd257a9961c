import { KvError, isKvError, sameVersion } from '@kvmesh/core';
import type { Clock, KeyTransfer, Logger, Random, Rpc, RpcContext, StoredRecord, Timer, Version } from '@kvmesh/core';
import { LRUCache } from 'lru-cache';
import { contactOf, fromWire, toWire } from './contact.js';
import type { Contact } from './contact.js';
import type { FoundEntry, KademliaNode } from './kademlia-node.js';
import { KADEMLIA_MESSAGES } from './messages.js';
import { idOf } from './node-id.js';
import type {
  EntryPayload,
  KeyTokenPayload,
  ReleaseOutcome,
  ReleaseReplyPayload,
  SenderPayload,
  ShiftReplyPayload,
} from './messages.js';
import type { OwnershipJournal } from './ownership-journal.js';

/** Owners followed through MOVED answers in one lookup of a key before giving up (a key moving faster than we chase it). */
const MAX_FORWARDS = 8;
/** Retry-after a node answers while it is itself taking the key over. */
const INCOMING_RETRY_MS = 50;
/** How often a node whose release was not confirmed asks the old owner again. */
const DOUBT_RETRY_MS = 1_000;
/** Wait between two tries of a release that got no answer. */
const RELEASE_RETRY_MS = 100;
/** Tokens of freezes that ended without a release, remembered to answer a late release. */
const EXPIRED_TOKENS = 10_000;

export interface ShiftSettings {
  readonly freezeMs: number;
  readonly shiftAfterAccesses: number;
  readonly forwardTtlMs: number;
  readonly forwardMaxKeys: number;
}

export interface ShiftComponents {
  readonly rpc: Rpc;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
}

/** A freeze this node (the owner) holds on a key for the node taking it over. */
interface Freeze {
  readonly token: string;
  readonly accessor: Contact;
  readonly newVersion: number;
  readonly untilMs: number;
  readonly timer: Timer;
  /** The record handed over (undefined: none held), once read. */
  snapshot: StoredRecord | undefined;
  readonly done: Promise<void>;
  readonly resolve: () => void;
}

interface Owned {
  version: number;
  /** The node that accessed the key last, and how many times in a row. */
  streakId: string;
  streak: number;
  freeze: Freeze | undefined;
  /**
   * True from the end of a freeze without a release until this node's entry
   * at `version` reached a majority of the holders: the taker's entry may be
   * the newest there meanwhile, and the key is served by nobody until one of
   * the two is the newest at a majority.
   */
  unconfirmed: boolean;
}

interface Forward {
  readonly to: Contact;
  readonly token: string;
  /** A record newer than the one handed over, sent with the release (and again on a repeated release). */
  readonly newer: StoredRecord | null;
}

/** A hand-over this node took part in as the new owner whose release it could not confirm. */
interface Doubt {
  readonly owner: Contact;
  readonly token: string;
  readonly version: number;
  /** Version of the record copied here (removed again if the old owner kept the key). */
  readonly recordVersion: Version | undefined;
}

/** Where `locate` found a key in mode shift. */
export type ShiftAnswer =
  | { readonly kind: 'here'; readonly hops: number }
  | { readonly kind: 'remote'; readonly owner: Contact; readonly hops: number };

/** Counters for `describe()`. */
export interface ShiftCounters {
  shiftsIn: number;
  shiftsOut: number;
  created: number;
  declined: number;
  /** Hand-overs to this node the old owner answered "expired" (its freeze ended first). */
  expired: number;
  /** Freezes of keys owned here that ended without a release (the taker died, stalled or aborted). */
  freezesEnded: number;
  forwarded: number;
}

/**
 * KeyShift's ownership shift (seed 000, "Function"), on top of the DHT.
 *
 * Every key has one owner; the DHT keeps an entry per key (STORE on the k
 * closest nodes to the key's id) naming the owner and a version. When node
 * A accesses a key owned by B:
 * 1. A asks B (ShiftRequest). B freezes the key for A (at most `freezeMs`:
 *    its placement answers `frozen` to every other accessor), waits for
 *    writes of the key running there, and returns its record and a token.
 * 2. A stores the record (core's KeyTransfer: put if newer, version kept).
 * 3. A publishes the entry, version + 1, naming itself.
 * 4. A releases B with the token (Release). B gives the key up, removes its
 *    copy (only versions not newer than the one handed over) and keeps a
 *    forward pointer to A: requests still reaching B are sent on to A.
 * 5. A owns the key.
 * If A does not release in time, B's freeze ends and B keeps the key: it
 * publishes a higher version naming itself, and serves the key once a
 * majority of the holders took it (A's entry may be the newest there until
 * then). A late release is answered "expired", and A removes what it copied
 * once B's entry reached a majority. A release whose answer A never
 * got leaves A in doubt: it serves nothing for the key and asks B again until
 * B says. A key with no entry is created at the node that accesses it: it
 * claims the key at the closest node to the key (STORE with create).
 */
export class ShiftProtocol {
  readonly counters: ShiftCounters = {
    shiftsIn: 0,
    shiftsOut: 0,
    created: 0,
    declined: 0,
    expired: 0,
    freezesEnded: 0,
    forwarded: 0,
  };
  readonly #dht: KademliaNode;
  readonly #s: ShiftSettings;
  readonly #c: ShiftComponents;
  readonly #journal: OwnershipJournal;
  readonly #owned = new Map<string, Owned>();
  readonly #forwards: LRUCache<string, Forward>;
  /** Keys this node is taking over right now: locates of them wait for it. */
  readonly #incoming = new Map<string, Promise<ShiftAnswer | undefined>>();
  readonly #doubts = new Map<string, Doubt>();
  readonly #expiredTokens: LRUCache<string, true>;
  /** Keys this node is deciding right now whether it answers for (`#adopt`): one decision per key at a time. */
  readonly #adopting = new Map<string, Promise<'own' | 'unsure' | 'not-owner'>>();
  #transfer: KeyTransfer | undefined;
  #doubtTimer: Timer | undefined;
  #stopped = false;
  /** Whether this node reached the overlay (or has nobody to join): until then it claims no key. */
  #joined = false;
  /**
   * Without a durable journal, a node does not know after a restart which
   * hand-overs it was part of: a take-over it began may still hold the old
   * owner's freeze, which ends at most `freezeMs` later (and the old owner
   * then publishes that it kept the key). Until then it answers for no key
   * it does not own (frozen), and takes none up.
   */
  #amnesiaUntilMs = 0;

  constructor(dht: KademliaNode, settings: ShiftSettings, components: ShiftComponents, journal: OwnershipJournal) {
    this.#dht = dht;
    this.#s = settings;
    this.#c = components;
    this.#journal = journal;
    const perf = { now: () => components.clock.now() };
    // Bounded by maxSize rather than max: lru-cache then grows its slots as needed instead of
    // allocating them all up front (a simulator runs thousands of nodes in one process).
    this.#forwards = new LRUCache<string, Forward>({
      maxSize: settings.forwardMaxKeys,
      sizeCalculation: () => 1,
      ttl: settings.forwardTtlMs,
      ttlResolution: 0,
      perf,
    });
    this.#expiredTokens = new LRUCache<string, true>({ maxSize: EXPIRED_TOKENS, sizeCalculation: () => 1 });
  }

  /** Keys this node owns. */
  get ownedCount(): number {
    return this.#owned.size;
  }

  get frozenCount(): number {
    let n = 0;
    for (const o of this.#owned.values()) if (o.freeze !== undefined) n++;
    return n;
  }

  get forwardCount(): number {
    return this.#forwards.size;
  }

  get doubtCount(): number {
    return this.#doubts.size;
  }

  useKeyTransfer(transfer: KeyTransfer): void {
    this.#transfer = transfer;
  }

  /** Registers the shift messages and restores what the journal kept. */
  async start(): Promise<void> {
    if (!this.#journal.durable) this.#amnesiaUntilMs = this.#c.clock.now() + this.#s.freezeMs;
    const restored = await this.#journal.load();
    // Served once joined() published their entries to a majority again: a key may have been kept after a
    // failed hand-over, its entry not yet the newest at a majority, when this node stopped.
    for (const [key, version] of restored.owned) {
      this.#owned.set(key, { version, streakId: this.#dht.self.id, streak: 0, freeze: undefined, unconfirmed: true });
    }
    for (const r of restored.released) {
      this.#forwards.set(r.key, { to: contactOf(r.toId, r.toAddress), token: r.token, newer: null });
    }
    // Take-overs cut short by a stop or a crash: the old owner says whether it gave the key up.
    for (const p of restored.pending) {
      this.#doubts.set(p.key, {
        owner: contactOf(p.ownerId, p.ownerAddress),
        token: p.token,
        version: p.version,
        recordVersion: p.recordVersion,
      });
    }
    if (this.#doubts.size > 0) this.#scheduleDoubts();
    const { rpc } = this.#c;
    rpc.handle(KADEMLIA_MESSAGES.shiftRequest, (p: SenderPayload & { key: string }, ctx) => this.#onShift(p, ctx));
    rpc.handle(KADEMLIA_MESSAGES.release, (p: KeyTokenPayload) => this.#onRelease(p));
    rpc.handle(KADEMLIA_MESSAGES.abort, (p: KeyTokenPayload) => {
      const owned = this.#owned.get(p.key);
      if (owned?.freeze?.token === p.token) this.#endFreeze(p.key, owned, 'aborted');
      return { type: KADEMLIA_MESSAGES.pong, payload: { sender: toWire(this.#dht.self) } };
    });
    this.#dht.republishOwn = () => this.#republishOwn();
  }

  /**
   * The node joined the overlay (a seed answered), or has no seed to join
   * through: it may claim keys from now on (before, it knows too few of the
   * holders to count a majority). Publishes again the entries of the keys
   * the journal restored: holders that expired or replaced them while this
   * node was down learn that it answers for them again.
   */
  joined(): void {
    if (this.#joined) return;
    this.#joined = true;
    if (this.#owned.size > 0 && !this.#stopped) {
      for (const [key, owned] of this.#owned) this.#dht.track(this.#publishOwned(key, owned.version));
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#doubtTimer?.cancel();
    for (const owned of this.#owned.values()) {
      owned.freeze?.timer.cancel();
      owned.freeze?.resolve();
    }
    await this.#journal.close();
  }

  /**
   * `Placement.admit` in mode shift: `own` for a key owned here and not
   * frozen; `frozen` while it is handed over (or taken over here); `moved`
   * to the new owner while the forward pointer lasts; else `not-owner`.
   */
  admission(
    key: string,
  ):
    | { kind: 'own' }
    | { kind: 'frozen'; retryAfterMs: number }
    | { kind: 'moved'; to: Contact }
    | { kind: 'not-owner' } {
    const owned = this.#owned.get(key);
    if (owned !== undefined) {
      if (owned.freeze !== undefined) {
        return { kind: 'frozen', retryAfterMs: Math.max(1, owned.freeze.untilMs - this.#c.clock.now()) };
      }
      if (owned.unconfirmed) return { kind: 'frozen', retryAfterMs: INCOMING_RETRY_MS };
      return { kind: 'own' };
    }
    if (this.#incoming.has(key)) return { kind: 'frozen', retryAfterMs: INCOMING_RETRY_MS };
    if (this.#doubts.has(key)) return { kind: 'frozen', retryAfterMs: DOUBT_RETRY_MS };
    const forward = this.#forwards.get(key);
    if (forward !== undefined) return { kind: 'moved', to: forward.to };
    return { kind: 'not-owner' };
  }

  /**
   * Where `key` is served for an access from this node: here (it owned the
   * key, took it over, or created it), or at its owner (who declined to hand
   * it over yet, or cannot be reached: the caller's request to it fails).
   * @throws KvError KVMESH_ERR_KV_FROZEN when a hand-over here is in doubt,
   *   or the key stayed frozen until `check` gave up; KVMESH_ERR_RPC_TIMEOUT from `check`.
   */
  async locate(
    key: string,
    check: () => void,
    sleep: (ms: number) => Promise<void>,
    fresh = false,
  ): Promise<ShiftAnswer> {
    let hops = 0;
    for (;;) {
      check();
      // stop() ends every freeze without clearing it: a wait below would then end at once, for ever.
      if (this.#stopped) throw new KvError('KVMESH_ERR_KERNEL_STATE', 'the kademlia placement is stopped');
      const owned = this.#owned.get(key);
      if (owned !== undefined) {
        if (owned.unconfirmed && owned.freeze === undefined) {
          // A hand-over of it just failed: this node serves it once the holders took its entry again.
          await sleep(INCOMING_RETRY_MS);
          continue;
        }
        if (owned.freeze === undefined) {
          this.#touch(owned, this.#dht.self.id);
          return { kind: 'here', hops };
        }
        // Another node is taking the key over: wait until it did (then this node is an accessor) or gave up.
        await Promise.race([owned.freeze.done, sleep(Math.max(1, owned.freeze.untilMs - this.#c.clock.now()))]);
        continue;
      }
      if (this.#doubts.has(key)) {
        throw new KvError(
          'KVMESH_ERR_KV_FROZEN',
          `key ${JSON.stringify(key)} was being handed over to this node and the old owner has not confirmed it yet; retry in a moment`,
        );
      }
      let running = this.#incoming.get(key);
      if (running === undefined) {
        running = this.#shiftIn(key, check, sleep, fresh);
        this.#incoming.set(key, running);
        const forget = (): void => {
          if (this.#incoming.get(key) === running) this.#incoming.delete(key);
        };
        running.then(forget, forget);
      }
      const answer = await running;
      if (answer !== undefined) return { ...answer, hops: answer.hops + hops };
      hops++;
    }
  }

  /** One attempt to find and take over `key`; undefined: try again (the owner kept it, or it changed hands). */
  async #shiftIn(
    key: string,
    check: () => void,
    sleep: (ms: number) => Promise<void>,
    fresh: boolean,
  ): Promise<ShiftAnswer | undefined> {
    const self = this.#dht.self;
    const progress = { hops: 0 };
    // Nodes that answered, in this attempt, that they do not own the key, with the newest entry
    // naming them seen by then: a newer one (they took the key since) is asked again.
    const disowned = new Map<string, number>([[self.id, Infinity]]);
    const seen = { entries: [] as readonly EntryPayload[] };
    // A forward pointer here (this node gave the key up, or a hand-over to it failed) is where to ask
    // first, unless the last answer was refused: then the DHT says.
    let owner = fresh ? undefined : this.#forwards.get(key)?.to;
    if (owner === undefined || owner.id === self.id) {
      const found = await this.#dht.findValue(key, check);
      progress.hops += found.hops;
      seen.entries = found.entries;
      if (found.entry === undefined) {
        const claimed = await this.#claim(key, found.closest, 1, check, progress);
        if (claimed === undefined) return { kind: 'here', hops: progress.hops };
        seen.entries = [claimed];
        owner = contactOf(claimed.ownerId, claimed.ownerAddress);
      } else {
        owner = contactOf(found.entry.ownerId, found.entry.ownerAddress);
      }
    }
    for (let forwards = 0; forwards < MAX_FORWARDS; forwards++) {
      check();
      if (owner.id === self.id) {
        // An entry names this node, which does not own the key (it gave it up and the new owner's
        // entry has not reached every holder, or a claim of it lost): every holder is asked who does.
        const next = await this.#lookAgain(key, disowned, seen, check, progress);
        if (next === undefined) return { kind: 'here', hops: progress.hops };
        owner = next;
        continue;
      }
      let reply: ShiftReplyPayload;
      try {
        progress.hops++;
        const message = await this.#dht.request<ShiftReplyPayload>(owner, KADEMLIA_MESSAGES.shiftRequest, {
          sender: toWire(self),
          key,
        });
        reply = message.payload;
      } catch (err) {
        if (isKvError(err, 'KVMESH_ERR_RPC_ABORTED')) throw err;
        // The owner holds the only copy: it is the key's only place, and the caller's request to it fails typed.
        return { kind: 'remote', owner, hops: progress.hops };
      }
      switch (reply.outcome) {
        case 'SHIFT_GRANTED':
          return this.#takeOver(key, owner, reply, progress.hops, check);
        case 'SHIFT_DECLINED':
          this.counters.declined++;
          return { kind: 'remote', owner, hops: progress.hops };
        case 'SHIFT_FROZEN':
          await sleep(Math.max(1, Math.min(reply.retryAfterMs, this.#s.freezeMs)));
          continue;
        case 'SHIFT_MOVED': {
          const to = fromWire(reply.to);
          if (to === undefined) return undefined;
          this.counters.forwarded++;
          owner = to;
          continue;
        }
        default: {
          // The named owner does not own it: every holder is asked who does.
          disowned.set(owner.id, newestNaming(seen.entries, owner.id));
          const next = await this.#lookAgain(key, disowned, seen, check, progress);
          if (next === undefined) return { kind: 'here', hops: progress.hops };
          owner = next;
          continue;
        }
      }
    }
    return undefined;
  }

  /**
   * Asks every holder of `key`'s entry (not only the first to answer) who
   * owns it. When the newest entry names this node and it holds the key's
   * record, it owns the key (`#adopt`). Else the next owner to ask is the
   * one the newest entry names, unless that node disowned the key at that
   * entry's version or a newer one (`disowned`). With none left, nobody
   * answers for the key: this node takes it up at a version above every one
   * seen, in place of the newest entry naming another node (a conditional
   * claim: holders that hold another entry refuse, so an owner whose entry
   * reached a majority keeps the key). Resolves the owner to ask next, or
   * undefined when this node owns the key now.
   * @throws KvError KVMESH_ERR_KV_FROZEN while this node cannot tell whether
   *   it owns the key; KVMESH_ERR_PLACEMENT_EMPTY when its claim lost to an
   *   entry naming a node that disowned the key.
   */
  async #lookAgain(
    key: string,
    disowned: ReadonlyMap<string, number>,
    seen: { entries: readonly EntryPayload[] },
    check: () => void,
    progress: { hops: number },
  ): Promise<Contact | undefined> {
    const found = await this.#dht.findValue(key, check, true);
    progress.hops += found.hops;
    seen.entries = found.entries;
    const stale = (e: EntryPayload): boolean => e.version <= (disowned.get(e.ownerId) ?? -1);
    const self = this.#dht.self.id;
    const byVersion = [...found.entries].sort((a, b) => b.version - a.version);
    const unsure = (): KvError =>
      new KvError(
        'KVMESH_ERR_KV_FROZEN',
        `key ${JSON.stringify(key)}: this node cannot tell yet whether it still owns it (it restarted moments ago, or too few holders answered); retry in a moment`,
      );
    const forgetting = this.#c.clock.now() < this.#amnesiaUntilMs;
    if (byVersion[0]?.ownerId === self) {
      // The newest entry names this node: it owns the key if it holds its record.
      if (forgetting) throw unsure();
      const adopted = await this.#adopt(key, found);
      if (adopted === 'own') return undefined;
      if (adopted === 'unsure') throw unsure();
    }
    const next = byVersion.find((e) => !stale(e));
    if (next !== undefined) return contactOf(next.ownerId, next.ownerAddress);
    if (forgetting) throw unsure();
    const replaced = byVersion.find((e) => e.ownerId !== self) ?? byVersion[0];
    const claimed = await this.#claim(key, found.closest, (byVersion[0]?.version ?? 0) + 1, check, progress, replaced);
    if (claimed === undefined) return undefined;
    seen.entries = [claimed];
    if (stale(claimed)) {
      throw new KvError(
        'KVMESH_ERR_PLACEMENT_EMPTY',
        `key ${JSON.stringify(key)}: its entry holders disagree on its owner, and the one they name says it does not own it; retry in a moment`,
      );
    }
    return contactOf(claimed.ownerId, claimed.ownerAddress);
  }

  /**
   * Claims `key` for this node at `version`: first at the closest node that
   * answers (STORE with create for a new key: taken only if that node holds
   * no entry; with `replaces` for a take-up: taken only where the held entry
   * is that one or older), then at the other holders. This node owns the key
   * once a majority of the holders it knows of (`holdersOf`, departed ones
   * counted) took the entry and none answered a newer one: two claims of one
   * key cannot both win, and a node cut off from the others claims nothing.
   * Resolves undefined when this node owns the key now, else with the entry
   * that won.
   * @throws KvError KVMESH_ERR_PLACEMENT_EMPTY when too few holders answered.
   */
  async #claim(
    key: string,
    closest: readonly Contact[],
    version: number,
    check: () => void,
    rounds: { hops: number },
    replaces?: EntryPayload,
  ): Promise<EntryPayload | undefined> {
    const self = this.#dht.self;
    const entry: EntryPayload = {
      key,
      ownerId: self.id,
      ownerAddress: self.address,
      version,
      publishedMs: this.#c.clock.now(),
    };
    const target = idOf(key);
    if (!this.#joined) {
      throw new KvError(
        'KVMESH_ERR_PLACEMENT_EMPTY',
        `key ${JSON.stringify(key)}: this node has not joined the overlay yet, so it cannot record a new owner; retry in a moment`,
      );
    }
    const needed = this.#majority(key);
    const known = this.#dht.closestKnown(target, this.#dht.settings.k);
    const targets = [...closest, ...known.filter((c) => !closest.some((d) => d.id === c.id))];
    let accepted = 0;
    let winner: EntryPayload | undefined;
    const count = (answers: readonly { current: readonly EntryPayload[] }[]): void => {
      for (const answer of answers) {
        const current = answer.current[0];
        if (current === undefined) continue;
        if (current.ownerId === self.id && current.version === version) accepted++;
        else if (winner === undefined || current.version > winner.version) winner = current;
      }
    };
    // A take-up asks every holder at once: the first may well hold another entry (a claim of this
    // node that lost), which a majority of the others outvotes.
    if (replaces !== undefined) {
      rounds.hops++;
      count(await this.#dht.storeAt(targets, [entry], false, replaces));
    }
    for (let i = 0; replaces === undefined && i < targets.length && accepted === 0 && winner === undefined; i++) {
      check();
      const home = targets[i]!;
      if (home.id !== self.id) rounds.hops++;
      count(await this.#dht.storeAt([home], [entry], version === 1, replaces));
      if (winner !== undefined) return winner;
      if (accepted === 0) continue;
      const others = targets.filter((c) => c.id !== home.id);
      if (others.some((c) => c.id !== self.id)) rounds.hops++;
      // Waited for before the first write is acknowledged here: sent without waiting, a faulty network
      // lost acknowledged counter increments (kvmesh sim kv, kademlia-local, seed 4), as a node that
      // misses the home can find no entry at the other holders yet and claim the key too.
      count(await this.#dht.storeAt(others, [entry], version === 1, replaces));
    }
    if (winner !== undefined && (winner.version > version || accepted < needed)) {
      this.#dht.entries.withdraw(entry);
      return winner;
    }
    if (accepted < needed) {
      // The entry stays where it was taken (this node's own store first): left there, it would name
      // this node at a version above the real owner's, and spread from there when contacts come back.
      this.#dht.entries.withdraw(entry);
      throw new KvError(
        'KVMESH_ERR_PLACEMENT_EMPTY',
        `key ${JSON.stringify(key)}: ${accepted} of the ${needed} nodes needed to record its owner answered; retry once the overlay is whole again`,
      );
    }
    await this.#journal.owned(key, version);
    this.#owned.set(key, { version, streakId: self.id, streak: 1, freeze: undefined, unconfirmed: false });
    this.#forwards.delete(key);
    this.counters.created++;
    this.#c.logger.debug({ key, version, holders: accepted, needed }, 'claimed a key');
    return undefined;
  }

  /**
   * A hand-over to this node at `version` did not happen: publishes, for the
   * old owner, the entry it keeps the key under once its freeze ends
   * (`version` + 1, naming it), so that the holders this node's entry
   * reached do not keep naming this node above the old owner should the old
   * owner fail before it publishes that entry itself. The copy of the record
   * stored here (`recordVersion`) is removed only once a majority of the
   * holders took that entry: until then this node's entry may be the newest
   * at a majority (its publication may have reached more holders than
   * answered, or spread from one when contacts came back), and should the
   * old owner then fail, this copy is the key's only one.
   */
  #supersede(key: string, owner: Contact, version: number, recordVersion: Version | undefined): void {
    const entry: EntryPayload = {
      key,
      ownerId: owner.id,
      ownerAddress: owner.address,
      version: version + 1,
      publishedMs: this.#c.clock.now(),
    };
    const transfer = this.#transfer;
    this.#dht.track(
      this.#dht.publish(entry).then(async (stored) => {
        if (recordVersion === undefined || transfer === undefined || this.#stopped || stored < this.#majority(key)) {
          return;
        }
        // Taken over again since (the same record may have come back with it): the copy is the key's now.
        if (this.#owned.has(key) || this.#incoming.has(key) || this.#doubts.has(key)) return;
        await transfer.purge(key, recordVersion);
      }),
    );
  }

  /** How many of the nodes this node knows to hold `key`'s entry make a majority. */
  #majority(key: string): number {
    return Math.floor(this.#dht.holdersOf(idOf(key), this.#dht.settings.k).length / 2) + 1;
  }

  /** Steps 2-5 of a shift, once the owner granted it. */
  async #takeOver(
    key: string,
    owner: Contact,
    grant: ShiftReplyPayload,
    hops: number,
    check: () => void,
  ): Promise<ShiftAnswer | undefined> {
    const grantedAt = this.#c.clock.now();
    const transfer = this.#transfer;
    const abort = (): void => {
      this.#dht.track(
        this.#dht.request(owner, KADEMLIA_MESSAGES.abort, { sender: toWire(this.#dht.self), key, token: grant.token }),
      );
    };
    if (transfer === undefined) {
      abort();
      return { kind: 'remote', owner, hops };
    }
    const record = grant.record ?? undefined;
    const recordVersion = record?.version;
    try {
      await this.#journal.pending({
        key,
        ownerId: owner.id,
        ownerAddress: owner.address,
        token: grant.token,
        version: grant.version,
        recordVersion,
      });
      if (record !== undefined) {
        await transfer.store(record);
      } else {
        // The owner holds nothing: neither may this node (a copy left by an earlier, failed hand-over).
        const stale = await transfer.read(key);
        if (stale !== undefined) await transfer.purge(key, stale.version);
      }
    } catch (err) {
      abort();
      if (recordVersion !== undefined) await transfer.purge(key, recordVersion).catch(() => false);
      await this.#journal.abandoned(key).catch(() => undefined);
      throw err;
    }
    const self = this.#dht.self;
    const entry: EntryPayload = {
      key,
      ownerId: self.id,
      ownerAddress: self.address,
      version: grant.version,
      publishedMs: this.#c.clock.now(),
    };
    // The new entry must reach a majority of the holders before the old owner is released: else a
    // node that asks the holders later could find the old owner's entry at most of them, hear it
    // gave the key up, and take the key up anew without its data.
    const published = await this.#dht.publish(entry, check).catch((err: unknown) => {
      this.#c.logger.debug({ key, err: (err as Error).message }, 'publishing a new owner entry failed');
      return 0;
    });
    if (published < this.#majority(key)) {
      abort();
      // As a claim that lost: left in this node's store, the entry would name it above the old owner.
      this.#dht.entries.withdraw(entry);
      this.#supersede(key, owner, grant.version, recordVersion);
      await this.#journal.abandoned(key).catch(() => undefined);
      this.#forwards.set(key, { to: owner, token: grant.token, newer: null });
      return { kind: 'remote', owner, hops };
    }
    const deadline = grantedAt + Math.max(1, grant.freezeMs);
    const released = await this.#release(owner, key, grant.token, deadline);
    if (released === undefined) {
      this.#doubts.set(key, { owner, token: grant.token, version: grant.version, recordVersion });
      this.#scheduleDoubts();
      throw new KvError(
        'KVMESH_ERR_KV_FROZEN',
        `key ${JSON.stringify(key)}: ${owner.id} did not confirm handing it over in time; retry in a moment`,
      );
    }
    return (await this.#settle(key, owner, released, grant.version, recordVersion))
      ? { kind: 'here', hops }
      : undefined;
  }

  /** Applies the answer to a release: own the key (done, or unknown at the old owner) or undo the copy (expired). */
  async #settle(
    key: string,
    owner: Contact,
    released: ReleaseReplyPayload,
    version: number,
    recordVersion: Version | undefined,
  ): Promise<boolean> {
    let keptBy: Contact | undefined = released.outcome === 'RELEASE_EXPIRED' ? owner : undefined;
    if (released.outcome === 'RELEASE_UNKNOWN') {
      // The old owner forgot the hand-over: this node owns the key only if no newer owner took it since
      // (the old owner may have kept it when its freeze ended, and handed it on).
      const found = await this.#dht.findValue(key, undefined, true);
      const newest = newestOf(found.entries);
      if (newest !== undefined && (newest.version > version || newest.ownerId !== this.#dht.self.id)) {
        keptBy = contactOf(newest.ownerId, newest.ownerAddress);
      }
    }
    if (keptBy !== undefined) {
      this.counters.expired++;
      if (released.outcome === 'RELEASE_EXPIRED') this.#supersede(key, owner, version, recordVersion);
      else if (recordVersion !== undefined) await this.#transfer?.purge(key, recordVersion).catch(() => false);
      await this.#journal.abandoned(key);
      // The key stayed elsewhere: askers this node's entry still sends here go on there.
      this.#forwards.set(key, { to: keptBy, token: '', newer: null });
      return false;
    }
    if (released.newer !== null && this.#transfer !== undefined) await this.#transfer.store(released.newer);
    await this.#journal.owned(key, version);
    this.#owned.set(key, { version, streakId: this.#dht.self.id, streak: 1, freeze: undefined, unconfirmed: false });
    this.#forwards.delete(key);
    this.counters.shiftsIn++;
    this.#c.logger.debug({ key, from: owner.id, version }, 'took a key over');
    return true;
  }

  /** Sends the release until the old owner answers or `deadlineMs` passes; undefined when it never answered. */
  async #release(
    owner: Contact,
    key: string,
    token: string,
    deadlineMs: number,
  ): Promise<ReleaseReplyPayload | undefined> {
    const payload = { sender: toWire(this.#dht.self), key, token };
    for (;;) {
      try {
        const reply = await this.#dht.request<ReleaseReplyPayload>(owner, KADEMLIA_MESSAGES.release, payload);
        return reply.payload;
      } catch (err) {
        if (isKvError(err, 'KVMESH_ERR_RPC_ABORTED')) return undefined;
        const left = deadlineMs - this.#c.clock.now();
        if (left <= 0) return undefined;
        try {
          await this.#c.clock.sleep(Math.min(RELEASE_RETRY_MS, left), this.#dht.lifetime);
        } catch {
          return undefined;
        }
      }
    }
  }

  #scheduleDoubts(): void {
    if (this.#doubtTimer !== undefined || this.#stopped) return;
    this.#doubtTimer = this.#c.clock.setTimeout(() => {
      this.#doubtTimer = undefined;
      this.#dht.track(this.#resolveDoubts());
    }, DOUBT_RETRY_MS);
  }

  async #resolveDoubts(): Promise<void> {
    for (const [key, doubt] of [...this.#doubts]) {
      const released = await this.#release(doubt.owner, key, doubt.token, 0);
      if (released === undefined) continue;
      this.#doubts.delete(key);
      await this.#settle(key, doubt.owner, released, doubt.version, doubt.recordVersion).catch((err: unknown) =>
        this.#c.logger.warn({ key, err: (err as Error).message }, 'settling a hand-over failed'),
      );
    }
    if (this.#doubts.size > 0) this.#scheduleDoubts();
  }

  /** Owner side of step 1. */
  async #onShift(
    p: SenderPayload & { key: string },
    _ctx: RpcContext,
  ): Promise<{ type: string; payload: ShiftReplyPayload }> {
    const accessor = fromWire(p.sender);
    const reply = (r: Partial<ShiftReplyPayload> & Pick<ShiftReplyPayload, 'outcome'>) => ({
      type: KADEMLIA_MESSAGES.shiftReply,
      payload: { token: '', version: 0, record: null, freezeMs: 0, retryAfterMs: 0, to: null, ...r },
    });
    const key = p.key;
    let owned = this.#owned.get(key);
    if (accessor === undefined) throw new KvError('KVMESH_ERR_MESSAGE_INVALID', 'a ShiftRequest names no sender');
    if (owned === undefined) {
      const forward = this.#forwards.get(key);
      if (forward !== undefined) return reply({ outcome: 'SHIFT_MOVED', to: toWire(forward.to) });
      if (this.#incoming.has(key) || this.#doubts.has(key)) {
        return reply({
          outcome: 'SHIFT_FROZEN',
          retryAfterMs: this.#doubts.has(key) ? DOUBT_RETRY_MS : INCOMING_RETRY_MS,
        });
      }
      const forgetting = this.#amnesiaUntilMs - this.#c.clock.now();
      if (forgetting > 0) return reply({ outcome: 'SHIFT_FROZEN', retryAfterMs: forgetting });
      const adopted = await this.#adopt(key);
      if (adopted === 'unsure') return reply({ outcome: 'SHIFT_FROZEN', retryAfterMs: DOUBT_RETRY_MS });
      owned = adopted === 'own' ? this.#owned.get(key) : undefined;
      if (owned === undefined) return reply({ outcome: 'SHIFT_NOT_OWNER' });
    }
    const now = this.#c.clock.now();
    if (owned.freeze !== undefined) {
      return reply({ outcome: 'SHIFT_FROZEN', retryAfterMs: Math.max(1, owned.freeze.untilMs - now) });
    }
    if (owned.unconfirmed) return reply({ outcome: 'SHIFT_FROZEN', retryAfterMs: INCOMING_RETRY_MS });
    this.#touch(owned, accessor.id);
    if (
      owned.streak < this.#s.shiftAfterAccesses ||
      this.#transfer === undefined ||
      accessor.id === this.#dht.self.id
    ) {
      return reply({ outcome: 'SHIFT_DECLINED', to: toWire(this.#dht.self) });
    }
    const token = hex(this.#c.random.bytes(16));
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const freeze: Freeze = {
      token,
      accessor,
      newVersion: owned.version + 1,
      untilMs: now + this.#s.freezeMs,
      timer: this.#c.clock.setTimeout(() => {
        if (owned.freeze === freeze) this.#endFreeze(key, owned, 'expired');
      }, this.#s.freezeMs),
      snapshot: undefined,
      done,
      resolve,
    };
    // Frozen first, then read: writes of the key running here finish before the read (core's key
    // lock), and any later write asks placement first and is refused.
    owned.freeze = freeze;
    let record: StoredRecord | undefined;
    try {
      record = await this.#transfer.read(key);
    } catch (err) {
      if (owned.freeze === freeze) this.#endFreeze(key, owned, 'aborted');
      throw err;
    }
    if (owned.freeze !== freeze) return reply({ outcome: 'SHIFT_FROZEN', retryAfterMs: 1 });
    freeze.snapshot = record;
    return reply({
      outcome: 'SHIFT_GRANTED',
      token,
      version: freeze.newVersion,
      record: record ?? null,
      freezeMs: Math.max(1, freeze.untilMs - this.#c.clock.now()),
    });
  }

  /**
   * A node asked for a key it does not know it owns, while it holds a
   * record of the key: it owns the key (it restarted without its journal,
   * or lost it) when the newest entry at a majority of the holders names it
   * and its take-up of that entry at the next version wins, or when those
   * hold no entry at all and its claim of the key wins. It then answers for
   * the key again, rather than let the key be taken up anew without the
   * record. `unsure`: it cannot tell yet (it has not joined the
   * overlay, or too few holders answered); the asker retries.
   */
  async #adopt(key: string, found?: FoundEntry): Promise<'own' | 'unsure' | 'not-owner'> {
    // Two at once would both claim the key, the second over the first (and over a freeze granted since).
    const running = this.#adopting.get(key);
    if (running !== undefined) return running;
    const attempt = this.#adoptOnce(key, found);
    this.#adopting.set(key, attempt);
    try {
      return await attempt;
    } finally {
      if (this.#adopting.get(key) === attempt) this.#adopting.delete(key);
    }
  }

  async #adoptOnce(key: string, found?: FoundEntry): Promise<'own' | 'unsure' | 'not-owner'> {
    // Called from this node's own take-over of the key (found given), or for an asker (not).
    const taking = found !== undefined;
    const transfer = this.#transfer;
    if (transfer === undefined || this.#stopped) return 'not-owner';
    const record = await transfer.read(key).catch(() => undefined);
    if (record === undefined) return 'not-owner';
    if (!this.#joined) return 'unsure';
    const lookup = found ?? (await this.#dht.findValue(key, undefined, true).catch(() => undefined));
    if (lookup === undefined || lookup.closest.length < this.#majority(key)) return 'unsure';
    const self = this.#dht.self;
    const newest = newestOf(lookup.entries);
    if (newest !== undefined && newest.ownerId !== self.id) return 'not-owner';
    if (this.#owned.has(key)) return 'own';
    if (this.#forwards.has(key) || this.#stopped) return 'not-owner';
    // A hand-over to this node in doubt, or its own take-over of the key running: it may own the key
    // in a moment, and an asker told not-owner could take the key up without the record.
    if (this.#doubts.has(key) || (!taking && this.#incoming.has(key))) return 'unsure';
    if (newest === undefined) {
      // Nobody holds an entry (they expired while this node was away): this node's record is the key's.
      const claimed = await this.#claim(key, lookup.closest, 1, () => undefined, { hops: 0 }).catch(() => null);
      if (claimed === null) return 'unsure';
      return claimed === undefined ? 'own' : 'not-owner';
    }
    // Answered for under a version above the newest, taken only where that entry is held: this node
    // may have been a taker that was never released, whose old owner kept the key and publishes its
    // own entry at that same version once it can; of the two, the one a majority took first holds.
    const version = newest.version + 1;
    const claimed = await this.#claim(key, lookup.closest, version, () => undefined, { hops: 0 }, newest).catch(
      () => null,
    );
    if (claimed === undefined) {
      this.#c.logger.info(
        { key, version },
        'answering for a key again: this node holds its record and the holders name it the owner',
      );
      return 'own';
    }
    return claimed !== null && claimed.ownerId !== self.id && claimed.version >= version ? 'not-owner' : 'unsure';
  }

  /** Owner side of step 4. */
  async #onRelease(p: KeyTokenPayload): Promise<{ type: string; payload: ReleaseReplyPayload }> {
    const reply = (outcome: ReleaseOutcome, newer: StoredRecord | null = null) => ({
      type: KADEMLIA_MESSAGES.releaseReply,
      payload: { outcome, newer },
    });
    const key = p.key;
    const owned = this.#owned.get(key);
    const freeze = owned?.freeze;
    if (owned !== undefined && freeze !== undefined && freeze.token === p.token) {
      freeze.timer.cancel();
      // Given up first (journal, forward pointer), then the copy removed: a crash in between leaves an
      // extra copy here, never a key nobody owns.
      this.#owned.delete(key);
      await this.#journal.released(key, freeze.accessor, p.token);
      let newer: StoredRecord | null = null;
      const transfer = this.#transfer!;
      const snapshot = freeze.snapshot;
      try {
        const purged = snapshot === undefined ? false : await transfer.purge(key, snapshot.version);
        if (!purged) {
          const current = await transfer.read(key);
          if (current !== undefined && (snapshot === undefined || !sameVersion(current.version, snapshot.version))) {
            newer = current;
            await transfer.purge(key, current.version);
          }
        }
      } catch (err) {
        this.#c.logger.warn(
          { key, err: (err as Error).message },
          'removing a handed-over record failed; a stale copy stays',
        );
      }
      this.#forwards.set(key, { to: freeze.accessor, token: p.token, newer });
      this.counters.shiftsOut++;
      freeze.resolve();
      return reply('RELEASE_DONE', newer);
    }
    const forward = this.#forwards.get(key);
    if (forward !== undefined && forward.token === p.token) return reply('RELEASE_DONE', forward.newer);
    if (owned !== undefined || forward !== undefined || this.#expiredTokens.has(p.token))
      return reply('RELEASE_EXPIRED');
    // A token this node does not know (it restarted without a durable journal): whatever record it
    // holds goes with the answer, and the taker asks the holders whether its hand-over is the newest.
    const held = await this.#transfer?.read(key).catch(() => undefined);
    return reply('RELEASE_UNKNOWN', held ?? null);
  }

  /** The freeze ends without a release: this node keeps the key, under a version above the one it offered. */
  #endFreeze(key: string, owned: Owned, why: 'expired' | 'aborted'): void {
    const freeze = owned.freeze;
    if (freeze === undefined) return;
    freeze.timer.cancel();
    owned.freeze = undefined;
    owned.version = freeze.newVersion + 1;
    owned.streak = 0;
    owned.unconfirmed = true;
    this.#expiredTokens.set(freeze.token, true);
    this.counters.freezesEnded++;
    freeze.resolve();
    this.#c.logger.info(
      { key, accessor: freeze.accessor.id, why },
      'a key stayed with this node: its hand-over did not finish',
    );
    const version = owned.version;
    this.#dht.track(this.#journal.owned(key, version).then(() => this.#publishOwned(key, version)));
  }

  /**
   * Publishes this node's entry of `key` at `version` until a majority of
   * the holders took it, or the key moved on: the taker's entry may have
   * reached them, and it must not outlive a hand-over that did not happen.
   * A key kept after a failed hand-over is served again once that majority
   * took the entry; when a majority holds instead an entry at least as new
   * naming another node (it took the key up, or took it over for good after
   * a restart), this node, which served nothing since, gives the key up.
   */
  async #publishOwned(key: string, version: number): Promise<void> {
    const self = this.#dht.self;
    while (!this.#stopped && this.#owned.get(key)?.version === version) {
      const entry = { key, ownerId: self.id, ownerAddress: self.address, version, publishedMs: this.#c.clock.now() };
      const answers = await this.#dht.publishAnswers(entry).catch(() => []);
      const needed = this.#majority(key);
      let stored = 0;
      let other: EntryPayload | undefined;
      let others = 0;
      for (const { current } of answers) {
        const held = current[0];
        if (held === undefined) continue;
        if (held.ownerId === self.id && held.version === version) stored++;
        else if (held.version >= version && held.ownerId !== self.id) {
          others++;
          if (other === undefined || held.version > other.version) other = held;
        }
      }
      const owned = this.#owned.get(key);
      if (owned === undefined || owned.version !== version) return;
      if (stored >= needed) {
        owned.unconfirmed = false;
        return;
      }
      if (owned.unconfirmed && other !== undefined && others >= needed && owned.freeze === undefined) {
        await this.#giveUp(key, owned, other);
        return;
      }
      await this.#c.clock.sleep(DOUBT_RETRY_MS, this.#dht.lifetime);
    }
  }

  /** A key kept after a failed hand-over, whose holders name `winner` instead: this node no longer owns it. */
  async #giveUp(key: string, owned: Owned, winner: EntryPayload): Promise<void> {
    const to = contactOf(winner.ownerId, winner.ownerAddress);
    if (this.#owned.get(key) !== owned) return;
    this.#owned.delete(key);
    await this.#journal.released(key, to, '');
    this.#forwards.set(key, { to, token: '', newer: null });
    this.#c.logger.info(
      { key, to: winner.ownerId, version: winner.version },
      'gave a key up: its hand-over failed, and a majority of the holders name another owner',
    );
  }

  async #republishOwn(): Promise<void> {
    const self = this.#dht.self;
    const now = this.#c.clock.now();
    const work: Promise<unknown>[] = [];
    for (const [key, owned] of this.#owned) {
      if (owned.freeze !== undefined || owned.unconfirmed) continue;
      work.push(
        this.#dht.publish({
          key,
          ownerId: self.id,
          ownerAddress: self.address,
          version: owned.version,
          publishedMs: now,
        }),
      );
    }
    await Promise.allSettled(work);
  }

  #touch(owned: Owned, accessorId: string): void {
    if (owned.streakId === accessorId) owned.streak++;
    else {
      owned.streakId = accessorId;
      owned.streak = 1;
    }
  }
}

/** The highest version among `entries` naming `ownerId` (0: none does). */
function newestNaming(entries: readonly EntryPayload[], ownerId: string): number {
  let version = 0;
  for (const e of entries) if (e.ownerId === ownerId && e.version > version) version = e.version;
  return version;
}

/** The entry of the highest version (the first of them on a tie). */
function newestOf(entries: readonly EntryPayload[]): EntryPayload | undefined {
  let newest: EntryPayload | undefined;
  for (const e of entries) if (newest === undefined || e.version > newest.version) newest = e;
  return newest;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
