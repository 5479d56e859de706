export * from './queue-event.decorator.js';
export * from './on-worker-event.decorator.js';
export * from './recurring-event.decorator.js';
