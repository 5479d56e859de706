export * from './startup.error.js';
export * from './worker.error.js';
export * from './flow-control.error.js';
