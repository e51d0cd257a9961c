export * from './storage.js';
export * from './transport.js';
export * from './codec.js';
export * from './membership.js';
export * from './placement.js';
export { drawingProblems, MAX_DRAWING_POINTS } from './placement-drawing.js';
export * from './facade.js';
