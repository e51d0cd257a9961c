import Koa from 'koa';
import { Pool } from 'undici';

// The proxy bench's reference for "one more hop": a plain Koa app relaying
// every request to one upstream through a pooled undici client, with
// nothing of kvmesh in the way (no placement, no codec, no quorum).
const [upstream, host = '127.0.0.1', port = '0'] = process.argv.slice(2);
if (upstream === undefined) throw new Error('usage: plain-proxy.js UPSTREAM_URL [HOST] [PORT]');

const pool = new Pool(upstream, { connections: 8, pipelining: 1 });
const app = new Koa();
app.use(async (ctx) => {
  const answer = await pool.request({ method: 'GET', path: ctx.url });
  ctx.status = answer.statusCode;
  const type = answer.headers['content-type'];
  if (typeof type === 'string') ctx.set('content-type', type);
  ctx.body = Buffer.from(await answer.body.arrayBuffer());
});
const server = app.listen(Number(port), host, () => {
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : Number(port);
  process.stdout.write(`${JSON.stringify({ msg: 'listening', url: `http://${host}:${bound}` })}\n`);
});
process.on('SIGTERM', () => {
  server.close(() => void pool.close().then(() => process.exit(0)));
  server.closeAllConnections();
});
