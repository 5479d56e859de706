import { SetMetadata } from '@nestjs/common';
import type { QueueEventMetadata } from '../interfaces/queue-event-metadata.interface.js';
import type { QueueEventOptions } from '../interfaces/queue-event-options.interface.js';
import { QUEUE_EVENT_METADATA } from '../worker.constants.js';
import { rememberDecoratedEventClass } from '../worker-metadata.accessor.js';

/**
 * Marks a BaseEvent subclass as queued on `queueName`: dispatching it stores a row that a worker
 * of that queue runs later. The class is registered under `options.name` (default: the class name).
 */
export function QueueEvent(queueName: string, options: QueueEventOptions = {}): ClassDecorator {
  if (typeof queueName !== 'string' || queueName.trim() === '') {
    throw new TypeError('@QueueEvent() needs a non-empty queue name');
  }
  const metadata: QueueEventMetadata = { ...options, queueName };
  const setMetadata = SetMetadata(QUEUE_EVENT_METADATA, metadata);
  return (target) => {
    setMetadata(target);
    rememberDecoratedEventClass(target);
  };
}
