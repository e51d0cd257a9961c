import type { ExecutionContext } from 'ava';
import { SystemClock, silentLogger, type TransportHandler } from '@kvmesh/core';
import { HttpTransport, type HttpTransportOptions } from '../../src/index.js';

// What the http transport's tests share: its components, a handler that
// answers every frame reversed, and a started transport stopped at teardown.

const clock = new SystemClock();

export const components = (address: string) => ({ node: { address }, clock, logger: silentLogger });

export const reverse: TransportHandler = {
  onRequest: async (frame) => Uint8Array.from(frame).reverse(),
  onMessage: () => undefined,
};

/** A transport on 127.0.0.1, any free port, started and stopped at the test's end. */
export async function started(
  t: ExecutionContext,
  options: Partial<HttpTransportOptions> = {},
  handler: TransportHandler = reverse,
): Promise<HttpTransport> {
  const transport = new HttpTransport(components('127.0.0.1:0'), options);
  t.teardown(() => transport.stop());
  transport.setHandler(handler);
  await transport.start();
  return transport;
}
