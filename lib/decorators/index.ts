export * from './queue-event.decorator.js';
