import { isAbsolute, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
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

/** Every class decorated with @QueueEvent() so far in this process, with where it was decorated. */
const decoratedEventClasses = new Map<Function, string | undefined>();

/** `origin`: the file and line of the decoration (see callerOrigin), to tell same-named classes apart. */
export function rememberDecoratedEventClass(eventClass: Function, origin?: string): void {
  decoratedEventClasses.set(eventClass, origin);
}

export function getDecoratedEventClasses(): Function[] {
  return [...decoratedEventClasses.keys()];
}

/** Where @QueueEvent() was applied to the class ("src/mail/events.ts:12"), when known. */
export function getEventClassOrigin(eventClass: Function): string | undefined {
  return decoratedEventClasses.get(eventClass);
}

/**
 * Where `functionName` (a decorator of this package) was called from: the stack frame after its own,
 * as the file (relative to the working directory when inside it) and line. Read once per decorated
 * class, at its definition.
 */
export function callerOrigin(functionName: string): string | undefined {
  const frames = (new Error().stack ?? '').split('\n').slice(1);
  const own = frames.findIndex((frame) => frame.trim().startsWith(`at ${functionName} `));
  const caller = own === -1 ? undefined : frames[own + 1];
  const match = caller === undefined ? null : /\(?((?:file:\/\/)?[^()\s]+?):(\d+):\d+\)?\s*$/.exec(caller);
  if (!match) return undefined;
  const file = match[1]!.startsWith('file://') ? fileURLToPath(match[1]!) : match[1]!;
  const shown = relative(process.cwd(), file);
  return `${shown.startsWith('..') || isAbsolute(shown) ? file : shown}:${match[2]}`;
}

/** One @RecurringEvent() of a class. */
export interface RecurringEventMetadata extends RecurringEventOptions {
  cron: string;
}

/** The @RecurringEvent() schedules declared on this very class (not inherited: a subclass is another event). */
export function getRecurringEventMetadata(eventClass: Function): RecurringEventMetadata[] {
  return (Reflect.getOwnMetadata(RECURRING_EVENT_METADATA, eventClass) as RecurringEventMetadata[] | undefined) ?? [];
}
