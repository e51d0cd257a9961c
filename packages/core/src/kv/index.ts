export * from './hlc.js';
export * from './key-order.js';
