import { DuplicateEventNameError, UnknownEventError } from '../errors/worker.error.js';
import { assertStoredName } from '../processing/worker-options.validation.js';
import type { QueueEventOptions } from '../interfaces/queue-event-options.interface.js';
import { getDecoratedEventClasses, getQueueEventMetadata } from '../worker-metadata.accessor.js';
import { type BaseEvent, type EventClass, eventNameOf } from './base-event.js';

export interface RegisteredEvent {
  name: string;
  eventClass: EventClass;
  /** The queue from @QueueEvent(), when decorated. */
  queueName?: string;
  options: QueueEventOptions;
}

/**
 * Name → event class. Holds the classes listed explicitly plus every @QueueEvent() class, so a
 * worker can turn a stored row back into an event whatever the import order.
 */
export class EventRegistry {
  private readonly byName = new Map<string, RegisteredEvent>();
  private decoratedSeen = 0;

  constructor(eventClasses: readonly EventClass[] = []) {
    this.register(...eventClasses);
    this.includeDecorated();
  }

  register(...eventClasses: EventClass[]): void {
    for (const eventClass of eventClasses) this.add(eventClass);
  }

  /** Looks the name up, picking up classes decorated since the last look. */
  find(name: string): RegisteredEvent | undefined {
    return this.byName.get(name) ?? (this.includeDecorated(), this.byName.get(name));
  }

  get(name: string): RegisteredEvent {
    const registered = this.find(name);
    if (!registered) throw new UnknownEventError(name);
    return registered;
  }

  all(): RegisteredEvent[] {
    this.includeDecorated();
    return [...this.byName.values()];
  }

  private includeDecorated(): void {
    const decorated = getDecoratedEventClasses();
    for (const eventClass of decorated.slice(this.decoratedSeen)) this.add(eventClass as EventClass);
    this.decoratedSeen = decorated.length;
  }

  private add(eventClass: EventClass): void {
    if (typeof eventClass !== 'function') {
      throw new TypeError(`Event list entries must be event classes, got ${String(eventClass)}`);
    }
    const name = eventNameOf(eventClass);
    assertStoredName(`event name of ${eventClass.name}`, name);
    const existing = this.byName.get(name);
    if (existing?.eventClass === eventClass) return;
    if (existing) throw new DuplicateEventNameError(name, existing.eventClass.name, eventClass.name);
    const metadata = getQueueEventMetadata(eventClass);
    const { queueName, name: _name, ...options } = metadata ?? { queueName: queueOfUndecorated(eventClass) };
    // A queue that could never be stored stops startup, rather than failing every dispatch and poll.
    if (queueName !== undefined) assertStoredName(`queue name of ${name}`, queueName);
    this.byName.set(name, { name, eventClass, queueName, options });
  }
}

/**
 * The queue of a class that only overrides getQueueName() (the seed's style). It is read from the
 * prototype, without a payload; a getQueueName() that needs the payload yields no queue to poll
 * (list the queue under `queues` then).
 */
function queueOfUndecorated(eventClass: EventClass): string | undefined {
  try {
    const queueName: unknown = (eventClass.prototype as BaseEvent).getQueueName.call(Object.create(eventClass.prototype));
    return typeof queueName === 'string' && queueName !== '' ? queueName : undefined;
  } catch {
    return undefined;
  }
}
