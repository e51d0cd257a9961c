export * from './hlc.js';
export * from './key-order.js';
export * from './kv-service.js';
export * from './kv-config.js';
export * from './kv-messages.js';
export * from './kv-stats.js';
export * from './key-locks.js';
export * from './limits.js';
