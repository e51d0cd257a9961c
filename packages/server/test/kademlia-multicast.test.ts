import { createSocket } from 'node:dgram';
import test from 'ava';
import {
  ProcessCluster,
  clusterOf,
  freePort,
  getValue,
  loopbackHosts,
  putValue,
  readTopology,
  tempDir,
  writeConfig,
} from './helpers/cluster.js';
import { waitFor } from './helpers/http.js';

/** KeyShift nodes given no seed at all: they find each other by UDP multicast on the loopback interface. */
const TOPOLOGY = 'kademlia-local.json';
const HOSTS = loopbackHosts(115, 3);
const IDS = ['n1', 'n2', 'n3'];
const GROUP = `239.255.${77 + (process.pid % 100)}.${1 + (process.pid % 250)}`;

/** Whether a datagram sent to GROUP on the loopback interface comes back: undefined when it does, else why not. */
async function multicastProblem(port: number): Promise<string | undefined> {
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  try {
    return await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve('a datagram sent to the group never came back'), 2_000);
      socket.on('error', (err) => {
        clearTimeout(timer);
        resolve(err.message);
      });
      socket.on('message', (m) => {
        if (m.toString() !== 'probe') return;
        clearTimeout(timer);
        resolve(undefined);
      });
      socket.bind(port, () => {
        try {
          socket.addMembership(GROUP, HOSTS[0]);
          socket.setMulticastInterface(HOSTS[0]!);
          socket.setMulticastLoopback(true);
        } catch (err) {
          clearTimeout(timer);
          resolve(`joining ${GROUP} on ${HOSTS[0]} failed: ${(err as Error).message}`);
          return;
        }
        socket.send('probe', port, GROUP);
      });
    });
  } finally {
    socket.close();
  }
}

const GROUP_PORT = await freePort(['0.0.0.0'], true);
const problem = await multicastProblem(GROUP_PORT);
const title = 'nodes given no seed find each other by UDP multicast and serve the KeyShift topology';

if (problem !== undefined) {
  test.skip(`${title} (skipped: the loopback interface carries no multicast here: ${problem})`, () => undefined);
} else {
  test(title, async (t) => {
    const config = await readTopology(TOPOLOGY);
    const dir = await tempDir(t, 'kademlia-multicast');
    const port = await freePort(HOSTS, true);
    delete config['membership'];
    config['join'] = [];
    config['placement'].options = {
      ...config['placement'].options,
      seeds: [],
      multicast: { enabled: true, group: GROUP, port: GROUP_PORT, intervalMs: 500, cluster: `test-${process.pid}` },
    };
    const file = await writeConfig(dir, TOPOLOGY, config);
    const cluster = new ProcessCluster({ configFile: file, ids: IDS, hosts: HOSTS, port, dir });
    const started = Date.now();
    await Promise.all(IDS.map((id) => cluster.start(t, id)));
    await waitFor(
      'every node to know the two others',
      async () => {
        for (const id of IDS) if ((await clusterOf(cluster.url(id))).placement['contacts'] !== 2) return false;
        return true;
      },
      20_000,
      50,
    );
    t.log(`group ${GROUP}:${GROUP_PORT}: 3 nodes found each other in ${Date.now() - started} ms`);
    t.is((await putValue(cluster.url('n1'), 'found', 'yes')).status, 201);
    t.deepEqual(await getValue(cluster.url('n3'), 'found'), { status: 200, value: 'yes' });
    t.deepEqual(await getValue(cluster.url('n2'), 'found'), { status: 200, value: 'yes' });
  });
}
