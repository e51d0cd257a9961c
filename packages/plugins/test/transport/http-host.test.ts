import { createServer, type Server } from 'node:http';
import test, { type ExecutionContext } from 'ava';
import { SystemClock, silentLogger, type Transport, type TransportHandler } from '@kvmesh/core';
import { HttpTransport } from '../../src/index.js';
import { rawHttp } from './loopback.js';

const clock = new SystemClock();
const echo: TransportHandler = { onRequest: async (frame) => frame, onMessage: () => undefined };

/** A transport seen only through its contract, as the node server sees it. */
function contractTransport(t: ExecutionContext, address = '127.0.0.1:0'): Transport {
  const transport: Transport = new HttpTransport({ node: { address }, clock, logger: silentLogger });
  t.teardown(() => transport.stop());
  transport.setHandler(echo);
  return transport;
}

async function listening(t: ExecutionContext, server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `127.0.0.1:${(server.address() as { port: number }).port}`;
}

test('hostHttp hands serving to the host: the address becomes the host port and only the path prefix is the transport', async (t) => {
  const transport = contractTransport(t);
  let offered = 0;
  const server = createServer((req, res) => {
    if (req.url!.startsWith(hosted.pathPrefix)) {
      offered++;
      if (hosted.handle(req, res)) return;
    }
    res.end('host');
  });
  const hostPort = await listening(t, server);
  t.is(typeof transport.hostHttp, 'function', 'the http transport answers the optional member');
  // Requests reach the handler above only after this line ran.
  const hosted = transport.hostHttp!(hostPort);
  t.is(transport.address, `http://${hostPort}`);
  t.is(hosted.pathPrefix, '/_kvmesh/rpc');
  await transport.start();

  const peer = contractTransport(t);
  await peer.start();
  t.deepEqual(
    await peer.request(transport.address, Uint8Array.of(1, 2, 3), { timeoutMs: 5000 }),
    Uint8Array.of(1, 2, 3),
  );
  t.is(offered, 1);
  const [host, port] = [hostPort.split(':')[0]!, Number(hostPort.split(':')[1])];
  t.regex(
    await rawHttp(host, port, (s) => s.write('GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n')),
    /^HTTP\/1\.1 200 [^]*host$/,
  );
  t.regex(
    await rawHttp(host, port, (s) => s.write(`GET ${hosted.pathPrefix}-not-mine HTTP/1.1\r\nHost: x\r\n\r\n`)),
    /host$/,
    'a path that only starts like the prefix is returned to the host untouched',
  );
});

test('hostHttp after start() fails with KVMESH_ERR_KERNEL_STATE, and a bad host port with KVMESH_ERR_TRANSPORT_ADDRESS', async (t) => {
  const early = contractTransport(t);
  t.throws(() => early.hostHttp!('not a host port'), { code: 'KVMESH_ERR_TRANSPORT_ADDRESS' });
  const late = contractTransport(t);
  await late.start();
  t.throws(() => late.hostHttp!('127.0.0.1:1'), { code: 'KVMESH_ERR_KERNEL_STATE' });
});
