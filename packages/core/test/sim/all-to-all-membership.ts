import { definePlugin } from '../../src/index.js';
import type {
  AnyPluginManifest,
  Clock,
  Member,
  Membership,
  MembershipBounds,
  MembershipListener,
  MemberState,
  MessageRegistry,
  NodeInfo,
  Rpc,
  Timer,
} from '../../src/index.js';

const PROTO = `
syntax = "proto3";
package kvmesh.test.alltoall;
message Entry { string id = 1; string address = 2; uint64 incarnation = 3; string state = 4; }
message Beat { Entry from = 1; repeated Entry known = 2; }
`;
const BEAT = 'kvmesh.test.alltoall.Beat';

interface Entry {
  id: string;
  address: string;
  incarnation: number;
  state: MemberState;
}

interface Options {
  periodMs: number;
  failAfterMs: number;
}

/**
 * The simplest membership that can pass the conformance suite: every node
 * beats to every other each period, with its whole table. O(N^2) messages;
 * for testing the harness and the suite, never for use.
 */
class AllToAllMembership implements Membership {
  readonly name = 'all-to-all';
  readonly bounds: MembershipBounds;
  readonly #rpc: Rpc;
  readonly #clock: Clock;
  readonly #options: Options;
  readonly #members = new Map<string, { member: Member; heardAt: number }>();
  readonly #listeners = new Set<MembershipListener>();
  #self: Member;
  #timer: Timer | undefined;
  #unlisten: (() => void) | undefined;

  constructor(options: Options, c: { rpc: Rpc; clock: Clock; node: NodeInfo; messages: MessageRegistry }) {
    this.#options = options;
    this.#rpc = c.rpc;
    this.#clock = c.clock;
    c.messages.define(PROTO);
    this.bounds = {
      detectionMs: options.failAfterMs + 2 * options.periodMs,
      toleratedLoss: 0.05,
      periodMs: options.periodMs,
      // Members ping only the members they hold alive: a split does not heal by itself.
      healMs: Infinity,
    };
    this.#self = { id: c.node.id, address: c.rpc.address, state: 'alive', incarnation: c.clock.now(), meta: {} };
    this.#members.set(this.#self.id, { member: this.#self, heardAt: 0 });
  }

  get self(): Member {
    return this.#self;
  }

  members(): readonly Member[] {
    return [...this.#members.values()].map((e) => e.member).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  on(listener: MembershipListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  start(): void {
    if (this.#timer) return;
    this.#self = { ...this.#self, address: this.#rpc.address };
    this.#members.set(this.#self.id, { member: this.#self, heardAt: 0 });
    this.#unlisten = this.#rpc.on(BEAT, (beat: { from: Entry; known: Entry[] }) => this.#receive(beat));
    this.#timer = this.#clock.setInterval(() => this.#tick(), this.#options.periodMs);
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#unlisten?.();
    this.#unlisten = undefined;
  }

  async join(seeds: readonly string[]): Promise<void> {
    for (const seed of seeds) this.#rpc.send(seed, BEAT, this.#beat());
  }

  async leave(): Promise<void> {
    this.#self = { ...this.#self, state: 'left' };
    this.#members.set(this.#self.id, { member: this.#self, heardAt: 0 });
    this.#tick();
  }

  #beat(): { from: Entry; known: Entry[] } {
    return { from: this.#entry(this.#self), known: this.members().map((m) => this.#entry(m)) };
  }

  #entry(m: Member): Entry {
    return { id: m.id, address: m.address, incarnation: m.incarnation, state: m.state };
  }

  #tick(): void {
    const now = this.#clock.now();
    for (const { member, heardAt } of this.#members.values()) {
      if (member.id !== this.#self.id && member.state === 'alive' && now - heardAt > this.#options.failAfterMs) {
        this.#set({ ...member, state: 'dead' }, now);
      }
    }
    const beat = this.#beat();
    for (const { member } of this.#members.values()) {
      if (member.id !== this.#self.id && member.state === 'alive') this.#rpc.send(member.address, BEAT, beat);
    }
  }

  #receive({ from, known }: { from: Entry; known: Entry[] }): void {
    const now = this.#clock.now();
    this.#merge(from, now, true);
    for (const entry of known) if (entry.id !== from.id) this.#merge(entry, now, false);
  }

  #merge(entry: Entry, now: number, direct: boolean): void {
    if (entry.id === this.#self.id) return;
    const known = this.#members.get(entry.id);
    const state = entry.state === 'left' ? 'left' : 'alive';
    if (!direct && entry.state !== 'alive' && entry.state !== 'left') return;
    if (
      known &&
      (entry.incarnation < known.member.incarnation ||
        (known.member.state !== 'alive' && entry.incarnation === known.member.incarnation && state === 'alive'))
    )
      return;
    if (known && !direct && known.member.state === state && known.member.incarnation === entry.incarnation) return;
    const member: Member = { id: entry.id, address: entry.address, incarnation: entry.incarnation, state, meta: {} };
    this.#set(member, direct || !known || entry.incarnation > known.member.incarnation ? now : known.heardAt);
  }

  #set(member: Member, heardAt: number): void {
    const previous = this.#members.get(member.id)?.member;
    this.#members.set(member.id, { member, heardAt });
    if (previous && previous.state === member.state && previous.incarnation === member.incarnation) return;
    for (const listener of this.#listeners) listener({ member, previous: previous?.state });
  }
}

/** Manifest of the test-only all-to-all membership. */
export function allToAllMembership(): AnyPluginManifest {
  return definePlugin({
    family: 'membership',
    name: 'all-to-all',
    description: 'Every node beats to every other each period (tests only).',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        periodMs: { type: 'integer', minimum: 1, default: 100, description: 'Beat period.' },
        failAfterMs: {
          type: 'integer',
          minimum: 1,
          default: 500,
          description: 'Silence after which a member is dead.',
        },
      },
    },
    needs: ['rpc', 'clock', 'node', 'messages'],
    create: (options: Options) => (components) => new AllToAllMembership(options, components),
  });
}
