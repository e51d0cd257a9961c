import { readFileSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../contracts/logger.js';
import type { Member, MemberState, ViewParameters } from '../contracts/membership.js';

/** Format version of the plan file; a file of another version is ignored (the node plans afresh). */
const PLAN_FORMAT = 1;

/**
 * What a node persists, so that either side of a move resumes after a
 * crash: the member views since its data was last settled (one view when
 * settled)
 * (the moves are recomputed from them with `Placement.plan`, which is pure
 * over its inputs) and the (range, old owner) pairs already reported done.
 */
export interface PersistedPlan {
  /** Views, oldest first; the last one is the view the moves were planned for. */
  readonly views: readonly (readonly Member[])[];
  /** The parameters of each view (`Membership.viewParameters`), same order; omitted when no view has any. */
  readonly parameters?: readonly ViewParameters[];
  /** Moves to this node that an old owner reported complete: range, old owner id, and the view it moved for. */
  readonly cleared: readonly ClearedMove[];
}

export interface ClearedMove {
  readonly range: string;
  readonly source: string;
  readonly view: string;
}

/** The plan file of a node: `<dataDir>/movement-plan-<node id>.json`. */
export function planFilePath(dataDir: string, nodeId: string): string {
  return join(dataDir, `movement-plan-${nodeId.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
}

/**
 * Keeps the plan file. Writes go
 * to a temporary file, are flushed to disk, then renamed over the plan, so a
 * crash leaves either the old plan or the new one, never half of one. Saves
 * are serialized; only the newest pending one is written.
 */
export class PlanStore {
  readonly path: string;
  readonly #logger: Logger;
  #chain: Promise<void> = Promise.resolve();
  /** The newest state not yet written: a plan, `null` for "remove the file", undefined when none waits. */
  #wanted: PersistedPlan | null | undefined;
  #writing = false;

  constructor(path: string, logger: Logger) {
    this.path = path;
    this.#logger = logger;
  }

  /** The saved plan, or undefined when there is none or it cannot be read (logged). Synchronous: called on start. */
  load(): PersistedPlan | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.#logger.error({ err, path: this.path }, 'cannot read the movement plan; planning afresh');
      }
      return undefined;
    }
    try {
      return parsePlan(JSON.parse(text));
    } catch (err) {
      this.#logger.error({ err, path: this.path }, 'the movement plan is malformed; planning afresh');
      return undefined;
    }
  }

  /** Replaces the saved plan (or removes it, for `null`). Resolves once that state, or a newer one, is on disk. */
  save(plan: PersistedPlan | null): Promise<void> {
    this.#wanted = plan;
    if (!this.#writing) {
      this.#writing = true;
      this.#chain = this.#drain();
    }
    return this.#chain;
  }

  /** Resolves when every save so far is on disk. */
  flush(): Promise<void> {
    return this.#chain;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#wanted !== undefined) {
        const plan = this.#wanted;
        this.#wanted = undefined;
        try {
          if (plan === null) await rm(this.path, { force: true });
          else await this.#write(plan);
        } catch (err) {
          this.#logger.error({ err, path: this.path }, 'cannot write the movement plan');
        }
      }
    } finally {
      this.#writing = false;
    }
  }

  async #write(plan: PersistedPlan): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const temporary = `${this.path}.tmp`;
    const file = await open(temporary, 'w');
    try {
      await file.writeFile(JSON.stringify({ format: PLAN_FORMAT, ...plan }));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, this.path);
  }
}

const STATES: ReadonlySet<MemberState> = new Set(['alive', 'suspect', 'dead', 'left']);

function parsePlan(json: unknown): PersistedPlan {
  const o = json as { format?: unknown; views?: unknown; parameters?: unknown; cleared?: unknown };
  if (typeof o !== 'object' || o === null || o.format !== PLAN_FORMAT) throw new Error('unknown plan format');
  if (!Array.isArray(o.views) || !o.views.every((v) => Array.isArray(v) && v.every(isMember))) {
    throw new Error('views must be lists of members');
  }
  if (!Array.isArray(o.cleared) || !o.cleared.every(isCleared)) throw new Error('cleared must list ranges');
  if (
    o.parameters !== undefined &&
    (!Array.isArray(o.parameters) || o.parameters.length !== o.views.length || !o.parameters.every(isParameters))
  ) {
    throw new Error('parameters must hold one set of numbers per view');
  }
  const parameters = o.parameters === undefined ? {} : { parameters: o.parameters as ViewParameters[] };
  return { views: o.views as Member[][], ...parameters, cleared: o.cleared as PersistedPlan['cleared'] };
}

function isMember(value: unknown): value is Member {
  const m = value as Partial<Member>;
  return (
    typeof m === 'object' &&
    m !== null &&
    typeof m.id === 'string' &&
    typeof m.address === 'string' &&
    typeof m.state === 'string' &&
    STATES.has(m.state) &&
    typeof m.incarnation === 'number' &&
    typeof m.meta === 'object' &&
    m.meta !== null
  );
}

function isParameters(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === 'number' && Number.isFinite(v))
  );
}

function isCleared(value: unknown): boolean {
  const c = value as Partial<ClearedMove>;
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.range === 'string' &&
    typeof c.source === 'string' &&
    typeof c.view === 'string'
  );
}
