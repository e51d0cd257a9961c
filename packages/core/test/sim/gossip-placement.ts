import { KvError, definePlugin } from '../../src/index.js';
import type {
  Admission,
  AnyPluginManifest,
  Clock,
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
} from '../../src/index.js';

const PROTO = `
syntax = "proto3";
package kvmesh.test.gossipplacement;
message Peer { string id = 1; string address = 2; }
message Hello { Peer from = 1; repeated Peer known = 2; repeated string dead = 3; }
message Ping { }
`;
const HELLO = 'kvmesh.test.gossipplacement.Hello';
const PING = 'kvmesh.test.gossipplacement.Ping';
const REPLICAS = 2;

interface Peer {
  readonly id: string;
  readonly address: string;
}

interface Options {
  readonly periodMs: number;
  readonly seeds: readonly string[];
}

function position(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/**
 * A routed placement small enough to read in one go, for testing the
 * placement simulator without any real strategy: nodes join through a seed,
 * gossip the members they know (and the ones found dead) with one random
 * peer per period, and place a key on the first two known members at or
 * after its hash. A lookup asks the primary once (one hop) to check it
 * answers. Ownership changes are announced per arc.
 */
class GossipPlacement implements Placement {
  readonly name = 'gossip-test';
  readonly epoch = 1;
  readonly #c: { rpc: Rpc; clock: Clock; node: NodeInfo; random: Random };
  readonly #o: Options;
  readonly #known = new Map<string, Peer>();
  readonly #dead = new Set<string>();
  readonly #listeners = new Set<OwnershipListener>();
  #timer: Timer | undefined;
  #self!: Peer;
  #ring: Peer[] = [];

  constructor(
    options: Options,
    c: { rpc: Rpc; clock: Clock; node: NodeInfo; random: Random; messages: MessageRegistry },
  ) {
    this.#o = options;
    this.#c = c;
    c.messages.define(PROTO);
    c.rpc.handle(HELLO, (p: { from: Peer; known: Peer[]; dead: string[] }) => {
      this.#merge([p.from, ...p.known], p.dead);
      return { type: HELLO, payload: this.#hello() };
    });
    c.rpc.handle(PING, () => ({ type: PING, payload: {} }));
  }

  async start(): Promise<void> {
    this.#self = { id: this.#c.node.id, address: this.#c.rpc.address };
    this.#known.set(this.#self.id, this.#self);
    this.#rebuild();
    for (const seed of this.#o.seeds) {
      const reply = await this.#c.rpc.request<{ from: Peer; known: Peer[]; dead: string[] }>(
        seed,
        HELLO,
        this.#hello(),
      );
      this.#merge([reply.payload.from, ...reply.payload.known], reply.payload.dead);
    }
    this.#timer = this.#c.clock.setInterval(() => void this.#gossip(), this.#o.periodMs);
  }

  stop(): void {
    this.#timer?.cancel();
  }

  async locate(key: string): Promise<ReplicaSet> {
    for (let hops = 1; ; hops++) {
      const replicas = this.#replicasOf(position(key));
      if (replicas.length === 0) throw new KvError('KVMESH_ERR_PLACEMENT_EMPTY', 'no member');
      try {
        if (replicas[0]!.id !== this.#self.id) await this.#c.rpc.request(replicas[0]!.address, PING, {});
        return {
          replicas: replicas.map((p) => this.#member(p)),
          fallbacks: [],
          writeQuorum: replicas.length,
          conditionalWriteQuorum: replicas.length,
          readQuorum: 1,
          epoch: 1,
          hops: replicas[0]!.id === this.#self.id ? 0 : hops,
        };
      } catch {
        this.#merge([], [replicas[0]!.id]);
      }
    }
  }

  admit(key: string): Admission {
    return this.#replicasOf(position(key)).some((p) => p.id === this.#self.id)
      ? { kind: 'own' }
      : { kind: 'not-owner', epoch: 1 };
  }

  plan(): readonly Move[] {
    return [];
  }

  onOwnershipChange(listener: OwnershipListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  describe(): Record<string, unknown> {
    return { strategy: this.name, known: this.#known.size };
  }

  async #gossip(): Promise<void> {
    const others = [...this.#known.values()].filter((p) => p.id !== this.#self.id);
    if (others.length === 0) return;
    const peer = others[this.#c.random.int(others.length)]!;
    try {
      const reply = await this.#c.rpc.request<{ from: Peer; known: Peer[]; dead: string[] }>(
        peer.address,
        HELLO,
        this.#hello(),
      );
      this.#merge(reply.payload.known, reply.payload.dead);
    } catch {
      this.#merge([], [peer.id]);
    }
  }

  #hello(): { from: Peer; known: Peer[]; dead: string[] } {
    return { from: this.#self, known: [...this.#known.values()], dead: [...this.#dead] };
  }

  #merge(peers: readonly Peer[], dead: readonly string[]): void {
    let changed = false;
    for (const id of dead) {
      if (id === this.#self.id || this.#dead.has(id)) continue;
      this.#dead.add(id);
      changed = this.#known.delete(id) || changed;
    }
    for (const p of peers) {
      if (this.#dead.has(p.id) || this.#known.has(p.id)) continue;
      this.#known.set(p.id, { id: p.id, address: p.address });
      changed = true;
    }
    if (changed) this.#rebuild();
  }

  #rebuild(): void {
    const before = this.#ring;
    this.#ring = [...this.#known.values()].sort((a, b) => position(a.id) - position(b.id));
    if (before.length === 0 || this.#listeners.size === 0) return;
    const moves: Move[] = [];
    const cuts = [...new Set([...before, ...this.#ring].map((p) => position(p.id)))].sort((a, b) => a - b);
    for (let i = 0; i < cuts.length; i++) {
      const start = cuts[(i - 1 + cuts.length) % cuts.length]!;
      const end = cuts[i]!;
      const from = replicasIn(before, end).map((p) => p.id);
      const to = replicasIn(this.#ring, end).map((p) => p.id);
      if (from.join() === to.join() || ![...from, ...to].includes(this.#self.id)) continue;
      moves.push({
        range: `(${start}, ${end}]`,
        contains: (key) => inArc(position(key), start, end),
        from,
        to,
      });
    }
    const members = this.#ring.map((p) => this.#member(p));
    for (const listener of this.#listeners) listener({ epoch: 1, moves, members });
  }

  #replicasOf(hash: number): Peer[] {
    return replicasIn(this.#ring, hash);
  }

  #member(p: Peer): Member {
    return { id: p.id, address: p.address, state: 'alive', incarnation: 0, meta: {} };
  }
}

function inArc(x: number, start: number, end: number): boolean {
  if (start < end) return start < x && x <= end;
  if (start > end) return x > start || x <= end;
  return true;
}

function replicasIn(ring: readonly Peer[], hash: number): Peer[] {
  if (ring.length === 0) return [];
  let i = ring.findIndex((p) => position(p.id) >= hash);
  if (i < 0) i = 0;
  return Array.from({ length: Math.min(REPLICAS, ring.length) }, (_, k) => ring[(i + k) % ring.length]!);
}

/** The test placement's manifest; `contacts` records each member's contact (index or -1) as the hint gives them. */
export function gossipPlacement(contacts: Array<[number, number]> = []): AnyPluginManifest {
  return definePlugin({
    family: 'placement',
    name: 'gossip-test',
    description: 'Test placement: gossiped member lists, keys on the next two members.',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        periodMs: { type: 'integer', minimum: 1, default: 500, description: 'Gossip period.' },
        seeds: { type: 'array', items: { type: 'string' }, default: [], description: 'Where to join.' },
      },
    },
    needs: ['node', 'clock', 'random', 'messages', 'rpc'],
    create: (options: Options) => (c) => new GossipPlacement(options, c),
    simulation: {
      options: (member, _members, options, contact) => {
        contacts.push([member.index, contact?.index ?? -1]);
        return { ...options, seeds: contact ? [contact.address] : [] };
      },
      periodMs: (options) => options['periodMs'] as number,
    },
  });
}
