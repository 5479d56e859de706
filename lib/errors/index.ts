export * from './startup.error.js';
export * from './worker.error.js';
