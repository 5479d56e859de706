import { SetMetadata } from '@nestjs/common';
import type { QueueEventMetadata } from '../interfaces/queue-event-metadata.interface.js';
import type { QueueEventOptions } from '../interfaces/queue-event-options.interface.js';
import {
  assertKnownKeys,
  assertPlainObject,
  assertPriority,
  assertRetrySettings,
  assertStoredName,
  keepCompletedOf,
} from '../common/worker-options.validation.js';
import { assertEventFlowOptions } from '../events/concurrency-key.js';
import { QUEUE_EVENT_METADATA } from '../worker.constants.js';
import { callerOrigin, rememberDecoratedEventClass } from '../worker-metadata.accessor.js';

const QUEUE_EVENT_KEYS = [
  'name',
  'retries',
  'runAfterSeconds',
  'backoff',
  'timeoutSeconds',
  'priority',
  'keepCompleted',
  // Flow control's, checked when the class is registered (see assertEventFlowOptions).
  'concurrencyKey',
  'keyConcurrency',
] as const;

/**
 * Marks a BaseEvent subclass as queued on `queueName`: dispatching it stores a row that a worker
 * of that queue runs later. The class is registered under `options.name` (default: the class name).
 * Invalid options throw InvalidWorkerOptionsError when the class is defined, so the app never starts
 * with them.
 */
export function QueueEvent(queueName: string, options: QueueEventOptions = {}): ClassDecorator {
  const setMetadata = SetMetadata(QUEUE_EVENT_METADATA, { ...options, queueName } satisfies QueueEventMetadata);
  // Taken here, where the class's own file calls in: two classes of one name can then be told apart.
  const origin = callerOrigin(QueueEvent.name);
  return (target) => {
    validateQueueEventOptions(`@QueueEvent() on ${target.name}`, queueName, options);
    assertEventFlowOptions(target.name, options);
    setMetadata(target);
    rememberDecoratedEventClass(target, origin);
  };
}

function validateQueueEventOptions(where: string, queueName: unknown, options: unknown): void {
  assertStoredName(`${where}: queue name`, queueName);
  assertPlainObject(`${where}: options`, options);
  assertKnownKeys(`${where}: options`, options, QUEUE_EVENT_KEYS);
  if (options.name !== undefined) assertStoredName(`${where}: options.name`, options.name);
  assertRetrySettings((setting) => `${where}: options.${setting}`, options, false);
  if (options.priority !== undefined) assertPriority(`${where}: options.priority`, options.priority);
  keepCompletedOf(`${where}: options.keepCompleted`, options.keepCompleted);
}
