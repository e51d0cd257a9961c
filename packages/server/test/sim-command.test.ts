import test from 'ava';
import { runCli } from './helpers/cli.js';

/** The fields `kvmesh sim membership --json` promises, with their JSON types ('number|null' where a figure may not exist). */
const FIELDS: Readonly<Record<string, string>> = {
  plugin: 'string',
  transport: 'string',
  nodes: 'number',
  loss: 'number',
  seed: 'number',
  periods: 'number',
  crashes: 'number',
  protocolPeriodMs: 'number',
  suspicionTimeoutMs: 'number|null',
  detectionBoundMs: 'number|null',
  detectionMsP50: 'number|null',
  detectionMsP99: 'number|null',
  detectionMsMax: 'number|null',
  firstSuspicionPeriodsMean: 'number|null',
  firstSuspicionMsMax: 'number|null',
  firstDeathPeriodsMean: 'number|null',
  undetected: 'number',
  falsePositives: 'number',
  messagesPerMemberPerPeriod: 'number',
  convergeMs: 'number',
  wallMs: 'number',
};

type Run = Record<string, any>;

function jsonLines(stdout: string): Run[] {
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Run);
}

function checkShape(t: { true(value: boolean, message?: string): void }, run: Run): void {
  for (const [field, types] of Object.entries(FIELDS)) {
    const actual = run[field] === null ? 'null' : typeof run[field];
    t.true(types.split('|').includes(actual), `${field} is ${actual}, expected ${types}`);
  }
}

test('--json prints one object per run with detection, false positives and message figures for swim', async (t) => {
  const result = await runCli(['sim', 'membership', '--nodes', '10', '--periods', '30', '--json']);
  t.is(result.code, 0, result.stderr);
  const runs = jsonLines(result.stdout);
  t.is(runs.length, 1);
  const run = runs[0]!;
  checkShape(t, run);
  t.like(run, { plugin: 'swim', transport: 'mixed', nodes: 10, loss: 0, seed: 1, crashes: 2, undetected: 0 });
  t.is(run['protocolPeriodMs'], 1000, 'the default probeIntervalMs');
  t.is(run['suspicionTimeoutMs'], 4000, 'suspicionMult 4 x max(1, log10 10) periods');
  t.is(run['falsePositives'], 0);
  t.true(run['detectionMsP50'] <= run['detectionMsP99'] && run['detectionMsP99'] <= run['detectionBoundMs']);
  t.is(run['crashTimings'].length, 2);
  // A member suspects a crashed one a whole period after its unanswered ping, and everyone holds it dead later.
  for (const crash of run['crashTimings']) {
    t.true(crash.firstSuspicionMs > 1000 && crash.firstSuspicionMs < crash.firstDeathMs, JSON.stringify(crash));
    t.true(crash.firstDeathMs <= crash.everyoneMs, JSON.stringify(crash));
  }
  t.true(run['firstSuspicionPeriodsMean'] > 1 && run['firstSuspicionPeriodsMean'] < run['firstDeathPeriodsMean']);
  t.true(run['messagesPerMemberPerPeriod'] > 1 && run['messagesPerMemberPerPeriod'] < 4);
  t.true(run['largestMessageBytes'] <= 1192, 'every datagram fits the udp limit');
});

test('one run per cluster size and loss rate; the same seed gives the same figures', async (t) => {
  const args = ['sim', 'membership', '--nodes', '6,8', '--loss', '0,0.1', '--periods', '20', '--seed', '7', '--json'];
  const [first, second] = await Promise.all([runCli(args), runCli(args)]);
  t.is(first.code, 0, first.stderr);
  const runs = jsonLines(first.stdout);
  t.deepEqual(
    runs.map((r) => [r['nodes'], r['loss']]),
    [
      [6, 0],
      [6, 0.1],
      [8, 0],
      [8, 0.1],
    ],
  );
  const withoutWall = (r: Run): Run => ({ ...r, wallMs: 0 });
  t.deepEqual(jsonLines(second.stdout).map(withoutWall), runs.map(withoutWall));
});

test('controller, heartbeat and static run too, each with the roles, view and transport it needs', async (t) => {
  const results = await Promise.all(
    ['controller', 'heartbeat', 'static'].map((plugin) =>
      runCli(['sim', 'membership', '--plugin', plugin, '--nodes', '8', '--periods', '20', '--json']),
    ),
  );
  for (const result of results) t.is(result.code, 0, result.stderr);
  const runs = results.map((r) => jsonLines(r.stdout)[0]!);
  for (const run of runs) checkShape(t, run);
  const [c, h, s] = runs as [Run, Run, Run];

  t.like(c, { plugin: 'controller', transport: 'http', suspicionTimeoutMs: null, undetected: 0, falsePositives: 0 });
  t.true(c['crashes'] > 0);
  // The controller notices after failAfterMs (3 s) without a heartbeat and its probes (3 x 300 ms).
  t.true(c['detectionMsP99'] <= c['detectionBoundMs']);

  t.like(h, { plugin: 'heartbeat', transport: 'http', undetected: 0, falsePositives: 0 });
  // failAfterMs (10 s) + one heartbeat period.
  t.true(h['detectionMsP99'] <= 11_000);

  t.like(s, { plugin: 'static', crashes: 0, detectionBoundMs: null, detectionMsP99: null, falsePositives: 0 });
});

