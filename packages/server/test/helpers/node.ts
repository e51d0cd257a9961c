import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@kvmesh/core';
import type { Logger } from '@kvmesh/core';
import type { ExecutionContext } from 'ava';
import { startNodeServer } from '../../src/node-server.js';
import type { NodeServer } from '../../src/node-server.js';

/** A one-node config on loopback with a free port, memory storage and every key local. */
export function testConfig(host = '127.0.0.1', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    node: { id: 'n1', address: `${host}:0` },
    storage: { name: 'memory' },
    placement: { name: 'single' },
    transport: { name: 'http' },
    codec: { name: 'json' },
    log: { level: 'silent' },
    ...extra,
  };
}

/** Starts a node server from `document`; it is shut down when the test ends, pass or fail. */
export async function startTestServer(
  t: ExecutionContext,
  document: Record<string, unknown> = testConfig(),
  logger: Logger = silentLogger,
): Promise<NodeServer> {
  const node = (document['node'] ?? {}) as Record<string, unknown>;
  if (node['dataDir'] === undefined) {
    // The node's own files (a movement plan, say) go to a folder of its own, never into the working tree.
    const dir = mkdtempSync(join(tmpdir(), 'kvmesh-test-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    document = { ...document, node: { ...node, dataDir: dir } };
  }
  const server = await startNodeServer({ document, logger });
  t.teardown(() => server.shutdown());
  return server;
}
