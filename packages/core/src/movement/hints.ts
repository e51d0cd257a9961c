import type { Clock, Timer } from '../contracts/clock.js';
import type { Message } from '../contracts/codec.js';
import type { Logger } from '../contracts/logger.js';
import type { Member, Membership, MembershipEvent } from '../contracts/membership.js';
import type { Placement } from '../contracts/placement.js';
import type { Rpc } from '../contracts/rpc.js';
import type { HintStore, Storage, StoredRecord } from '../contracts/storage.js';
import { KvError } from '../errors.js';
import { MOVEMENT_MESSAGES } from './movement-messages.js';
import type { HintPayload } from './movement-messages.js';
import { EMPTY_REPLY, requireHints } from './mover.js';
import type { DataMover } from './mover.js';
import type { MovementSettings } from './settings.js';
import type { MovementCounters } from './stats.js';

/**
 * Replay rounds between two checks of the hints of a member that is not
 * alive: a check locates every such hint, so it runs far less often than
 * the replay itself.
 */
const REROUTE_EVERY_ROUNDS = 30;

export interface HintedHandoffOptions {
  readonly selfId: string;
  readonly storage: Storage;
  readonly placement: Placement;
  readonly membership?: Membership | undefined;
  readonly rpc: Rpc;
  readonly mover: DataMover;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly settings: MovementSettings;
  readonly counters: MovementCounters;
  readonly onError: (err: unknown, context: string) => void;
}

/**
 * Hinted hand-off: a write for a replica that is down is kept on a fallback
 * (in `Storage.hints`, apart from the fallback's own records) and replayed
 * to the replica, in PutBatch pages, when it is alive again; each hint is
 * removed, up to the version sent, once the replica stored it (or held a
 * newer version). A hint the replica refuses because it no longer owns the
 * key goes to the key's current replicas instead; so do, now and then, the
 * hints of a member that stays away while placement moved its keys to others.
 */
export class HintedHandoff {
  readonly #o: HintedHandoffOptions;
  /** Transport URIs of hint targets, learned from hints, for nodes without a membership that lists them. */
  readonly #addresses = new Map<string, string>();
  readonly #lifetime = new AbortController();
  #timer: Timer | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #rounds = 0;
  #held = 0;
  #stopped = false;

  constructor(options: HintedHandoffOptions) {
    this.#o = options;
  }

  /** Hints held here, as of the last count. */
  get held(): number {
    return this.#held;
  }

  start(): void {
    if (this.#o.storage.hints === undefined) {
      this.#o.logger.warn(
        { storage: this.#o.storage.name },
        'the storage keeps no hints: writes for a member that is down cannot be held on this node',
      );
      return;
    }
    this.#timer = this.#o.clock.setInterval(() => this.kick(), this.#o.settings.hintReplayIntervalMs);
    this.kick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#lifetime.abort(new KvError('KVMESH_ERR_RPC_ABORTED', 'hinted hand-off is stopping'));
    await this.#running;
  }

