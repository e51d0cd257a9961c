export { SystemClock, type SystemClockOptions } from './system-clock.js';
export { SystemRandom } from './system-random.js';
