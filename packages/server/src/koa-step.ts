import Koa from 'koa';
import type { Context } from 'koa';

/** What Koa's per-request step runs: the app's middleware, composed. */
export type MiddlewareChain = (ctx: Context) => Promise<void>;
type HandleRequest = (this: Koa, ctx: Context, chain: MiddlewareChain) => Promise<void>;

/**
 * Koa's per-request step, which its `callback()` calls with a fresh context:
 * the chain run, then `respond`. It is not in Koa's type declarations, so it
 * is reached through the prototype; call it with the app as `this`.
 */
export const koaHandleRequest = (Koa.prototype as unknown as { handleRequest: HandleRequest }).handleRequest;