  /**
   * Stores `record` as a hint for `target` on `fallback`: this node's
   * hint store, or a `kvmesh.movement.Hint` request to the fallback.
   * Resolves once the hint is stored there.
   * @throws KvError KVMESH_ERR_MOVEMENT_UNSUPPORTED when the fallback's storage keeps no hints,
   *   or the request's failure.
   */
  async hint(fallback: Member, target: Member, record: StoredRecord, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw signal.reason;
    if (fallback.id === this.#o.selfId) {
      await this.#store(target.id, target.address, record);
      return;
    }
    const payload: HintPayload = { target: target.id, targetAddress: target.address, record };
    await this.#o.rpc.request(
      fallback.address,
      MOVEMENT_MESSAGES.hint,
      payload,
      signal === undefined ? {} : { signal },
    );
  }

  /** Serves `kvmesh.movement.Hint`. */
  async onHint(payload: HintPayload): Promise<Message> {
    const record = payload.record;
    if (record === null || record.version === null) {
      throw new KvError('KVMESH_ERR_MESSAGE_INVALID', `${MOVEMENT_MESSAGES.hint} carries no record (or no version)`);
    }
    await this.#store(payload.target, payload.targetAddress, record as StoredRecord);
    return EMPTY_REPLY;
  }

  /** Called for every membership event: a member that comes back gets its hints right away. */
  onMembershipEvent(event: MembershipEvent): void {
    if (event.member.state === 'alive' && event.previous !== 'alive' && event.member.id !== this.#o.selfId) {
      this.kick();
    }
  }

  /** Starts a replay round now (or right after the one running). */
  kick(): void {
    if (this.#stopped || this.#o.storage.hints === undefined) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = this.#replayRounds().finally(() => (this.#running = undefined));
  }

  async #store(target: string, address: string, record: StoredRecord): Promise<void> {
    const hints = requireHints(this.#o.storage);
    await hints.add({ target, record });
    if (address !== '') this.#addresses.set(target, address);
    this.#o.counters.hintsStored++;
    this.#held++;
  }

  async #replayRounds(): Promise<void> {
    do {
      this.#again = false;
      try {
        await this.#replay();
      } catch (err) {
        if (!this.#stopped) this.#o.onError(err, 'replaying hints');
      }
    } while (this.#again && !this.#stopped);
  }

  async #replay(): Promise<void> {
    const hints = requireHints(this.#o.storage);
    const reroute = this.#rounds++ % REROUTE_EVERY_ROUNDS === 0;
    const members = new Map((this.#o.membership?.members() ?? []).map((m) => [m.id, m]));
    for (const id of await hints.targets()) {
      if (this.#stopped) return;
      const known = members.get(id);
      const address = known?.address ?? this.#addresses.get(id);
      // Without a membership, or one that does not list it, the target's state is unknown: try it.
      const alive = known === undefined ? address !== undefined : known.state === 'alive';
      try {
        if (alive && address !== undefined) {
          await this.#replayTo(hints, known ?? { id, address, state: 'alive', incarnation: 0, meta: {} });
        } else if (reroute) {
          await this.#rerouteAll(hints, id);
        }
      } catch (err) {
        if (this.#stopped) return;
        this.#o.logger.debug({ err, target: id }, 'hint replay failed; trying again later');
      }
    }
    this.#held = await hints.count();
  }

  /** Sends every hint of `target` to it, page by page. */
  async #replayTo(hints: HintStore, target: Member): Promise<void> {
    let after: string | undefined;
    for (;;) {
      const page = await hints.list(
        target.id,
        after === undefined ? { limit: this.#o.mover.batchSize } : { after, limit: this.#o.mover.batchSize },
      );
      if (page.hints.length > 0) {
        const records = page.hints.map((h) => h.record);
        const outcomes = await this.#o.mover.send(target, records, 'PURPOSE_HINT', this.#lifetime.signal);
        const refused: StoredRecord[] = [];
        await Promise.all(
          records.map(async (record, i) => {
            if (outcomes[i] === 'PUT_REFUSED') refused.push(record);
            else if (await hints.remove(target.id, record.key, record.version)) this.#o.counters.hintsReplayed++;
          }),
        );
        for (const record of refused) await this.#reroute(hints, target.id, record);
      }
      if (page.next === undefined) return;
      after = page.next;
    }
  }

  async #rerouteAll(hints: HintStore, target: string): Promise<void> {
    let after: string | undefined;
    for (;;) {
      const page = await hints.list(
        target,
        after === undefined ? { limit: this.#o.mover.batchSize } : { after, limit: this.#o.mover.batchSize },
      );
      for (const hint of page.hints) await this.#reroute(hints, target, hint.record);
      if (page.next === undefined) return;
      after = page.next;
    }
  }

  /**
   * Delivers a hint to the key's current replicas when placement no longer
   * gives the key to `target`; keeps it otherwise (the target only lags
   * behind a view change, or is down: try again later).
   */
  async #reroute(hints: HintStore, target: string, record: StoredRecord): Promise<void> {
    const set = await this.#o.placement.locate(record.key, { intent: 'write', signal: this.#lifetime.signal });
    if (set.replicas.some((r) => r.id === target) || set.replicas.length === 0) return;
    const outcomes = await Promise.all(
      set.replicas.map((r) => this.#o.mover.send(r, [record], 'PURPOSE_HINT', this.#lifetime.signal)),
    );
    if (outcomes.some((o) => o[0] === 'PUT_REFUSED')) return;
    if (await hints.remove(target, record.key, record.version)) this.#o.counters.hintsReplayed++;
  }
}
