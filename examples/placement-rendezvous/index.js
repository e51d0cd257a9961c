// A complete third-party placement in plain JavaScript: rendezvous hashing
// (highest random weight, Thaler & Ravishankar 1996). Keys fall into a fixed
// number of buckets; each bucket lives on the `replicas` data members that
// score highest for it. Every node computes the same table from the member
// ids alone, and a membership change moves only the buckets whose top
// scorers change. List this file in a config's "plugins" array and select
// placement "rendezvous"; docs/plugins.md walks through it.
import { KvError, definePlugin, viewEpoch } from '@kvmesh/core';

const OWN = Object.freeze({ kind: 'own' });

/** FNV-1a over the UTF-16 code units: small, and the same on every node. */
function fnv1a(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's finaliser: turns a combination of two hashes into a well-spread score. */
function mix(x) {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Members that hold data: a role in `roles` (no role counts as storage), not left. Crashed members stay. */
function dataMembers(members, roles) {
  return members
    .filter((m) => m.state !== 'left' && roles.includes(m.meta.role ?? 'storage'))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * The bucket table of a member list: for every bucket, the indices of its
 * `width` highest-scoring members, best first. Pure: same ids, same table.
 */
function buildTable(members, buckets, width) {
  const seeds = members.map((m) => fnv1a(m.id));
  const w = Math.min(width, members.length);
  const table = new Int32Array(buckets * w);
  const scores = new Float64Array(w);
  for (let b = 0; b < buckets; b++) {
    const salt = mix(b + 1);
    let filled = 0;
    for (let m = 0; m < seeds.length; m++) {
      const score = mix(seeds[m] ^ salt);
      if (filled === w && score <= scores[w - 1]) continue;
      let at = filled < w ? filled++ : w - 1;
      while (at > 0 && scores[at - 1] < score) {
        scores[at] = scores[at - 1];
        table[b * w + at] = table[b * w + at - 1];
        at--;
      }
      scores[at] = score;
      table[b * w + at] = m;
    }
  }
  return { members, table, width: w };
}

function quorum(option, replicas) {
  if (replicas === 0) return 0;
  if (option === 'all') return replicas;
  if (option === 'majority') return Math.floor(replicas / 2) + 1;
  return Math.min(option, replicas);
}

class RendezvousPlacement {
  name = 'rendezvous';
  #membership;
  #options;
  #seen;
  #view;
  #current;
  #sets = [];
  #epoch;
  #unsubscribe;

  constructor({ membership }, options) {
    this.#membership = membership;
    this.#options = options;
    this.#seen = membership.members();
    this.#current = dataMembers(this.#seen, options.dataRoles);
    this.#view = this.#build(this.#current);
    // Equal on every node that sees the same data members (core checks reads against it).
    this.#epoch = viewEpoch(this.#current.map((m) => m.id));
  }

  get epoch() {
    this.#sync();
    return this.#epoch;
  }

  start() {
    // members() is a snapshot that changes identity on every change, so #sync
    // compares it on each call; the subscription is for memberships that copy.
    this.#unsubscribe ??= this.#membership.on(() => (this.#seen = undefined));
  }

  stop() {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  async locate(key) {
    this.#sync();
    if (this.#current.length === 0) {
      throw new KvError('KVMESH_ERR_PLACEMENT_EMPTY', 'no data member in the view can hold the key');
    }
    return this.#set(this.#bucket(key));
  }

  admit(key) {
    this.#sync();
    if (this.#current.length === 0) return { kind: 'not-owner', epoch: this.#epoch, owners: [] };
    const set = this.#set(this.#bucket(key));
    // The membership's self names this node as the others see it.
    const self = this.#membership.self.id;
    return set.replicas.some((m) => m.id === self)
      ? OWN
      : { kind: 'not-owner', epoch: this.#epoch, owners: set.replicas };
  }

  plan(before, after) {
    const a = this.#build(dataMembers(before, this.#options.dataRoles));
    const b = this.#build(dataMembers(after, this.#options.dataRoles));
    // One move per (from, to) pair, holding every bucket that goes that way.
    const groups = new Map();
    for (let bucket = 0; bucket < this.#options.buckets; bucket++) {
      const from = this.#ids(a, bucket);
      const to = this.#ids(b, bucket);
      if (from.join() === to.join()) continue;
      const label = `${from.join()}>${to.join()}`;
      if (!groups.has(label)) groups.set(label, { from, to, buckets: new Set() });
      groups.get(label).buckets.add(bucket);
    }
    return [...groups.values()].map(({ from, to, buckets }) => ({
      range: `${buckets.size} of ${this.#options.buckets} buckets`,
      contains: (key) => buckets.has(this.#bucket(key)),
      from,
      to,
    }));
  }

  describe() {
    this.#sync();
    return {
      strategy: 'rendezvous',
      epoch: this.#epoch,
      buckets: this.#options.buckets,
      replicas: this.#options.replicas,
      members: this.#current.map((m) => ({ id: m.id, state: m.state })),
      drawing: this.#drawing(),
    };
  }

  /** How the dashboard draws the table: the buckets grouped by their replicas. */
  #drawing() {
    const groups = new Map();
    if (this.#current.length > 0) {
      for (let bucket = 0; bucket < this.#options.buckets; bucket++) {
        const members = this.#ids(this.#view, bucket);
        const id = members.join(' + ');
        const group = groups.get(id) ?? { id, members, weight: 0 };
        group.weight++;
        groups.set(id, group);
      }
    }
    return {
      shape: 'groups',
      caption: `${this.#options.buckets} buckets by their replicas`,
      groups: [...groups.values()],
    };
  }

  #bucket(key) {
    return fnv1a(key) % this.#options.buckets;
  }

  #build(members) {
    return buildTable(members, this.#options.buckets, this.#options.replicas + this.#options.fallbacks);
  }

  /** Replica ids of a bucket in a view, sorted (moves compare sets). */
  #ids(view, bucket) {
    const n = Math.min(this.#options.replicas, view.width);
    return Array.from(
      view.table.subarray(bucket * view.width, bucket * view.width + n),
      (i) => view.members[i].id,
    ).sort();
  }

  #sync() {
    const seen = this.#membership.members();
    if (seen === this.#seen) return;
    this.#seen = seen;
    const current = dataMembers(seen, this.#options.dataRoles);
    const sameIds = current.length === this.#current.length && current.every((m, i) => m.id === this.#current[i].id);
    if (!sameIds) {
      // The data members changed: a new table and a new epoch. A state change keeps both.
      this.#view = this.#build(current);
      this.#epoch = viewEpoch(current.map((m) => m.id));
    }
    this.#current = current;
    this.#sets = [];
  }

  /** The shared, frozen replica set of a bucket, built on first use. */
  #set(bucket) {
    let set = this.#sets[bucket];
    if (set === undefined) {
      const { table, width } = this.#view;
      const n = Math.min(this.#options.replicas, width);
      const row = Array.from(table.subarray(bucket * width, (bucket + 1) * width), (i) => this.#current[i]);
      const replicas = Object.freeze(row.slice(0, n));
      const writeQuorum = quorum(this.#options.writeQuorum, replicas.length);
      set = Object.freeze({
        replicas,
        fallbacks: Object.freeze(row.slice(n)),
        writeQuorum,
        // Every node at one epoch names the same replicas: a majority of them meets any other.
        conditionalWriteQuorum: Math.max(writeQuorum, quorum('majority', replicas.length)),
        readQuorum: quorum(this.#options.readQuorum, replicas.length),
        epoch: this.#epoch,
        hops: 0,
      });
      this.#sets[bucket] = set;
    }
    return set;
  }
}

const QUORUM = { oneOf: [{ type: 'integer', minimum: 1 }, { enum: ['all', 'majority'] }] };

export const plugin = definePlugin({
  family: 'placement',
  name: 'rendezvous',
  description:
    'Rendezvous (highest random weight) hashing: keys fall into buckets, each bucket on the data members that score highest for it.',
  version: '1.0.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      replicas: { type: 'integer', minimum: 1, default: 3, description: 'Data members that hold each key.' },
      fallbacks: {
        type: 'integer',
        minimum: 0,
        default: 1,
        description: 'Next-highest members that take hinted writes for a replica that is down.',
      },
      buckets: {
        type: 'integer',
        minimum: 1,
        maximum: 1048576,
        default: 8192,
        description: 'Key buckets (FNV-1a of the key modulo this). More buckets spread keys more evenly.',
      },
      writeQuorum: { ...QUORUM, default: 'majority', description: 'Acknowledgements a write needs.' },
      readQuorum: { ...QUORUM, default: 'majority', description: 'Replicas a read consults.' },
      dataRoles: {
        type: 'array',
        items: { type: 'string' },
        default: ['storage'],
        description: 'Member roles that hold data; a member without a role counts as storage.',
      },
    },
  },
  needs: ['membership'],
  create: (options) => (components) => new RendezvousPlacement(components, options),
});
