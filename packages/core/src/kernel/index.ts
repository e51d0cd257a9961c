export * from './admin-token.js';
export * from './cluster.js';
export * from './core-version.js';
export * from './facades.js';
export * from './graph.js';
export * from './loader.js';
export * from './node.js';
export * from './registry.js';
