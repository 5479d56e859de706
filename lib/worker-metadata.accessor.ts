import { Reflector } from '@nestjs/core';
import type { QueueEventMetadata } from './interfaces/queue-event-metadata.interface.js';
import { QUEUE_EVENT_METADATA } from './worker.constants.js';

const reflector = new Reflector();

/** Reads @QueueEvent() metadata; inherited by subclasses of a decorated event. */
export function getQueueEventMetadata(eventClass: Function): QueueEventMetadata | undefined {
  return reflector.get<QueueEventMetadata | undefined>(QUEUE_EVENT_METADATA, eventClass);
}

/** Every class decorated with @QueueEvent() so far in this process. */
const decoratedEventClasses = new Set<Function>();

export function rememberDecoratedEventClass(eventClass: Function): void {
  decoratedEventClasses.add(eventClass);
}

export function getDecoratedEventClasses(): Function[] {
  return [...decoratedEventClasses];
}
