import { isKvError, type Clock, type Logger, type Member, type Rpc, type Timer } from '@kvmesh/core';
import { incarnationRefusal, type RefusedClaims } from '../support/claims.js';
import type { AtomicJsonFile } from '../support/json-file.js';
import type { MemberTable } from '../support/member-table.js';
import type { ControllerMembershipOptions } from './controller-membership.js';
import { CONTROLLER_MESSAGES, fromWire, toWire, type WireHeartbeat, type WireList, type WireMember } from './wire.js';

export interface ControllerAuthorityDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly rpc: Rpc;
  readonly options: ControllerMembershipOptions;
  /** The controller node's own view: the authority writes the authoritative list into it. */
  readonly table: MemberTable;
  /** Where the list is persisted (atomically). */
  readonly file: AtomicJsonFile;
  readonly selfId: string;
  /** Where claims no honest member makes are counted and reported. */
  readonly refused: RefusedClaims;
}

/** What the controller tracks per member beside the member itself. */
interface Liveness {
  /** Fires `failAfterMs` after the last heartbeat. */
  deadline: Timer | undefined;
  /** Clock time of the last heartbeat. */
  lastSeen: number;
  probing: boolean;
}

interface Saved {
  readonly generation: number;
  readonly version: number;
  readonly members: readonly Member[];
}

/**
 * The controller's side of the `controller` strategy: the authoritative
 * member list. Members register by heartbeating; one that stops for
 * `failAfterMs`, or that a member reports unreachable, is probed
 * (`probeAttempts` tries of `probeTimeoutMs`) and declared dead only when
 * every probe fails and no heartbeat came meanwhile. Every change is
 * persisted and pushed to every alive member as a delta; a heartbeat answer
 * carries the whole list whenever the member's copy is not the current one,
 * which heals lost pushes and controller restarts.
 */
export class ControllerAuthority {
  readonly #d: ControllerAuthorityDeps;
  readonly #liveness = new Map<string, Liveness>();
  readonly #pending = new Map<string, Member>();
  /** Per dead member: the timer that removes it (`removeDeadAfterMs`). */
  readonly #removals = new Map<string, Timer>();
  #generation = 0;
  #version = 0;
  /** Version the members hold once they applied every push sent so far. */
  #pushedVersion = 0;
  #flushTimer: Timer | undefined;
  #running = false;

  constructor(deps: ControllerAuthorityDeps) {
    this.#d = deps;
  }

  get generation(): number {
    return this.#generation;
  }

  get version(): number {
    return this.#version;
  }

