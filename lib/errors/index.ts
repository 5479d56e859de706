export * from './worker.error.js';
