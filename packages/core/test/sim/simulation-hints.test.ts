import test from 'ava';
import {
  PluginRegistry,
  SIM_DEFAULT_FRAME_LIMITS,
  definePlugin,
  frameProfiles,
  isKvError,
  matchFrameProfile,
  simulateMembership,
} from '../../src/index.js';
import type { AnyPluginManifest, Membership, MembershipSimulation, Transport } from '../../src/index.js';
import { testCodec } from '../helpers/test-codec.js';
import { allToAllMembership } from './all-to-all-membership.js';

function transport(name: string, frameLimits?: { maxMessageBytes: number; maxFrameBytes: number }): AnyPluginManifest {
  return definePlugin({
    family: 'transport',
    name,
    description: `Test transport ${name}.`,
    optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
    needs: [],
    create: () => () => ({}) as Transport,
    ...(frameLimits ? { frameLimits } : {}),
  });
}

interface Built {
  readonly id: string;
  readonly role: string;
  readonly options: Record<string, unknown>;
  readonly maxMessageBytes: number;
  readonly maxFrameBytes: number;
}

/** The all-to-all membership under another name, with a hint, recording what each node was built with. */
function hinted(simulation: MembershipSimulation, built: Built[]): AnyPluginManifest {
  const base = allToAllMembership();
  return definePlugin({
    family: 'membership',
    name: 'hinted',
    description: base.description,
    optionsSchema: base.optionsSchema,
    needs: [...base.needs, 'node', 'transport'],
    create: (options: Record<string, unknown>) => (components) => {
      const { node, transport } = components as { node: { id: string; role: string }; transport: Transport };
      built.push({
        id: node.id,
        role: node.role,
        options,
        maxMessageBytes: transport.maxMessageBytes,
        maxFrameBytes: transport.maxFrameBytes,
      });
      return base.create(options)(components) as Membership | Promise<Membership>;
    },
    simulation,
  });
}

test('frame profiles are the simulator default, then every transport declaring limits, smallest frames first', (t) => {
  const registry = new PluginRegistry([
    transport('wide', { maxMessageBytes: 1000, maxFrameBytes: 1_000_000 }),
    transport('narrow', { maxMessageBytes: 500, maxFrameBytes: 500 }),
    transport('silent'),
  ]);
  const profiles = frameProfiles(registry);
  t.deepEqual(
    profiles.map((p) => p.name),
    ['mixed', 'narrow', 'wide'],
  );
  t.deepEqual(profiles[0]!.limits, SIM_DEFAULT_FRAME_LIMITS);
  t.is(matchFrameProfile(profiles, { maxMessageBytes: 500, maxFrameBytes: 500 })?.name, 'narrow');
  t.is(matchFrameProfile(profiles, { ...SIM_DEFAULT_FRAME_LIMITS })?.name, 'mixed');
  t.is(matchFrameProfile(profiles, { maxMessageBytes: 500, maxFrameBytes: 501 }), undefined);
});

test('definePlugin rejects a malformed hint and a hint on the wrong family', (t) => {
  const codec = testCodec();
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...codec, simulation: {} }, /simulation is for membership and placement plugins only/],
    [{ ...codec, frameLimits: { maxMessageBytes: 1, maxFrameBytes: 1 } }, /frameLimits is for transport plugins only/],
    [{ ...transport('t'), frameLimits: { maxMessageBytes: 0, maxFrameBytes: 10 } }, /frameLimits.maxMessageBytes/],
    [{ ...allToAllMembership(), simulation: { role: 'keeper' } }, /simulation.role must be a function/],
    [{ ...allToAllMembership(), simulation: { detectsFailures: 'no' } }, /simulation.detectsFailures/],
    [{ ...allToAllMembership(), simulation: { frameLimits: { maxMessageBytes: 10 } } }, /frameLimits.maxFrameBytes/],
  ];
  for (const [manifest, message] of cases) {
    const err = t.throws(() => definePlugin(manifest as unknown as AnyPluginManifest));
    t.true(isKvError(err) && err.code === 'KVMESH_ERR_PLUGIN_INVALID', String(err));
    t.regex(err!.message, message);
  }
});

test('simulateMembership builds every member from the hint: role, options given the whole member list, frames, no crashes', async (t) => {
  const built: Built[] = [];
  const memberLists: number[] = [];
  const plugin = hinted(
    {
      role: (member, members) => {
        memberLists.push(members.length);
        return member.index === 0 ? 'keeper' : 'storage';
      },
      options: (member, members, options) => ({ ...options, failAfterMs: 500 + members.length }),
      detectsFailures: false,
      frameLimits: { maxMessageBytes: 4096, maxFrameBytes: 8192 },
    },
    built,
  );
  const result = await simulateMembership({
    registry: new PluginRegistry([testCodec(), plugin]),
    plugin: 'hinted',
    options: { periodMs: 100 },
    nodes: 4,
    periods: 10,
  });
  t.is(result.crashes, 0, 'a strategy that detects no failure is never crashed');
  t.deepEqual(memberLists, [4, 4, 4, 4], 'every member is configured knowing the whole cluster');
  t.deepEqual(
    built.map((b) => [b.id, b.role]),
    [
      ['n1', 'keeper'],
      ['n2', 'storage'],
      ['n3', 'storage'],
      ['n4', 'storage'],
    ],
  );
  for (const b of built) {
    t.like(b.options, { periodMs: 100, failAfterMs: 504 });
    t.deepEqual([b.maxMessageBytes, b.maxFrameBytes], [4096, 8192]);
  }
});

test('essential members are never crashed, and what the caller sets wins over the hint', async (t) => {
  const built: Built[] = [];
  const plugin = hinted(
    { essential: (member) => member.index === 0, frameLimits: { maxMessageBytes: 4096, maxFrameBytes: 8192 } },
    built,
  );
  const result = await simulateMembership({
    registry: new PluginRegistry([testCodec(), plugin]),
    plugin: 'hinted',
    nodes: 6,
    periods: 20,
    crashes: 4,
    transport: { maxMessageBytes: 2048, maxFrameBytes: 2048 },
  });
  // At most N - 2 of the crashable members go: 5 candidates once n1 is spared, so 3 (4 without the hint).
  t.is(result.crashes, 3);
  t.is(result.undetected, 0);
  t.true(built.every((b) => b.maxMessageBytes === 2048 && b.maxFrameBytes === 2048));
});