  /** Loads the persisted list; members it lists as alive get `failAfterMs` from now to heartbeat. */
  start(saved: unknown, self: Member): void {
    this.#running = true;
    const loaded = parseSaved(saved);
    const now = this.#d.clock.now();
    for (const member of loaded?.members ?? []) {
      if (member.id === this.#d.selfId) continue;
      this.#d.table.set(member);
      if (member.state === 'alive' || member.state === 'suspect') this.#arm(member.id, now);
      if (member.state === 'dead') this.#scheduleRemoval(member);
    }
    this.#version = loaded?.version ?? 0;
    this.#pushedVersion = this.#version;
    // A new generation on every start: a list from before a crash may have had changes that never reached the file.
    this.#generation = Math.max(now, (loaded?.generation ?? 0) + 1);
    this.change(self);
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#flushTimer?.cancel();
    this.#flushTimer = undefined;
    for (const liveness of this.#liveness.values()) liveness.deadline?.cancel();
    this.#liveness.clear();
    for (const timer of this.#removals.values()) timer.cancel();
    this.#removals.clear();
    await this.#d.file.flush();
  }

  /** Records a changed member: a new version, persisted and pushed as soon as the current callback ends. */
  change(member: Member): void {
    if (!this.#d.table.set(member)) return;
    this.#version++;
    this.#pending.set(member.id, this.#d.table.get(member.id)!);
    if (this.#running) this.#flushTimer ??= this.#d.clock.setTimeout(() => void this.flush(), 0);
  }

  /** Persists and pushes the changes made since the last flush; resolves when every push was answered or failed. */
  async flush(): Promise<void> {
    this.#flushTimer?.cancel();
    this.#flushTimer = undefined;
    if (this.#pending.size === 0) return;
    const list: WireList = {
      generation: this.#generation,
      version: this.#version,
      full: false,
      baseVersion: this.#pushedVersion,
      members: [...this.#pending.values()].map(toWire),
    };
    this.#pending.clear();
    this.#pushedVersion = this.#version;
    this.#d.file.save(() => this.#snapshot());
    const targets = this.#d.table.sorted().filter((m) => m.id !== this.#d.selfId && m.state === 'alive');
    await Promise.allSettled(targets.map((m) => this.#push(m, list)));
  }

  /**
   * Sends one change to one member, trying again after a timeout like a
   * probe does, so a lost push costs a probe deadline rather than a
   * heartbeat period. A push that arrives after a newer one is ignored there.
   */
  async #push(member: Member, list: WireList): Promise<void> {
    const { probeTimeoutMs, probeAttempts } = this.#d.options;
    for (let attempt = 1; attempt <= probeAttempts && this.#running; attempt++) {
      try {
        await this.#d.rpc.request(member.address, CONTROLLER_MESSAGES.list, list, { timeoutMs: probeTimeoutMs });
        return;
      } catch (err) {
        this.#d.logger.debug({ to: member.id, attempt, err: (err as Error).message }, 'push failed');
        if (!isKvError(err, 'KVMESH_ERR_RPC_TIMEOUT')) return;
      }
    }
  }

  /**
   * A member's heartbeat (or first registration); answers with the list,
   * whole when the member's copy is stale. An incarnation far ahead of the
   * known one and of this clock is refused: only a member raises its own,
   * and none raises it that far.
   */
  heartbeat(payload: WireHeartbeat, from: string): WireList {
    const member = fromWire(payload.member);
    const known = member === undefined ? undefined : this.#d.table.get(member.id);
    const refusal =
      member === undefined
        ? undefined
        : incarnationRefusal(member.incarnation, known?.incarnation, this.#d.clock.now());
    if (member !== undefined && refusal !== undefined) {
      this.#d.refused.refused({ member: member.id, from }, `heartbeat: ${refusal}`);
    } else if (member !== undefined && member.id !== this.#d.selfId) {
      const fresh =
        known === undefined ||
        member.incarnation > known.incarnation ||
        (member.incarnation === known.incarnation && (known.state === 'alive' || known.state === 'suspect'));
      if (fresh) {
        this.#removals.get(member.id)?.cancel();
        this.#removals.delete(member.id);
        this.change({ ...member, state: 'alive' });
        this.#arm(member.id, this.#d.clock.now());
      }
    }
    if (payload.generation === this.#generation && payload.version === this.#version) {
      return {
        generation: this.#generation,
        version: this.#version,
        full: false,
        baseVersion: this.#version,
        members: [],
      };
    }
    return this.fullList();
  }

  fullList(): WireList {
    return {
      generation: this.#generation,
      version: this.#version,
      full: true,
      baseVersion: 0,
      members: this.#d.table.sorted().map(toWire),
    };
  }

  /** A member reported `id` unreachable: probe it, unless that is under way. */
  report(id: string): void {
    const member = this.#d.table.get(id);
    if (!this.#running || id === this.#d.selfId || member?.state !== 'alive') return;
    this.#d.logger.debug({ id }, 'member reported unreachable; probing');
    void this.#probe(id);
  }

  /**
   * `id` leaves on purpose (ignored when it comes from an older run of that
   * member). A leave claimed above the known incarnation is taken as a leave
   * of the known one: only the member raises its incarnation, by
   * heartbeating with it, and it refutes a leave it did not send with one more.
   */
  leave(id: string, incarnation: number, from: string): void {
    const member = this.#d.table.get(id);
    if (member === undefined || id === this.#d.selfId || incarnation < member.incarnation || member.state === 'left') {
      return;
    }
    if (!Number.isSafeInteger(incarnation)) {
      this.#d.refused.refused({ member: id, from }, `leave at incarnation ${incarnation}, not a safe integer`);
      return;
    }
    this.#disarm(id);
    this.change({ ...member, state: 'left' });
  }

  #arm(id: string, now: number): void {
    let liveness = this.#liveness.get(id);
    if (liveness === undefined) {
      liveness = { deadline: undefined, lastSeen: now, probing: false };
      this.#liveness.set(id, liveness);
    }
    liveness.lastSeen = now;
    liveness.deadline?.cancel();
    liveness.deadline = this.#d.clock.setTimeout(() => void this.#probe(id), this.#d.options.failAfterMs);
  }

  #disarm(id: string): void {
    this.#liveness.get(id)?.deadline?.cancel();
    this.#liveness.delete(id);
  }

  /**
   * Declares `id` dead when `probeAttempts` probes in a row fail and no
   * heartbeat arrives meanwhile. A refused connection fails at once, so a
   * crashed process is declared dead a few round trips after the deadline.
   */
  async #probe(id: string): Promise<void> {
    const liveness = this.#liveness.get(id);
    if (liveness === undefined || liveness.probing) return;
    liveness.probing = true;
    const startedAt = this.#d.clock.now();
    // A heartbeat in the very millisecond the deadline fired counts: it arrived after the timer, just not later.
    const heardSince = (): boolean => liveness.lastSeen >= startedAt || this.#liveness.get(id) !== liveness;
    try {
      for (let attempt = 0; attempt < this.#d.options.probeAttempts; attempt++) {
        const member = this.#d.table.get(id);
        if (!this.#running || heardSince() || member?.state !== 'alive') return;
        try {
          const reply = await this.#d.rpc.request<{ id: string }>(
            member.address,
            CONTROLLER_MESSAGES.probe,
            { id },
            { timeoutMs: this.#d.options.probeTimeoutMs },
          );
          if (reply.payload.id === id) {
            // Alive after all: the heartbeats may be what gets lost, so watch it for another period.
            if (!heardSince()) this.#arm(id, liveness.lastSeen);
            return;
          }
        } catch {
          // Counted as a failed attempt.
        }
      }
      const member = this.#d.table.get(id);
      if (this.#running && !heardSince() && member?.state === 'alive') {
        this.#d.logger.info({ id }, 'member declared dead: no heartbeat and every probe failed');
        this.#disarm(id);
        const dead: Member = { ...member, state: 'dead' };
        this.change(dead);
        this.#scheduleRemoval(dead);
      }
    } finally {
      liveness.probing = false;
    }
  }

  /**
   * Removes a dead member after `removeDeadAfterMs`, unless it registered
   * again meanwhile: listed as `left`, it is no longer a replica, so the
   * survivors copy its partitions to the next members in line. Only while
   * the controller hears from a majority of the members: one that hears
   * from too few is more likely cut off itself than the others all dead,
   * and removing them would hand every key to whoever registers first after
   * the heal, without its data. It waits another `removeDeadAfterMs` then.
   */
  #scheduleRemoval(dead: Member): void {
    const after = this.#d.options.removeDeadAfterMs;
    if (after <= 0 || !this.#running) return;
    this.#removals.get(dead.id)?.cancel();
    const timer = this.#d.clock.setTimeout(() => {
      this.#removals.delete(dead.id);
      const now = this.#d.table.get(dead.id);
      if (!this.#running || now?.state !== 'dead' || now.incarnation !== dead.incarnation) return;
      const listed = this.#d.table.sorted().filter((m) => m.state !== 'left');
      const alive = listed.filter((m) => m.state === 'alive').length;
      if (alive * 2 <= listed.length) {
        this.#d.logger.warn(
          { id: dead.id, alive, members: listed.length },
          'dead member kept: this controller hears from too few members to tell a failure from its own isolation',
        );
        this.#scheduleRemoval(now);
        return;
      }
      this.#d.logger.info({ id: dead.id, deadForMs: after }, 'dead member removed');
      this.change({ ...now, state: 'left' });
    }, after);
    this.#removals.set(dead.id, timer);
  }

  #snapshot(): Saved {
    return { generation: this.#generation, version: this.#version, members: this.#d.table.sorted() };
  }
}

function parseSaved(value: unknown): Saved | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { generation, version, members } = value as Partial<Record<keyof Saved, unknown>>;
  if (typeof generation !== 'number' || typeof version !== 'number' || !Array.isArray(members)) return undefined;
  const parsed: Member[] = [];
  for (const raw of members as WireMember[]) {
    if (typeof raw !== 'object' || raw === null || typeof raw.id !== 'string' || typeof raw.address !== 'string')
      continue;
    const state = raw.state as string;
    if (!['alive', 'suspect', 'dead', 'left'].includes(state)) continue;
    const meta = typeof raw.meta === 'object' && raw.meta !== null ? { ...raw.meta } : {};
    parsed.push({
      id: raw.id,
      address: raw.address,
      state: state as Member['state'],
      incarnation: typeof raw.incarnation === 'number' ? raw.incarnation : 0,
      meta,
    });
  }
  return { generation, version, members: parsed };
}
