import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Member, Membership } from '@kvmesh/core';
import { DEFAULT_VIRTUAL_NODES, createConsistentHashPlacement } from '@kvmesh/plugins';
import type { ConsistentHashOptions } from '@kvmesh/plugins';
import { freePort, startKvmesh } from './children.js';

// A small kvmesh cluster in child processes on loopback addresses 127.0.0.x:
// static membership (the whole view in every config, no failure detection to
// wait for), consistent-hash placement, lmdb storage with its defaults, and
// the http transport sharing each node's API port.

export interface RingOptions {
  readonly mode: 'ring' | 'shards';
  readonly replicationFactor: number;
  readonly writeQuorum: number;
  readonly readQuorum: number;
}

/** What differs between the clusters of the benches. */
export interface ClusterOptions {
  readonly placement: RingOptions;
  readonly codec: 'json' | 'msgpack' | 'protobuf';
  /** Last byte of the first node's loopback address (127.0.0.<firstHost>); the others follow. */
  readonly firstHost: number;
  /** Number of the first node's id (`n<firstId>`); default 1. */
  readonly firstId?: number;
  /** The port every node listens on; default a port free on all their addresses. */
  readonly port?: number;
  /** The config's `kv` section; default none (every default). */
  readonly kv?: Readonly<Record<string, unknown>>;
  /**
   * `host:port` seeds of every node: a node alone in its view with no seed
   * takes no internal frames without a cluster secret, so one that is to be
   * added by a view change names the nodes that will send it.
   */
  readonly join?: readonly string[];
}

export interface ClusterNode {
  readonly id: string;
  /** The node as a view names it: `id@host:port`. */
  readonly member: string;
  readonly port: number;
  readonly url: string;
  readonly child: ChildProcess;
}

/**
 * `count` nodes, ids `n<firstId>`.. on 127.0.0.<firstHost>.., one port shared
 * by all, each with the view of exactly these nodes; resolves once every one
 * answers `GET /v1/ready`.
 */
export async function startCluster(
  dir: string,
  count: number,
  options: ClusterOptions,
  nodeArgs: readonly string[],
): Promise<ClusterNode[]> {
  const { placement, codec, firstHost } = options;
  const hosts = Array.from({ length: count }, (_, i) => `127.0.0.${firstHost + i}`);
  const port = options.port ?? (await freePort(hosts));
  const ids = hosts.map((_, i) => `n${(options.firstId ?? 1) + i}`);
  const view = hosts.map((host, i) => `${ids[i]}@${host}:${port}`);
  const started = await Promise.all(
    hosts.map(async (host, i) => {
      const config = join(dir, `${ids[i]}.json`);
      await writeFile(
        config,
        JSON.stringify({
          node: { id: ids[i], address: `${host}:${port}`, dataDir: join(dir, ids[i]!) },
          membership: { name: 'static', options: { view } },
          placement: { name: 'consistent-hash', options: placement },
          storage: { name: 'lmdb' },
          transport: { name: 'http' },
          codec: { name: codec },
          ...(options.kv === undefined ? {} : { kv: options.kv }),
          ...(options.join === undefined ? {} : { join: options.join }),
          log: { level: 'info' },
        }),
      );
      const { child, url } = await startKvmesh(config, nodeArgs);
      return { id: ids[i]!, member: view[i]!, port, url, child };
    }),
  );
  await Promise.all(started.map((node) => waitReady(node.url)));
  return started;
}

/** Waits until `GET /v1/ready` answers 200. */
export async function waitReady(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const status = await fetch(`${url}/v1/ready`).then(
      async (res) => (await res.arrayBuffer(), res.status),
      () => 0,
    );
    if (status === 200) return;
    if (performance.now() > deadline) throw new Error(`${url} is not ready after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Each key's replica ids in placement order (the first is the primary), as
 * the cluster's own placement computes them: the same plugin, fed the same
 * member ids, in this process.
 */
export async function replicasOf(
  ids: readonly string[],
  placement: RingOptions,
  keys: readonly string[],
): Promise<Map<string, string[]>> {
  const members: Member[] = [...ids]
    .sort()
    .map((id) => Object.freeze({ id, address: `bench://${id}`, state: 'alive', incarnation: 0, meta: {} }));
  const membership = {
    name: 'bench',
    self: members[0]!,
    members: () => members,
    on: () => () => {},
  } as unknown as Membership;
  const options: ConsistentHashOptions = {
    ...placement,
    virtualNodes: DEFAULT_VIRTUAL_NODES,
    fallbacks: placement.replicationFactor,
    hash: 'xxhash32',
    dataRoles: ['storage'],
  };
  const components = { membership } as Parameters<typeof createConsistentHashPlacement>[0];
  const ring = await createConsistentHashPlacement(components, options);
  return new Map(keys.map((key) => [key, ring.locateNow(key).replicas.map((m) => m.id)]));
}

/** Live keys in a node's local storage, from its `/metrics` (`kvmesh_keys`). */
export async function storedKeys(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('kvmesh_keys '));
  if (line === undefined) throw new Error(`${url}/metrics has no kvmesh_keys`);
  return Number(line.slice('kvmesh_keys '.length));
}
