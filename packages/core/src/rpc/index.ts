export * from './messages.js';
export * from './core-messages.js';
export * from './frame.js';
export * from './rpc-service.js';
export * from './request-dedup.js';
export * from './frame-auth.js';
