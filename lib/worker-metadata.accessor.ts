import { Reflector } from '@nestjs/core';
import type { QueueEventMetadata } from './interfaces/queue-event-metadata.interface.js';
import type { RecurringEventOptions } from './interfaces/recurring-event.interface.js';
import { QUEUE_EVENT_METADATA, RECURRING_EVENT_METADATA } from './worker.constants.js';

const reflector = new Reflector();

/** Metadata found so far, per class: every dispatch reads it twice (queue and name), bulk dispatch per event. */
const queueEventMetadataCache = new WeakMap<Function, QueueEventMetadata>();

/** Reads @QueueEvent() metadata; inherited by subclasses of a decorated event. */
export function getQueueEventMetadata(eventClass: Function): QueueEventMetadata | undefined {
  let metadata = queueEventMetadataCache.get(eventClass);
  if (metadata) return metadata;
  // Only what was found is kept: a class without metadata may still be decorated by hand later.
  metadata = reflector.get<QueueEventMetadata | undefined>(QUEUE_EVENT_METADATA, eventClass);
  if (metadata) queueEventMetadataCache.set(eventClass, metadata);
  return metadata;
}

/** Every class decorated with @QueueEvent() so far in this process. */
const decoratedEventClasses = new Set<Function>();

export function rememberDecoratedEventClass(eventClass: Function): void {
  decoratedEventClasses.add(eventClass);
}

export function getDecoratedEventClasses(): Function[] {
  return [...decoratedEventClasses];
}

/** One @RecurringEvent() of a class. */
export interface RecurringEventMetadata extends RecurringEventOptions {
  cron: string;
}

/** The @RecurringEvent() schedules declared on this very class (not inherited: a subclass is another event). */
export function getRecurringEventMetadata(eventClass: Function): RecurringEventMetadata[] {
  return (Reflect.getOwnMetadata(RECURRING_EVENT_METADATA, eventClass) as RecurringEventMetadata[] | undefined) ?? [];
}
