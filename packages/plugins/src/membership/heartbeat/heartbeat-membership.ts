import {
  KvError,
  isKvError,
  type Clock,
  type Logger,
  type Member,
  type Membership,
  type MembershipBounds,
  type MembershipListener,
  type MessageRegistry,
  type NodeInfo,
  type Random,
  type Rpc,
  type Timer,
  type Transport,
} from '@kvmesh/core';
import { apiUrl } from '../support/addresses.js';
import { RefusedClaims } from '../support/claims.js';
import { firstAnswer } from '../support/first-answer.js';
import { MemberEvents } from '../support/member-events.js';
import { MemberTable } from '../support/member-table.js';
import { membershipProto } from '../support/proto-source.js';
import { claimRefusal, claimsMoreThan, holdsMoreThan } from './heartbeat-claims.js';
import { entrySize, freshness, toEntry, type HeartbeatEntry, type HeartbeatRow } from './heartbeat-table.js';

export interface HeartbeatMembershipOptions {
  /** Every this many ms a member increments its counter and sends its table to `fanout` random peers. */
  readonly heartbeatMs: number;
  /** Peers each table goes to per period. */
  readonly fanout: number;
  /** A member whose counter has not grown for this long (ms) is dead. */
  readonly failAfterMs: number;
  /** A dead or departed member is forgotten once its counter has not grown for this long (ms). */
  readonly cleanupAfterMs: number;
}

export interface HeartbeatMembershipComponents {
  readonly node: NodeInfo;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly messages: MessageRegistry;
  readonly rpc: Rpc;
  readonly transport: Pick<Transport, 'maxMessageBytes'>;
}

export const HEARTBEAT_MESSAGES = {
  gossip: 'kvmesh.membership.heartbeat.HeartbeatGossip',
} as const;

/** Room left in a datagram for the frame header and the message envelope. */
const FRAME_SLACK_BYTES = 96;
/** Failure checks per heartbeat period: a death is noticed at most a quarter period late. */
const CHECKS_PER_PERIOD = 4;
/**
 * Every this many periods a member also sends its table to one member it
 * believes dead, so two sides of a healed partition find each other again
 * before forgetting: a fixed rhythm rather than a chance, so the time to
 * heal has a bound (`bounds.healMs`).
 */
const DEAD_PEER_EVERY_TICKS = 5;

/**
 * Gossip-style failure detection (van Renesse, Minsky, Hayden, "A Gossip-Style
 * Failure Detection Service", Middleware 1998), dyschord's `heartbeat`.
 *
 * Every `heartbeatMs` a member increments its own counter and sends its table
 * to `fanout` random alive peers; a receiver keeps the highest counter per
 * member (a restart starts a higher generation: the clock time at start). A
 * member whose counter has not grown for `failAfterMs` is dead, and
 * forgotten after `cleanupAfterMs`. Each entry carries how long ago its
 * counter last grew (measured on each forwarder's own clock, no clock
 * synchronisation needed), so every member dates the last sign of life at
 * about the same instant however many gossip hops the news took: detection
 * is within `failAfterMs` and a quarter period of the crash on every member.
 */
export class HeartbeatMembership implements Membership {
  readonly name = 'heartbeat';
  readonly bounds: MembershipBounds;
  readonly #c: HeartbeatMembershipComponents;
  readonly #options: HeartbeatMembershipOptions;
  readonly #events: MemberEvents;
  readonly #table: MemberTable;
  readonly #rows = new Map<string, HeartbeatRow>();
  /** Rows forgotten recently, so a stale copy still circulating does not bring them back. */
  readonly #forgotten = new Map<string, { generation: number; counter: number; at: number }>();
  readonly #self: HeartbeatRow;
  readonly #refused: RefusedClaims;
  /** When each member was last told what this node holds about it (see #tellBack). */
  readonly #toldAt = new Map<string, number>();
  #seeds: readonly string[] = [];
  #running = false;
  #started = false;
  #timers: Timer[] = [];

