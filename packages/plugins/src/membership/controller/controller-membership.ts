import { join } from 'node:path';
import type {
  Clock,
  Logger,
  Member,
  Membership,
  MembershipBounds,
  MembershipListener,
  MessageRegistry,
  NodeInfo,
  Rpc,
  Timer,
} from '@kvmesh/core';
import { apiUrl, peerUri, sameEndpoint } from '../support/addresses.js';
import { RefusedClaims, incarnationRefusal } from '../support/claims.js';
import { firstAnswer } from '../support/first-answer.js';
import { AtomicJsonFile, readJsonFile } from '../support/json-file.js';
import { MemberEvents } from '../support/member-events.js';
import { MemberTable } from '../support/member-table.js';
import { membershipProto } from '../support/proto-source.js';
import { ControllerAuthority } from './controller-authority.js';
import { CONTROLLER_MESSAGES, EMPTY_MESSAGE, fromWire, toWire, type WireHeartbeat, type WireList } from './wire.js';

export interface ControllerMembershipOptions {
  /** `host:port` of the controller node. Empty: the first seed given to `join` that answers as a controller. */
  readonly controller: string;
  /** Every member heartbeats to the controller this often (ms); the answer carries the list when it changed. */
  readonly heartbeatMs: number;
  /** The controller probes a member that sent no heartbeat for this long (ms). */
  readonly failAfterMs: number;
  /** Deadline of one probe (ms). */
  readonly probeTimeoutMs: number;
  /** Probes in a row that must fail before the controller declares a member dead. */
  readonly probeAttempts: number;
  /**
   * How long (ms) a member stays listed dead before the controller removes it
   * (lists it as `left`), so placement gives its data to the others; 0: dead
   * members stay until they return.
   */
  readonly removeDeadAfterMs: number;
}

export interface ControllerMembershipComponents {
  readonly node: NodeInfo;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly messages: MessageRegistry;
  readonly rpc: Rpc;
}

/** Role of the node that keeps the authoritative list. */
export const CONTROLLER_ROLE = 'controller';

/** Name of the file in the controller's data directory that keeps the member list. */
export const CONTROLLER_STATE_FILE = 'controller-members.json';

/**
 * Velour Fog's controller membership. The node whose role is `controller`
 * keeps the authoritative member list (see ControllerAuthority) and
 * persists it in `<dataDir>/controller-members.json`. Every other node —
 * storage nodes and frontends alike — registers by heartbeating to it every
 * `heartbeatMs` and receives every change pushed to it; the heartbeat
 * answer carries the whole list whenever the node's copy is not the current
 * one. `reportUnreachable` asks the controller to probe a member before it
 * declares it dead. While the controller is down, members keep their last
 * list and go on heartbeating, which registers them again when it returns.
 *
 * Members are every node of the cluster, with `meta.role` telling storage
 * nodes, frontends and the controller apart. Member ids are node ids.
 */
export class ControllerMembership implements Membership {
  readonly name = 'controller';
  readonly bounds: MembershipBounds;
  readonly #c: ControllerMembershipComponents;
  readonly #options: ControllerMembershipOptions;
  readonly #events: MemberEvents;
  readonly #table: MemberTable;
  readonly #authority: ControllerAuthority | undefined;
  readonly #file: AtomicJsonFile;
  readonly #reported = new Map<string, number>();
  readonly #refused: RefusedClaims;
  /** Seeds a join is asking while the controller is not known yet: one of them is. */
  readonly #asking = new Set<string>();
  #controllerUri: string | undefined;
  #incarnation: number;
  #left = false;
  #running = false;
  #started = false;
  #timer: Timer | undefined;
  /** Generation and version of the controller's list this node holds. */
  #generation = 0;
  #version = 0;

