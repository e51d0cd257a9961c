import { join } from 'node:path';
import {
  KvError,
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
  type ViewParameters,
} from '@kvmesh/core';
import { apiUrl, canonicalHostPort, peerUri } from '../support/addresses.js';
import { RefusedClaims } from '../support/claims.js';
import { noAnswer } from '../support/first-answer.js';
import { AtomicJsonFile, readJsonFile } from '../support/json-file.js';
import { MemberEvents, byId, freezeMember, memberChanged } from '../support/member-events.js';
import { membershipProto } from '../support/proto-source.js';
import { senderFactsRefusal } from './sender-facts.js';
import {
  NO_PARAMETERS,
  compareVersions,
  parametersText,
  parseParameters,
  parseView,
  type ViewEntry,
  type ViewVersion,
} from './view.js';

export interface StaticMembershipOptions {
  /** Every member as `host:port` (or `id@host:port`): an array, or one comma-separated string (the CSE138 `VIEW`). */
  readonly view: string | readonly string[];
  /** Every this many ms, exchange view epochs with one random member, so a member that missed a change catches up. */
  readonly syncIntervalMs: number;
}

export interface StaticMembershipComponents {
  readonly node: NodeInfo;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly messages: MessageRegistry;
  readonly rpc: Rpc;
}

export const STATIC_MESSAGES = {
  exchange: 'kvmesh.membership.staticview.StaticExchange',
} as const;

/** Name of the file in the node's data directory that keeps the latest view and its epoch. */
export const STATIC_STATE_FILE = 'static-view.json';

interface WireExchange {
  readonly epoch: number;
  readonly view: readonly string[];
  readonly sender: {
    readonly id: string;
    readonly incarnation: number;
    readonly meta: Record<string, string>;
    readonly left: boolean;
  } | null;
  /** Absent from a node of an older version: none. */
  readonly parameters?: Readonly<Record<string, number>>;
}

/** What a member said about itself. */
interface PeerFacts {
  readonly incarnation: number;
  readonly meta: Readonly<Record<string, string>>;
  readonly left: boolean;
}

/**
 * Membership administered by an operator (the CSE138 store): the members are
 * the `view` from the config until a view change (`setView`) replaces them.
 * A view change gets the next epoch and is sent to every member of the old
 * and the new view; members exchange epochs every `syncIntervalMs` with a
 * random peer, so one that missed a change pulls it from a peer that has it.
 * The latest view survives a restart in `<dataDir>/static-view.json`.
 *
 * There is no failure detection: every member of the view is `alive` unless
 * it announced a graceful leave (then `left`, until it runs again); a node
 * that a view change removed sees itself `left`. A member's id is its
 * `host:port` unless the view names it (`id@host:port`).
 *
 * A view change may carry parameters for the placement (`viewParameters`,
 * such as a replication factor): they travel, are compared and persist with
 * the view, and a view change that names none keeps the current ones.
 */
export class StaticMembership implements Membership {
  readonly name = 'static';
  readonly bounds: MembershipBounds;
  readonly #options: StaticMembershipOptions;
  readonly #c: StaticMembershipComponents;
  readonly #events: MemberEvents;
  readonly #hostPort: string;
  readonly #file: AtomicJsonFile;
  readonly #peers = new Map<string, PeerFacts>();
  readonly #refused: RefusedClaims;
  #version: ViewVersion;
  #members = new Map<string, Member>();
  #sorted: readonly Member[] = [];
  #selfId = '';
  #incarnation: number;
  #left = false;
  #running = false;
  #started = false;
  #timer: Timer | undefined;
  #syncing = false;

