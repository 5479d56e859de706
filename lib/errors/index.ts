export * from './startup.error.js';
export * from './worker.error.js';
export * from './dispatch-flow.error.js';
