import type { Logger } from '@kvmesh/core';
import type { Context } from 'koa';
import { CLIENT_ABORTED_STATUS } from './http-errors.js';

/**
 * A request whose client went away before it was read: nothing is answered
 * (Koa is told not to respond), the socket is closed, it is logged at debug
 * only, and `ctx.status` is 499 so that `/metrics` counts an abort, not a 500.
 */
export function abandon(ctx: Context, logger: Logger, reason: string): void {
  logger.debug({ method: ctx.method, url: ctx.url, reason }, 'client aborted');
  ctx.respond = false;
  ctx.status = CLIENT_ABORTED_STATUS;
  ctx.res.destroy();
}
