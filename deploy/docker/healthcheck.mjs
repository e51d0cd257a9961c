// HEALTHCHECK of the kvmesh image: exit 0 when the node's GET /v1/health answers 200.
//
// The node listens where its config says (the CSE138 config: the host of
// ADDRESS, not loopback), so the address comes from the lock file that
// `kvmesh start` keeps in its data directory (docs/operations.md), and
// loopback at its port is tried too (api.host 0.0.0.0). KVMESH_HEALTH_URL,
// when set, is the only URL asked (an api.port apart from node.address).
import { get } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

const TIMEOUT_MS = 3000;

async function candidates() {
  const env = process.env;
  if (env.KVMESH_HEALTH_URL) return [env.KVMESH_HEALTH_URL];
  const lock = JSON.parse(await readFile(join(env.KVMESH_DATA_DIR ?? '/var/lib/kvmesh', 'kvmesh.lock'), 'utf8'));
  const address = String(lock.address);
  const port = address.slice(address.lastIndexOf(':') + 1);
  return [`http://${address}/v1/health`, `http://127.0.0.1:${port}/v1/health`];
}

function healthy(url) {
  return new Promise((resolve) => {
    const req = get(url, { timeout: TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

try {
  const urls = await candidates();
  const answers = await Promise.all(urls.map(healthy));
  if (!answers.includes(true)) {
    console.error(`kvmesh healthcheck: no 200 from ${urls.join(' or ')}`);
    process.exitCode = 1;
  }
} catch (err) {
  console.error(`kvmesh healthcheck: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