  constructor(components: ControllerMembershipComponents, options: ControllerMembershipOptions) {
    this.#c = components;
    this.#options = options;
    this.#events = new MemberEvents(components.logger);
    this.#table = new MemberTable(this.#events);
    this.#refused = new RefusedClaims('controller', components.clock, components.logger);
    this.#file = new AtomicJsonFile(join(components.node.dataDir, CONTROLLER_STATE_FILE), components.logger);
    this.#controllerUri = options.controller === '' ? undefined : peerUri(components.rpc.address, options.controller);
    this.bounds = Object.freeze({
      // No heartbeat for failAfterMs, every probe timing out, then a member that missed the push learns it with its next heartbeat.
      detectionMs: options.failAfterMs + options.probeAttempts * options.probeTimeoutMs + options.heartbeatMs,
      toleratedLoss: 0.05,
      periodMs: options.heartbeatMs,
      // The member's next heartbeat reaches the controller, whose push (or the heartbeat after) reaches everyone.
      healMs: 3 * options.heartbeatMs + options.probeTimeoutMs,
    });
    const { messages, rpc } = components;
    messages.define(membershipProto('controller'));
    rpc.handle(CONTROLLER_MESSAGES.probe, () => ({
      type: CONTROLLER_MESSAGES.probe,
      payload: { id: this.#c.node.id },
    }));
    if (components.node.role === CONTROLLER_ROLE) {
      const authority = new ControllerAuthority({
        clock: components.clock,
        logger: components.logger,
        rpc,
        options,
        table: this.#table,
        file: this.#file,
        selfId: components.node.id,
        refused: this.#refused,
      });
      this.#authority = authority;
      rpc.handle(CONTROLLER_MESSAGES.heartbeat, (payload: WireHeartbeat, context) => ({
        type: CONTROLLER_MESSAGES.list,
        payload: this.#running ? authority.heartbeat(payload, context.from) : notRunning(),
      }));
      rpc.handle(CONTROLLER_MESSAGES.report, (payload: { id: string }) => {
        authority.report(payload.id);
        return { type: EMPTY_MESSAGE, payload: {} };
      });
      rpc.handle(CONTROLLER_MESSAGES.leave, (payload: { id: string; incarnation: number }, context) => {
        if (this.#running) authority.leave(payload.id, payload.incarnation, context.from);
        return { type: EMPTY_MESSAGE, payload: {} };
      });
    } else {
      rpc.handle(CONTROLLER_MESSAGES.list, (payload: WireList, context) => {
        // Only the controller speaks for the cluster: a list pushed from elsewhere is a claim nobody may make.
        if (!this.#fromController(context.from)) {
          this.#refused.refused(
            { member: '*', from: context.from },
            `a member list pushed by a node that is not the controller (${this.#controllerUri ?? 'not known yet'})`,
          );
        } else if (this.#running) {
          this.#apply(payload);
        }
        return { type: EMPTY_MESSAGE, payload: {} };
      });
    }
    this.#incarnation = components.clock.now();
    this.#table.set(this.#selfMember());
  }

  get self(): Member {
    return this.#table.get(this.#c.node.id)!;
  }

  /** True on the node that keeps the authoritative list. */
  get isController(): boolean {
    return this.#authority !== undefined;
  }

  /** Claims refused since start: lists pushed by other nodes, absurd incarnations. */
  get refusedClaims(): number {
    return this.#refused.count;
  }

  /** Transport URI of the controller, once known. */
  get controllerAddress(): string | undefined {
    return this.#authority !== undefined ? this.#c.rpc.address : this.#controllerUri;
  }

  members(): readonly Member[] {
    return this.#table.sorted();
  }

  on(listener: MembershipListener): () => void {
    return this.#events.on(listener);
  }

  async start(): Promise<void> {
    if (this.#running) return;
    // Read before serving: heartbeats must not reach a controller that has not loaded its list yet.
    const saved = this.#authority !== undefined ? await readJsonFile(this.#file.path, this.#c.logger) : undefined;
    if (this.#running) return;
    this.#running = true;
    this.#left = false;
    // A run of a node begins when it is built; only a start after a stop begins another.
    if (this.#started) this.#incarnation = Math.max(this.#c.clock.now(), this.#incarnation + 1);
    this.#started = true;
    if (this.#authority !== undefined) {
      this.#authority.start(saved, this.#selfMember());
      return;
    }
    this.#table.set(this.#selfMember());
    this.#timer = this.#c.clock.setInterval(() => this.#beat(), this.#options.heartbeatMs);
    this.#beat();
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#timer?.cancel();
    this.#timer = undefined;
    await this.#authority?.stop();
  }

  /**
   * Registers with the controller now. Without a configured controller, the
   * first seed that answers as one becomes the controller. Resolves on the
   * controller at once.
   */
  async join(seeds: readonly string[]): Promise<void> {
    if (this.#authority !== undefined) return;
    const targets =
      this.#controllerUri !== undefined ? [this.#controllerUri] : seeds.filter((s) => s !== this.#c.rpc.address);
    await firstAnswer(targets, async (uri) => {
      this.#asking.add(uri);
      try {
        await this.#heartbeat(uri);
        this.#controllerUri ??= uri;
      } finally {
        this.#asking.delete(uri);
      }
    });
  }

  /** True when a message from `from` may be the controller's: its address, or while it is unknown, a seed being asked. */
  #fromController(from: string): boolean {
    if (this.#controllerUri !== undefined) return sameEndpoint(from, this.#controllerUri);
    for (const seed of this.#asking) if (sameEndpoint(from, seed)) return true;
    return false;
  }

  async leave(): Promise<void> {
    if (!this.#running || this.#left) return;
    this.#left = true;
    const self = this.#selfMember();
    if (this.#authority !== undefined) {
      this.#authority.change(self);
      await this.#authority.flush();
      return;
    }
    this.#table.set(self);
    if (this.#controllerUri === undefined) return;
    await this.#c.rpc
      .request(
        this.#controllerUri,
        CONTROLLER_MESSAGES.leave,
        { id: self.id, incarnation: self.incarnation },
        { timeoutMs: this.#options.heartbeatMs },
      )
      .catch((err: unknown) =>
        this.#c.logger.warn({ err: (err as Error).message }, 'controller did not hear the leave'),
      );
  }

  /** Asks the controller to probe `id`; at most once per probe round per member. Never marks it dead here. */
  reportUnreachable(id: string): void {
    const member = this.#table.get(id);
    if (!this.#running || id === this.#c.node.id || member?.state !== 'alive') return;
    const now = this.#c.clock.now();
    const last = this.#reported.get(id);
    if (last !== undefined && now - last < this.#options.probeAttempts * this.#options.probeTimeoutMs) return;
    this.#reported.set(id, now);
    if (this.#authority !== undefined) {
      this.#authority.report(id);
    } else if (this.#controllerUri !== undefined) {
      this.#c.rpc
        .request(this.#controllerUri, CONTROLLER_MESSAGES.report, { id }, { timeoutMs: this.#options.heartbeatMs })
        .catch((err: unknown) => this.#c.logger.debug({ id, err: (err as Error).message }, 'report not delivered'));
    }
  }

  #selfMember(): Member {
    return {
      id: this.#c.node.id,
      address: this.#c.rpc.address,
      state: this.#left ? 'left' : 'alive',
      incarnation: this.#incarnation,
      meta: { api: apiUrl(this.#c.node.address), role: this.#c.node.role },
    };
  }

  #beat(): void {
    // No waiting for the previous heartbeat: it times out exactly when the next is due, and skipping
    // that one would turn one lost packet into two silent periods.
    if (!this.#running || this.#left || this.#controllerUri === undefined) return;
    this.#heartbeat(this.#controllerUri).catch((err: unknown) =>
      this.#c.logger.debug({ err: (err as Error).message }, 'controller unreachable'),
    );
  }

  async #heartbeat(uri: string): Promise<void> {
    const reply = await this.#c.rpc.request<WireList>(
      uri,
      CONTROLLER_MESSAGES.heartbeat,
      { member: toWire(this.#selfMember()), generation: this.#generation, version: this.#version },
      { timeoutMs: this.#options.heartbeatMs },
    );
    if (this.#running) this.#apply(reply.payload);
  }

  /** Applies a list from the controller: a whole one, or a delta that follows the copy held here. */
  #apply(list: WireList): void {
    if (list.generation === 0) return;
    // A heartbeat answer can arrive after a push that is newer than it.
    if (list.generation === this.#generation && list.version < this.#version) return;
    if (!list.full && (list.generation !== this.#generation || list.baseVersion !== this.#version)) {
      // A delta this copy cannot take (a push was lost, or the controller restarted): fetch the whole list.
      if (list.generation !== this.#generation || list.version > this.#version) this.#resync();
      return;
    }
    // One batch: a joining node's rebalancer must plan from the whole list, never from the first members of it.
    this.#table.batch(() => {
      const listed = new Set<string>();
      for (const wire of list.members) {
        const member = fromWire(wire);
        if (member === undefined) continue;
        listed.add(member.id);
        if (member.id === this.#c.node.id) this.#checkSelf(member);
        else this.#table.set(member);
      }
      if (list.full) {
        for (const member of this.#table.sorted()) {
          if (member.id !== this.#c.node.id && !listed.has(member.id)) this.#table.remove(member.id);
        }
      }
    });
    this.#generation = list.generation;
    this.#version = list.version;
  }

  /** The controller thinks this node is dead or gone: announce a new incarnation to refute it. */
  #checkSelf(listed: Member): void {
    if (this.#left || listed.state === 'alive' || listed.incarnation < this.#incarnation) return;
    const refusal = incarnationRefusal(listed.incarnation + 1, this.#incarnation, this.#c.clock.now());
    if (refusal !== undefined) {
      // Refuting at it would take this member's incarnation where every honest node refuses it.
      this.#refused.refused(
        { member: listed.id, from: this.#controllerUri ?? '' },
        `listed ${listed.state}: ${refusal}`,
      );
      return;
    }
    this.#incarnation = Math.max(listed.incarnation + 1, this.#c.clock.now());
    this.#table.set(this.#selfMember());
    this.#resync();
  }

  #resync(): void {
    this.#c.clock.setTimeout(() => this.#beat(), 0);
  }
}

function notRunning(): WireList {
  return { generation: 0, version: 0, full: false, baseVersion: 0, members: [] };
}
