export { SystemClock, type SystemClockOptions } from './system-clock.js';
export { SystemRandom } from './system-random.js';
export { DATA_DIR_LOCK_FILE, DataDirLock, type LockHolder } from './data-dir-lock.js';
