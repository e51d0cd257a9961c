import test from 'ava';
import {
  CORE_MESSAGES,
  MOVEMENT_MESSAGES,
  PluginRegistry,
  createMessageRegistry,
  defineMovementMessages,
  isKvError,
  kvConfigSchema,
  movementConfigProperties,
  readMovementSettings,
  validateConfig,
  viewFingerprint,
} from '../../src/index.js';
import { fakeStorage, stubPlugin } from '../helpers/fake-plugins.js';
import { member, record } from './helpers.js';

const registry = new PluginRegistry([fakeStorage([]), stubPlugin('codec', 'json'), stubPlugin('transport', 'http')]);
const minimal = { node: { address: '127.0.0.1:4000' }, storage: { name: 'fake-store' } };

test('every movement option has a description and a default, and lives in the kv section', (t) => {
  const kvProperties = kvConfigSchema['properties'] as Record<string, unknown>;
  for (const [name, schema] of Object.entries(movementConfigProperties)) {
    t.is(typeof schema['description'], 'string', name);
    t.not(schema['default'], undefined, name);
    t.is(kvProperties[name], schema, name);
  }
});

test('the validated config fills the defaults, and readMovementSettings reads them', (t) => {
  const config = validateConfig(minimal, registry, { extensions: { kv: kvConfigSchema } });
  const settings = readMovementSettings(config as unknown as Record<string, unknown>);
  t.deepEqual(settings, readMovementSettings({}));
  t.is(settings.batchSize, 500);
  t.is(settings.rebalanceMaxKeysPerSecond, 0);
  t.is(settings.hintReplayIntervalMs, 1000);
  t.is(settings.antiEntropyIntervalMs, 30_000);
  t.is(settings.antiEntropyBuckets, 256);
  t.is(readMovementSettings({ kv: { batchSize: 7, antiEntropyIntervalMs: 0 } }).batchSize, 7);
});

test('a bad option is refused by the schema and by readMovementSettings, naming its path', (t) => {
  const err = t.throws(() =>
    validateConfig({ ...minimal, kv: { batchSize: 0 } }, registry, { extensions: { kv: kvConfigSchema } }),
  );
  t.true(isKvError(err, 'KVMESH_ERR_CONFIG_INVALID'));
  t.regex(String(err), /kv\/batchSize/);
  const direct = t.throws(() => readMovementSettings({ kv: { antiEntropyBuckets: 'many' } }));
  t.true(isKvError(direct, 'KVMESH_ERR_CONFIG_INVALID'));
  t.regex(direct!.message, /\/kv\/antiEntropyBuckets/);
});

test('movement messages round-trip through protobuf binary in canonical form', (t) => {
  const messages = createMessageRegistry();
  const names = defineMovementMessages(messages);
  t.true(names.includes(MOVEMENT_MESSAGES.putBatch));
  t.deepEqual(defineMovementMessages(messages), names, 'defining twice is harmless');
  const batch = messages.get(MOVEMENT_MESSAGES.putBatch);
  const payload = {
    records: [record('a', 'x', 1_700_000_000_123, 'n1'), record('b', '', 5, 'n2', true)],
    epoch: 42,
    source: 'n1',
    purpose: 'PURPOSE_HINT',
  };
  t.deepEqual(batch.fromBinary(batch.toBinary(payload)), batch.normalize(payload));
  const reply = messages.get(MOVEMENT_MESSAGES.putBatchReply);
  const outcomes = { outcomes: ['PUT_WRITTEN', 'PUT_ALREADY_NEWER', 'PUT_REFUSED'] };
  t.deepEqual(reply.fromBinary(reply.toBinary(outcomes)), outcomes);
  const digest = messages.get(MOVEMENT_MESSAGES.digestReply);
  const sums = { sums: [0xffffffff, 0], xors: [1, 2], counts: [3, 4] };
  t.deepEqual(digest.fromBinary(digest.toBinary(sums)), sums);
  t.true(messages.has(CORE_MESSAGES.empty));
});

test('a view fingerprint depends on the members placement counts and which of them are present', (t) => {
  const one = viewFingerprint([member('a'), member('b'), member('c', 'dead')]);
  t.is(one, viewFingerprint([member('b', 'suspect'), member('c', 'dead'), member('a')]));
  t.not(one, viewFingerprint([member('a'), member('b'), member('c')]), 'c came back');
  // Placement keeps a dead member as a replica; once it left (or is forgotten) other members own its data.
  t.not(one, viewFingerprint([member('a'), member('b'), member('c', 'left')]), 'c was removed');
  t.not(one, viewFingerprint([member('a'), member('b')]), 'c was forgotten');
  t.is(viewFingerprint([member('a'), member('b'), member('c', 'left')]), viewFingerprint([member('b'), member('a')]));
  t.regex(one, /^[0-9a-f]{16}$/);
});