  constructor(components: StaticMembershipComponents, options: StaticMembershipOptions) {
    this.#c = components;
    this.#options = options;
    this.#events = new MemberEvents(components.logger);
    this.#refused = new RefusedClaims('static', components.clock, components.logger);
    this.#hostPort = canonicalHostPort(components.node.address) ?? components.node.address;
    const view = parseView(options.view);
    this.#version = {
      epoch: 0,
      view: view.length > 0 ? view : parseView([`${components.node.id}@${this.#hostPort}`]),
      parameters: NO_PARAMETERS,
    };
    const own = this.#version.view.find((e) => e.hostPort === this.#hostPort);
    if (own !== undefined && own.id !== components.node.id) {
      // Members and data movement name this node by node.id: a view naming it otherwise would move its keys to "itself" and purge them.
      throw new KvError(
        'KVMESH_ERR_CONFIG_INVALID',
        `static: the view names this node (${this.#hostPort}) '${own.id}', but its node.id is '${components.node.id}': ` +
          `write ${components.node.id}@${this.#hostPort} in the view, or set node.id to '${own.id}'`,
      );
    }
    this.#file = new AtomicJsonFile(join(components.node.dataDir, STATIC_STATE_FILE), components.logger);
    this.bounds = Object.freeze({
      // No failure detection: a crashed member stays alive in the view until an operator removes it.
      detectionMs: Infinity,
      // Loss can delay a view change, never make a member look dead.
      toleratedLoss: 0.99,
      // Nobody is declared dead, so there is no split to heal.
      healMs: Infinity,
      periodMs: options.syncIntervalMs,
    });
    components.messages.define(membershipProto('static'));
    components.rpc.handle(STATIC_MESSAGES.exchange, (payload: WireExchange, context) => {
      if (this.#running) this.#merge(payload, context.from);
      return { type: STATIC_MESSAGES.exchange, payload: this.#outgoing() };
    });
    this.#incarnation = components.clock.now();
    this.#rebuild(false);
  }

  /** Exchanges whose facts about their sender were refused since start (from another address, absurd incarnations). */
  get refusedClaims(): number {
    return this.#refused.count;
  }

  get self(): Member {
    return this.#members.get(this.#selfId)!;
  }

  /** The epoch of the installed view: 0 for the config's, one more for every view change since. */
  get epoch(): number {
    return this.#version.epoch;
  }

  /** What the installed view carries for the placement; `{}` until a view change sets some. */
  get viewParameters(): ViewParameters {
    return this.#version.parameters;
  }

  /** The installed view as sorted entries (`host:port`, or `id@host:port`). */
  get view(): readonly string[] {
    return this.#version.view.map((e) => e.text);
  }

  members(): readonly Member[] {
    return this.#sorted;
  }

  on(listener: MembershipListener): () => void {
    return this.#events.on(listener);
  }

  async start(): Promise<void> {
    if (this.#running) return;
    const saved = parseSaved(await readJsonFile(this.#file.path, this.#c.logger));
    if (this.#running) return;
    this.#running = true;
    this.#left = false;
    // A run of a node begins when it is built; only a start after a stop begins another.
    if (this.#started) this.#incarnation = Math.max(this.#c.clock.now(), this.#incarnation + 1);
    this.#started = true;
    if (saved !== undefined && saved.epoch > 0 && this.#renamesSelf(saved.view) === undefined) this.#version = saved;
    this.#rebuild(true);
    this.#timer = this.#c.clock.setInterval(() => this.#syncOnce(), this.#options.syncIntervalMs);
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#timer?.cancel();
    this.#timer = undefined;
    await this.#file.flush();
  }

  /**
   * Exchanges views with the seeds and with every member of the view (so
   * each learns this run's incarnation at once); resolves when all answered
   * or failed, and throws only when none answered.
   */
  async join(seeds: readonly string[]): Promise<void> {
    const targets = new Set([...seeds, ...this.#peerUris(this.#version.view)]);
    targets.delete(this.#c.rpc.address);
    if (targets.size === 0) return;
    const results = await Promise.allSettled([...targets].map((to) => this.#exchange(to)));
    if (results.some((r) => r.status === 'fulfilled')) return;
    throw noAnswer([...targets], (results[0] as PromiseRejectedResult).reason);
  }

  /** Tells every member of the view that this node leaves; they list it `left` until it runs again. */
  async leave(): Promise<void> {
    if (!this.#running || this.#left) return;
    this.#left = true;
    this.#rebuild(true);
    await Promise.allSettled(this.#peerUris(this.#version.view).map((to) => this.#exchange(to)));
  }

  /**
   * Installs `view` with the next epoch and sends it to every member of the
   * old and the new view. Members that do not answer pick it up later from
   * any member that has it. `parameters` replace the view's parameters of
   * the same names; the others are kept.
   * @throws KvError KVMESH_ERR_MEMBERSHIP_VIEW_INVALID for an empty view, an entry that is not host:port,
   *   or a parameter that is not a whole number from 0 to 2^32 - 1.
   */
  async setView(view: readonly string[], parameters?: ViewParameters): Promise<void> {
    const next = keepIds(parseView(view), this.#version.view);
    if (next.length === 0) throw new KvError('KVMESH_ERR_MEMBERSHIP_VIEW_INVALID', 'a view needs at least one member');
    const merged = parseParameters({ ...this.#version.parameters, ...parseParameters(parameters) });
    const old = this.#version.view;
    this.#install({ epoch: this.#version.epoch + 1, view: next, parameters: merged });
    this.#c.logger.info(
      { epoch: this.#version.epoch, view: this.view, parameters: this.#version.parameters },
      'view changed',
    );
    const targets = new Set([...this.#peerUris(old), ...this.#peerUris(next)]);
    await Promise.allSettled([...targets].map((to) => this.#exchange(to)));
  }

  /** Transport URIs of the members of `view` other than this node. */
  #peerUris(view: readonly ViewEntry[]): string[] {
    return view.filter((e) => e.hostPort !== this.#hostPort).map((e) => peerUri(this.#c.rpc.address, e.hostPort));
  }

  #syncOnce(): void {
    if (!this.#running || this.#syncing) return;
    const peers = this.#peerUris(this.#version.view);
    if (peers.length === 0) return;
    const peer = peers[this.#c.random.int(peers.length)]!;
    this.#syncing = true;
    this.#exchange(peer)
      .catch((err: unknown) => this.#c.logger.debug({ peer, err: (err as Error).message }, 'view exchange failed'))
      .finally(() => (this.#syncing = false));
  }

  async #exchange(to: string): Promise<void> {
    const reply = await this.#c.rpc.request<WireExchange>(to, STATIC_MESSAGES.exchange, this.#outgoing(), {
      timeoutMs: this.#options.syncIntervalMs,
    });
    if (this.#running) this.#merge(reply.payload, to);
  }

  #outgoing(): WireExchange {
    return {
      epoch: this.#version.epoch,
      view: this.view,
      sender: { id: this.#selfId, incarnation: this.#incarnation, meta: { ...this.self.meta }, left: this.#left },
      parameters: { ...this.#version.parameters },
    };
  }

  #merge(incoming: WireExchange, from: string): void {
    let changed = false;
    const sender = incoming.sender;
    const known = sender === null ? undefined : this.#peers.get(sender.id);
    const refusal =
      sender === null || sender.id === '' || sender.id === this.#selfId
        ? undefined
        : senderFactsRefusal(sender, from, this.#version.view, known?.incarnation, this.#c.clock.now());
    if (sender !== null && refusal !== undefined) {
      this.#refused.refused({ member: sender.id, from }, refusal);
    } else if (sender !== null && sender.id !== '' && sender.id !== this.#selfId) {
      if (
        known === undefined ||
        sender.incarnation > known.incarnation ||
        (sender.incarnation === known.incarnation && sender.left && !known.left)
      ) {
        this.#peers.set(sender.id, { incarnation: sender.incarnation, meta: { ...sender.meta }, left: sender.left });
        changed = true;
      }
    }
    const view = safeView(incoming.view);
    const parameters = safeParameters(incoming.parameters);
    const version =
      view === undefined || parameters === undefined ? undefined : { epoch: incoming.epoch, view, parameters };
    if (version !== undefined && compareVersions(version, this.#version) > 0) {
      const renamed = this.#renamesSelf(version.view);
      if (renamed !== undefined) {
        // Installing it would make this node move its keys to "another" member at its own address and purge them.
        this.#c.logger.error(
          { epoch: version.epoch, view: version.view.map((e) => e.text), nodeId: this.#c.node.id },
          `refused a view that names this node '${renamed}' instead of its node.id '${this.#c.node.id}': ` +
            `send the view again with ${this.#c.node.id}@${this.#hostPort}`,
        );
        if (changed) this.#rebuild(true);
        return;
      }
      this.#install(version);
      this.#c.logger.info({ epoch: version.epoch, view: this.view }, 'adopted a newer view');
    } else if (changed) {
      this.#rebuild(true);
    }
  }

  /** The id `view` gives this node's address when it is not its node.id (a view it must not install). */
  #renamesSelf(view: readonly ViewEntry[]): string | undefined {
    const own = view.find((e) => e.hostPort === this.#hostPort);
    return own !== undefined && own.id !== this.#c.node.id ? own.id : undefined;
  }

  #install(version: ViewVersion): void {
    const reparameterized = parametersText(version.parameters) !== parametersText(this.#version.parameters);
    this.#version = version;
    const snapshot = {
      epoch: version.epoch,
      view: version.view.map((e) => e.text),
      ...(Object.keys(version.parameters).length > 0 ? { parameters: { ...version.parameters } } : {}),
    };
    this.#file.save(() => snapshot);
    this.#rebuild(true, reparameterized);
  }

  /**
   * Recomputes the member list from the view and what members said about
   * themselves; emits what changed, or for every member with `all` (the
   * view's parameters changed, which may move keys between unchanged members).
   */
  #rebuild(emit: boolean, all = false): void {
    const own = this.#version.view.find((e) => e.hostPort === this.#hostPort);
    // Always node.id: views that name this node otherwise are refused, and one without it keeps its name.
    this.#selfId = this.#c.node.id;
    const next = new Map<string, Member>();
    next.set(
      this.#selfId,
      freezeMember({
        id: this.#selfId,
        address: this.#c.rpc.address,
        state: this.#left || own === undefined ? 'left' : 'alive',
        incarnation: this.#incarnation,
        meta: { api: apiUrl(this.#c.node.address), role: this.#c.node.role },
      }),
    );
    // Until it starts, a node knows only itself: the others are announced, with events, by start().
    for (const entry of this.#started ? this.#version.view : []) {
      if (entry === own) continue;
      const facts = this.#peers.get(entry.id);
      next.set(
        entry.id,
        freezeMember({
          id: entry.id,
          address: peerUri(this.#c.rpc.address, entry.hostPort),
          state: facts?.left ? 'left' : 'alive',
          incarnation: facts?.incarnation ?? 0,
          meta: facts?.meta ?? { api: apiUrl(entry.hostPort) },
        }),
      );
    }
    const previous = this.#members;
    this.#members = next;
    this.#sorted = Object.freeze([...next.values()].sort(byId));
    if (!emit) return;
    for (const member of this.#sorted) {
      const before = previous.get(member.id);
      if (all || before === undefined || memberChanged(before, member)) this.#events.emit(member, before?.state);
    }
    for (const [id, before] of previous) {
      if (!next.has(id) && before.state !== 'left')
        this.#events.emit(freezeMember({ ...before, state: 'left' }), before.state);
    }
  }
}

function safeView(view: readonly string[]): ViewEntry[] | undefined {
  try {
    const parsed = parseView(view);
    return parsed.length > 0 ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function safeParameters(parameters: unknown): ViewParameters | undefined {
  try {
    return parseParameters(parameters);
  } catch {
    return undefined;
  }
}

function parseSaved(value: unknown): ViewVersion | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { epoch, view, parameters } = value as { epoch?: unknown; view?: unknown; parameters?: unknown };
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0 || !Array.isArray(view)) return undefined;
  const parsed = safeView(view as string[]);
  const saved = safeParameters(parameters);
  return parsed === undefined || saved === undefined ? undefined : { epoch, view: parsed, parameters: saved };
}

/**
 * A view change keeps the id of every member it keeps: an entry at an
 * address of the current view written without an id (`host:port`) gets that
 * member's id, and one naming another id is refused. A member's id is its
 * node's `node.id`, which a view change cannot change; taking the new name
 * would have the node move its keys to "another" member at its own address
 * and purge them.
 * @throws KvError KVMESH_ERR_MEMBERSHIP_VIEW_INVALID naming the entry.
 */
export function keepIds(next: readonly ViewEntry[], current: readonly ViewEntry[]): ViewEntry[] {
  const byAddress = new Map(current.map((e) => [e.hostPort, e]));
  const texts = next.map((entry) => {
    const known = byAddress.get(entry.hostPort);
    if (known === undefined || known.id === entry.id) return entry.text;
    if (entry.id === entry.hostPort) return known.text;
    throw new KvError(
      'KVMESH_ERR_MEMBERSHIP_VIEW_INVALID',
      `${entry.hostPort} is member '${known.id}', which a view change cannot rename to '${entry.id}': ` +
        `write ${entry.hostPort} or ${known.text} (a member's id is its node.id)`,
    );
  });
  return parseView(texts);
}
