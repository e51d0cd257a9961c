export * from './history.js';
export * from './check-history.js';
export * from './faults.js';
export { KEPT_STORAGE_PLUGIN, KeptStorages } from './kept-storage.js';
export * from './kv-sim.js';
export { CLIENT_TIMEOUT, CONNECTION_LOST, DEFAULT_OPS } from './kv-clients.js';
