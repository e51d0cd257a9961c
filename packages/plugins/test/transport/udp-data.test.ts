import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  PluginRegistry,
  createNode,
  kvConfigSchema,
  kvServiceDefinition,
  validateConfig,
  type KvNode,
  type KvService,
  type Storage,
} from '@kvmesh/core';
import { builtinPlugins, requestBytesFor } from '../../src/index.js';
import { freeUdpTcpPort, sameBytes } from './udp-ports.js';

const registry = new PluginRegistry(builtinPlugins);
const MIB = 1024 * 1024;

/** Every node's own files (a movement plan) go under one temporary folder, never into the working tree. */
const DATA = mkdtempSync(join(tmpdir(), 'kvmesh-udp-data-'));
test.after.always(() => rmSync(DATA, { recursive: true, force: true }));

function config(id: string, address: string, extra: Record<string, unknown> = {}) {
  return validateConfig(
    {
      node: { id, address, dataDir: join(DATA, id) },
      transport: { name: 'udp' },
      codec: { name: 'json' },
      storage: { name: 'memory' },
      ...extra,
    },
    registry,
    { extensions: { kv: kvConfigSchema } },
  );
}

test('a node whose value limit needs larger frames than the udp transport carries is refused by the config check', async (t) => {
  const error = await t.throwsAsync(
    async () => createNode({ config: config('n1', '127.0.0.1:0', { limits: { maxValueBytes: 8 * MIB } }), registry }),
    { code: 'KVMESH_ERR_CONFIG_INVALID' },
  );
  t.log(error!.message);
  t.regex(error!.message, /\/limits\/maxValueBytes: 8388608 /);
  t.regex(error!.message, /the udp transport carries at most/);
  t.regex(error!.message, new RegExp(`at least ${requestBytesFor({ maxValueBytes: 8 * MIB, maxKeyBytes: 1024 })}`));
  t.regex(error!.message, /\/transport\/options\/maxFrameBytes/);
});

test('the transports refuse in kvmesh validate what they cannot carry, at /limits/maxValueBytes', (t) => {
  const limits = { maxValueBytes: 8 * MIB, maxKeyBytes: 1024 };
  for (const manifest of builtinPlugins.filter((p) => p.family === 'transport')) {
    const defaults = manifest.checkConfig?.(
      { maxFrameBytes: 4 * MIB },
      { limits: { maxValueBytes: MIB, maxKeyBytes: 1024 } },
    );
    t.deepEqual(defaults, [], `${manifest.name} carries 1 MiB values in 4 MiB frames`);
    const refused = manifest.checkConfig?.({ maxFrameBytes: 4 * MIB }, { limits }) ?? [];
    t.is(refused.length, 1, manifest.name);
    t.is(refused[0]?.path, '/limits/maxValueBytes');
    t.deepEqual(manifest.checkConfig?.({ maxFrameBytes: requestBytesFor(limits) }, { limits }), [], manifest.name);
  }
});

test('the same value limit builds once transport.options.maxFrameBytes carries it; the defaults carry 1 MiB', async (t) => {
  const raised = await createNode({
    config: config('n1', '127.0.0.1:0', {
      limits: { maxValueBytes: 8 * MIB },
      transport: { name: 'udp', options: { maxFrameBytes: 12 * MIB } },
    }),
    registry,
  });
  t.is(raised.state, 'created');
  const defaults = await createNode({ config: config('n1', '127.0.0.1:0'), registry });
  t.is(defaults.state, 'created');
  t.true(requestBytesFor({ maxValueBytes: MIB, maxKeyBytes: 1024 }) <= 4 * MIB);
});

test('a 1 MiB value is written to both replicas of a two-node ring over udp, and read back from either', async (t) => {
  const ports = [await freeUdpTcpPort('127.0.0.1'), await freeUdpTcpPort('127.0.0.2')];
  const addresses = [`127.0.0.1:${ports[0]}`, `127.0.0.2:${ports[1]}`];
  const view = addresses.map((a, i) => `n${i + 1}@${a}`);
  const nodes: KvNode[] = [];
  t.teardown(async () => {
    for (const node of nodes) await node.stop();
  });
  for (const [i, address] of addresses.entries()) {
    const node = await createNode({
      config: config(`n${i + 1}`, address, {
        membership: { name: 'static', options: { view } },
        placement: {
          name: 'consistent-hash',
          options: { mode: 'ring', replicationFactor: 2, writeQuorum: 2, readQuorum: 2 },
        },
      }),
      registry,
      extras: [kvServiceDefinition()],
    });
    nodes.push(node);
    await node.start();
  }
  const value = new Uint8Array(MIB);
  for (let i = 0; i < value.length; i++) value[i] = (i * 7 + (i >> 10)) & 0xff;
  const kv = nodes.map((n) => n.get<KvService>('kv'));
  for (const [i, key] of ['large-a', 'large-b', 'large-c'].entries()) {
    const began = performance.now();
    const put = await kv[i % 2]!.put(key, value, 'application/octet-stream');
    t.log(`put of ${value.length} bytes (json codec, W=2) in ${(performance.now() - began).toFixed(1)} ms`);
    t.true(put.created);
    for (const reader of kv) t.true(sameBytes((await reader.get(key)).record!.value, value));
  }
  for (const node of nodes) t.is(await node.get<Storage>('storage').count(), 3, 'every record is on both replicas');
});
