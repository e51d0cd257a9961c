export * from './catalog.js';
export * from './env.js';
export * from './load.js';
export * from './problems.js';
export * from './schema.js';
export * from './validate.js';