  constructor(components: HeartbeatMembershipComponents, options: HeartbeatMembershipOptions) {
    if (options.cleanupAfterMs < options.failAfterMs) {
      throw new KvError(
        'KVMESH_ERR_CONFIG_INVALID',
        `heartbeat cleanupAfterMs (${options.cleanupAfterMs}) must be at least failAfterMs (${options.failAfterMs})`,
      );
    }
    this.#c = components;
    this.#options = options;
    this.#events = new MemberEvents(components.logger);
    this.#refused = new RefusedClaims('heartbeat', components.clock, components.logger);
    this.#table = new MemberTable(this.#events);
    this.bounds = Object.freeze({
      detectionMs: options.failAfterMs + options.heartbeatMs,
      toleratedLoss: 0.05,
      periodMs: options.heartbeatMs,
      // A member held dead is sent a table within DEAD_PEER_EVERY_TICKS periods, then gossip spreads it.
      healMs: (DEAD_PEER_EVERY_TICKS + 3) * options.heartbeatMs,
    });
    const meta = { api: apiUrl(components.node.address), role: components.node.role };
    this.#self = {
      id: components.node.id,
      address: components.rpc.address,
      generation: components.clock.now(),
      counter: 0,
      left: false,
      meta,
      heardAt: components.clock.now(),
      state: 'alive',
      sizeBytes: entrySize(components.node.id, components.rpc.address, meta),
    };
    components.messages.define(membershipProto('heartbeat'));
    components.rpc.on(HEARTBEAT_MESSAGES.gossip, (payload: { entries: HeartbeatEntry[] }, context) => {
      if (this.#running) this.#merge(payload.entries, context.from);
    });
    components.rpc.handle(HEARTBEAT_MESSAGES.gossip, (payload: { entries: HeartbeatEntry[] }, context) => {
      if (this.#running) this.#merge(payload.entries, context.from);
      return { type: HEARTBEAT_MESSAGES.gossip, payload: { entries: this.#running ? this.#gossip() : [] } };
    });
    this.#publish(this.#self);
  }

  get self(): Member {
    return this.#table.get(this.#self.id)!;
  }

  members(): readonly Member[] {
    return this.#table.sorted();
  }

  /** Entries refused since start: absurd generations or counters, claims about this member it cannot refute. */
  get refusedClaims(): number {
    return this.#refused.count;
  }

  on(listener: MembershipListener): () => void {
    return this.#events.on(listener);
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    const now = this.#c.clock.now();
    // A run of a node begins when it is built; only a start after a stop begins another generation.
    Object.assign(this.#self, {
      generation: this.#started ? Math.max(now, this.#self.generation + 1) : this.#self.generation,
      counter: 0,
      left: false,
      heardAt: now,
      state: 'alive',
    });
    this.#started = true;
    this.#publish(this.#self);
    const { heartbeatMs } = this.#options;
    this.#timers = [
      this.#c.clock.setInterval(() => this.#tick(), heartbeatMs),
      this.#c.clock.setInterval(() => this.#check(), Math.max(1, Math.floor(heartbeatMs / CHECKS_PER_PERIOD))),
    ];
  }

  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    for (const timer of this.#timers) timer.cancel();
    this.#timers = [];
  }

  /** Exchanges tables with the seeds (a request each); resolves when one answered. They stay the fallback when no peer is alive. */
  async join(seeds: readonly string[]): Promise<void> {
    const targets = seeds.filter((s) => s !== this.#c.rpc.address);
    this.#seeds = targets;
    await firstAnswer(targets, async (seed) => {
      const reply = await this.#c.rpc.request<{ entries: HeartbeatEntry[] }>(seed, HEARTBEAT_MESSAGES.gossip, {
        entries: this.#gossip(),
      });
      if (this.#running) this.#merge(reply.payload.entries, seed);
    });
  }

  /** Marks this member `left` with a last counter increment and sends that to every alive peer. */
  async leave(): Promise<void> {
    if (!this.#running || this.#self.left) return;
    this.#self.left = true;
    this.#self.state = 'left';
    this.#self.counter++;
    this.#self.heardAt = this.#c.clock.now();
    this.#publish(this.#self);
    const entries = this.#gossip();
    for (const row of this.#rows.values()) {
      if (row.state === 'alive') this.#send(row.address, entries);
    }
  }

  #tick(): void {
    if (this.#self.left) return;
    const now = this.#c.clock.now();
    this.#self.counter++;
    this.#self.heardAt = now;
    const alive: HeartbeatRow[] = [];
    const dead: HeartbeatRow[] = [];
    for (const row of this.#rows.values()) {
      if (row.state === 'alive') alive.push(row);
      else if (row.state === 'dead') dead.push(row);
    }
    const random = this.#c.random;
    const targets = random
      .shuffle(alive)
      .slice(0, this.#options.fanout)
      .map((r) => r.address);
    if (targets.length === 0) targets.push(...this.#seeds);
    if (dead.length > 0 && this.#self.counter % DEAD_PEER_EVERY_TICKS === 0) {
      targets.push(dead[random.int(dead.length)]!.address);
    }
    if (targets.length === 0) return;
    const entries = this.#gossip();
    for (const to of targets) this.#send(to, entries);
  }

  #send(to: string, entries: HeartbeatEntry[]): void {
    let batch = entries;
    for (;;) {
      try {
        this.#c.rpc.send(to, HEARTBEAT_MESSAGES.gossip, { entries: batch });
        return;
      } catch (err) {
        // The size estimate was short for this codec: halve the table (own entry first) and try again.
        if (isKvError(err, 'KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE') && batch.length > 1) {
          batch = batch.slice(0, Math.ceil(batch.length / 2));
          continue;
        }
        this.#c.logger.debug({ to, err: (err as Error).message }, 'gossip not sent');
        return;
      }
    }
  }

  /** This member's entry, then every other entry not known dead; a random part of them when all would not fit. */
  #gossip(): HeartbeatEntry[] {
    const now = this.#c.clock.now();
    const others = [...this.#rows.values()].filter((r) => r.state !== 'dead');
    const budget = this.#c.transport.maxMessageBytes - FRAME_SLACK_BYTES - this.#self.sizeBytes;
    let total = 0;
    for (const row of others) total += row.sizeBytes;
    const chosen = total <= budget ? others : this.#fit(others, budget);
    return [toEntry(this.#self, now), ...chosen.map((row) => toEntry(row, now))];
  }

  /**
   * Half the budget goes to the rows whose counters grew most recently (the
   * news that keeps members alive elsewhere), the rest to a random choice of
   * the others, so every row still travels now and then.
   */
  #fit(rows: HeartbeatRow[], budget: number): HeartbeatRow[] {
    const out: HeartbeatRow[] = [];
    let used = 0;
    const take = (row: HeartbeatRow, limit: number): void => {
      if (used + row.sizeBytes > limit) return;
      used += row.sizeBytes;
      out.push(row);
    };
    const freshest = [...rows].sort((a, b) => b.heardAt - a.heardAt);
    let i = 0;
    for (; i < freshest.length && used + freshest[i]!.sizeBytes <= budget / 2; i++) take(freshest[i]!, budget / 2);
    for (const row of this.#c.random.shuffle(freshest.slice(i))) take(row, budget);
    return out;
  }

  /**
   * Merges a table. Its first entry is its sender's own (see #gossip): when
   * this node holds more about the sender than the sender says (a departure,
   * a later counter or generation that someone else claimed), it tells the
   * sender, which refutes with a new generation.
   */
  #merge(entries: readonly HeartbeatEntry[], from: string): void {
    const now = this.#c.clock.now();
    for (let i = 0; i < entries.length; i++) {
      let entry = entries[i]!;
      if (entry.id === '' || entry.address === '') continue;
      if (entry.id === this.#self.id) {
        this.#hearSelf(entry, from);
        continue;
      }
      const known = this.#rows.get(entry.id);
      const refusal = claimRefusal(entry, known?.generation, now);
      if (refusal !== undefined) {
        this.#refused.refused({ member: entry.id, from }, refusal);
        continue;
      }
      // Only a member starts a new generation: a departure claimed at a later one than known is a claim about the known one.
      if (known !== undefined && entry.left && entry.generation > known.generation) {
        entry = { ...entry, generation: known.generation };
      }
      if (i === 0 && known !== undefined) this.#tellBack(known, entry);
      const gone = this.#forgotten.get(entry.id);
      if (gone !== undefined) {
        if (freshness(gone, entry) === 'stale') continue;
        this.#forgotten.delete(entry.id);
      }
      const heardAt = now - Math.min(entry.ageMs, this.#options.cleanupAfterMs);
      const row = this.#rows.get(entry.id);
      if (row === undefined) {
        const added: HeartbeatRow = {
          id: entry.id,
          address: entry.address,
          generation: entry.generation,
          counter: entry.counter,
          left: entry.left,
          meta: { ...entry.meta },
          heardAt,
          state: entry.left ? 'left' : heardAt + this.#options.failAfterMs < now ? 'dead' : 'alive',
          sizeBytes: entrySize(entry.id, entry.address, entry.meta),
        };
        this.#rows.set(added.id, added);
        this.#publish(added);
        continue;
      }
      const fresh = freshness(row, entry);
      if (fresh === 'stale') continue;
      if (fresh === 'newer-generation') {
        row.left = entry.left;
        row.heardAt = heardAt;
      } else {
        row.left ||= entry.left;
        row.heardAt = Math.max(row.heardAt, heardAt);
      }
      const before = { state: row.state, generation: row.generation };
      row.generation = entry.generation;
      row.counter = entry.counter;
      row.state = row.left ? 'left' : now - row.heardAt > this.#options.failAfterMs ? row.state : 'alive';
      let visible = before.state !== row.state || before.generation !== row.generation;
      if (row.address !== entry.address || !sameMeta(row.meta, entry.meta)) {
        row.address = entry.address;
        row.meta = { ...entry.meta };
        row.sizeBytes = entrySize(row.id, row.address, row.meta);
        visible = true;
      }
      // Most merges only raise a counter, which no listener sees.
      if (visible) this.#publish(row);
    }
  }

  /**
   * Sends `row` to its member when the member's own entry says less than
   * the row (it did not leave, its counter or generation is lower): someone
   * claimed for it what only it may say, and only it can refute that. At
   * most once per period per member.
   */
  #tellBack(row: HeartbeatRow, own: HeartbeatEntry): void {
    if (!holdsMoreThan(row, own)) return;
    const now = this.#c.clock.now();
    const last = this.#toldAt.get(row.id);
    if (last !== undefined && now - last < this.#options.heartbeatMs) return;
    this.#toldAt.set(row.id, now);
    this.#send(row.address, [toEntry(row, now)]);
  }

  /**
   * An entry about this member. Only this member raises its generation and
   * counter, and only it leaves: an entry that says it did (more than it
   * did) is refuted with a new generation above the claimed one, unless that
   * generation is absurd (refused, as every other member refuses it).
   */
  #hearSelf(entry: HeartbeatEntry, from: string): void {
    const self = this.#self;
    if (!this.#running || self.left) return;
    if (!claimsMoreThan(self, entry)) return;
    const now = this.#c.clock.now();
    const refusal = claimRefusal(entry, self.generation, now);
    if (refusal !== undefined) {
      this.#refused.refused({ member: entry.id, from }, `about this member: ${refusal}`);
      return;
    }
    Object.assign(self, {
      generation: Math.max(now, entry.generation + 1, self.generation + 1),
      counter: 0,
      heardAt: now,
    });
    this.#c.logger.info(
      { from, generation: self.generation, claimed: { generation: entry.generation, left: entry.left } },
      'refuted a claim about this member with a new generation',
    );
    this.#publish(self);
  }

  #check(): void {
    const now = this.#c.clock.now();
    const { failAfterMs, cleanupAfterMs } = this.#options;
    for (const row of this.#rows.values()) {
      const silentMs = now - row.heardAt;
      if (row.state === 'alive' && silentMs > failAfterMs) {
        row.state = 'dead';
        this.#c.logger.info({ id: row.id, silentMs }, 'member declared dead: its heartbeat counter stopped');
        this.#publish(row);
      } else if (row.state !== 'alive' && silentMs > cleanupAfterMs) {
        this.#rows.delete(row.id);
        this.#table.delete(row.id);
        this.#forgotten.set(row.id, { generation: row.generation, counter: row.counter, at: now });
      }
    }
    for (const [id, gone] of this.#forgotten) {
      if (now - gone.at > cleanupAfterMs) this.#forgotten.delete(id);
    }
    for (const [id, at] of this.#toldAt) {
      if (now - at > this.#options.heartbeatMs) this.#toldAt.delete(id);
    }
  }

  #publish(row: HeartbeatRow): void {
    this.#table.set({
      id: row.id,
      address: row.address,
      state: row.state,
      incarnation: row.generation,
      meta: row.meta,
    });
  }
}

function sameMeta(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}
