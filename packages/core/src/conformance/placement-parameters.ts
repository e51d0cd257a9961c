import type { ExecutionContext } from 'ava';
import type { ViewParameters } from '../contracts/membership.js';
import type { Placement } from '../contracts/placement.js';
import { isKvError } from '../errors.js';
import type { PlacementWorld } from './placement-world.js';
import { planProblem } from './placement.js';

/** What the `parameters` check of the placement suite needs from it. */
export interface ParameterCheckContext {
  /** The parameter sets the placement declares it takes (empty: none). */
  readonly parameters: readonly ViewParameters[];
  /** Data members of `world()`. */
  readonly members: number;
  /** A fresh world of the suite's cluster. */
  readonly world: () => PlacementWorld;
  /** A started placement on node `id` of `world`, stopped at teardown. */
  readonly build: (world: PlacementWorld, id: string) => Promise<Placement>;
  readonly keys: readonly string[];
  readonly prefix: string;
}

/** A parameter name no placement takes. */
const UNKNOWN: ViewParameters = Object.freeze({ noSuchParameterOfAnyPlacement: 1 });
const NONE: ViewParameters = Object.freeze({});

/**
 * The `parameters` check (see runPlacementConformance). A placement without
 * `checkViewParameters` takes no parameters: core refuses a view change that
 * carries some, and its `plan` must not depend on them. One with it accepts
 * `{}` and every declared set, refuses an unknown name with the typed error,
 * and places by a declared set exactly as a placement that saw it from the
 * start: a plan from `{}` to the set (members unchanged) moves each sampled
 * key from its replicas before to its replicas after, and the epoch changes
 * and comes back with the parameters.
 */
export async function checkViewParameters(t: ExecutionContext, c: ParameterCheckContext): Promise<void> {
  const world = c.world();
  const placement = await c.build(world, 'm001');
  const members = world.members();
  if (placement.checkViewParameters === undefined) {
    t.deepEqual(c.parameters, [], 'a placement that declares parameters answers checkViewParameters');
    t.deepEqual(
      placement.plan(members, members, { before: NONE, after: UNKNOWN }),
      placement.plan(members, members),
      'parameters change nothing in the plan of a placement that takes none',
    );
    t.log(`${c.prefix}: takes no view parameters (core refuses a view change that carries some)`);
    return;
  }
  t.notThrows(() => placement.checkViewParameters!(NONE, c.members), 'no parameters are always accepted');
  const refused = t.throws(() => placement.checkViewParameters!(UNKNOWN, c.members));
  t.true(
    isKvError(refused, 'KVMESH_ERR_PLACEMENT_PARAMETERS_INVALID'),
    `an unknown parameter is refused: ${String(refused)}`,
  );
  const epoch = placement.epoch;
  const counts: string[] = [];
  for (const parameters of c.parameters) {
    const label = JSON.stringify(parameters);
    t.notThrows(() => placement.checkViewParameters!(parameters, c.members), `${label} is accepted`);
    const truthWorld = c.world();
    truthWorld.setParameters(parameters);
    const truthBefore = await c.build(c.world(), 'f01');
    const truthAfter = await c.build(truthWorld, 'f01');
    const moves = placement.plan(members, members, { before: NONE, after: parameters });
    counts.push(`${label}: ${moves.length} moves`);
    const problem = await planProblem(moves, c.keys, truthBefore, truthAfter);
    if (problem !== undefined) return void t.fail(`${label}: ${problem}`);
    t.deepEqual(
      placement.plan(members, members, { before: parameters, after: parameters }),
      [],
      `${label}: no change, no move`,
    );
    const back = await planProblem(
      placement.plan(members, members, { before: parameters, after: NONE }),
      c.keys,
      truthAfter,
      truthBefore,
    );
    if (back !== undefined) return void t.fail(`${label} back to none: ${back}`);
    world.setParameters(parameters);
    t.is(
      placement.epoch,
      truthAfter.epoch,
      `${label}: the epoch of a node that hears the parameters is that of one that had them`,
    );
    if (moves.length > 0) t.not(placement.epoch, epoch, `${label}: parameters that move keys change the epoch`);
    world.setParameters(NONE);
    t.is(placement.epoch, epoch, `${label}: the epoch comes back with the parameters`);
  }
  t.log(
    `${c.prefix}: view parameters ${counts.length > 0 ? counts.join('; ') : 'none declared (unknown ones refused)'}`,
  );
}