test('without --json it prints a table: a header and one row per run', async (t) => {
  const result = await runCli(['sim', 'membership', '--nodes', '5', '--periods', '10']);
  t.is(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split('\n');
  t.is(lines.length, 2);
  t.regex(
    lines[0]!,
    /^PLUGIN\s+TRANSPORT\s+NODES\s+LOSS.*FIRST_SUSPECT_PERIODS\s+FIRST_DEAD_PERIODS\s+P50_MS\s+P99_MS.*FALSE_POS\s+MSG\/MEMBER\/PERIOD/,
  );
  t.regex(lines[1]!, /^swim\s+mixed\s+5\s+0\s/);
});

test('bad options exit 1 with a message that names the option and what it expects', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--nodes', '0'], /--nodes.*integer >= 2/],
    [['--nodes', '10,x'], /--nodes.*integer >= 2/],
    [['--loss', '1.5'], /--loss.*from 0 up to \(not including\) 1/],
    [['--periods', '0'], /--periods.*integer >= 1/],
    [['--seed', '1.5'], /--seed.*integer >= 0/],
    [['--crashes', '-1'], /--crashes.*integer >= 0/],
    [['--plugin', 'gossip'], /unknown membership plugin 'gossip'; available: controller, heartbeat, static, swim/],
    [['--transport', 'tcp'], /--transport.*mixed, udp, http/],
    [['--options', '[1]'], /--options expects a JSON object/],
    [
      ['--options', '{"probeIntervalMs":5}', '--nodes', '3'],
      /KVMESH_ERR_CONFIG_INVALID.*\n.*probeIntervalMs: must be >= 10/,
    ],
    [['--plugin', 'static', '--crashes', '2'], /'static' detects no failure.*--crashes must be 0/],
  ];
  for (const [args, message] of cases) {
    const result = await runCli(['sim', 'membership', ...args]);
    t.is(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
    t.regex(result.stderr, message, args.join(' '));
    t.is(result.stdout, '', `${args.join(' ')} prints nothing on stdout`);
  }
});

test('sim placement --json prints the lookup figures and, with --churn, the failure and repair figures', async (t) => {
  const result = await runCli([
    'sim',
    'placement',
    '--plugin',
    'chord',
    '--nodes',
    '48',
    '--lookups',
    '300',
    '--churn',
    '0.2',
    '--keys',
    '200',
    '--json',
  ]);
  t.is(result.code, 0, result.stderr);
  const [run] = jsonLines(result.stdout);
  t.log(JSON.stringify(run));
  for (const field of ['nodes', 'lookups', 'hopsMean', 'hopsP99', 'successRate', 'messagesPerLookup', 'settleMs']) {
    t.is(typeof run![field], 'number', field);
  }
  t.is(run!['nodes'], 48);
  t.is(run!['successRate'], 1);
  const failure = run!['failure'] as Run;
  t.is(failure['nodesFailed'], 9);
  t.is(typeof failure['lookupsFailedAfterCrash'], 'number');
  t.is(typeof failure['repairMs'], 'number');
  t.is(failure['keysLost'], failure['keysWithEveryReplicaFailed']);
});

test('sim placement prints a table by default, and refuses an unknown plugin or a placement that needs a membership', async (t) => {
  const [table, unknown, full, badChurn] = await Promise.all([
    runCli(['sim', 'placement', '--plugin', 'chord', '--nodes', '16', '--lookups', '100']),
    runCli(['sim', 'placement', '--plugin', 'nope', '--nodes', '4']),
    runCli(['sim', 'placement', '--plugin', 'consistent-hash', '--nodes', '4']),
    runCli(['sim', 'placement', '--plugin', 'chord', '--churn', '1.5']),
  ]);
  t.is(table.code, 0, table.stderr);
  const lines = table.stdout.trim().split('\n');
  t.is(lines.length, 2);
  t.regex(lines[0]!, /^PLUGIN\s+NODES\s+LOOKUPS\s+SUCCESS\s+HOPS_MEAN\s+HOPS_P99\s+MSG\/LOOKUP/);
  t.regex(lines[1]!, /^chord\s+16\s+100\s+1\s/);
  t.not(unknown.code, 0);
  t.regex(unknown.stderr, /unknown placement plugin 'nope'; available: .*chord/);
  t.not(full.code, 0);
  t.regex(full.stderr, /needs membership/);
  t.not(badChurn.code, 0);
  t.regex(badChurn.stderr, /--churn expects a fraction/);
});
