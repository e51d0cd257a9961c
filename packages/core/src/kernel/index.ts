export * from './core-version.js';
export * from './graph.js';
export * from './loader.js';
export * from './node.js';
export * from './registry.js';
