import { DuplicateEventNameError, UnknownEventError } from '../errors/worker.error.js';
import { assertStoredName } from '../common/worker-options.validation.js';
import type { QueueEventOptions } from '../interfaces/queue-event-options.interface.js';
import { getDecoratedEventClasses, getEventClassOrigin, getQueueEventMetadata } from '../worker-metadata.accessor.js';
import { type BaseEvent, eventNameOf } from './base-event.js';
import { assertEventFlowOptions } from './concurrency-key.js';
import type { EventClass } from '../interfaces/base-event.interface.js';

export interface RegisteredEvent {
  name: string;
  eventClass: EventClass;
  /** The queue from @QueueEvent(), when decorated. */
  queueName?: string;
  options: QueueEventOptions;
  /** Listed by this registry's owner (events option, registerEvents()), not only collected from @QueueEvent(). */
  listed: boolean;
}

/**
 * Name → event class. Holds the classes its owner lists plus the @QueueEvent() classes of the
 * process (collected, so a worker can turn a stored row back into an event whatever the import
 * order). A listed class is this owner's own: a collected class of the same name (another file's,
 * another module's) gives way to it instead of clashing. Two listed classes of one name are an
 * error at once; two collected ones are an error at once for an owner that lists nothing (its events
 * are the collected ones), else only when that name is used. The error says where each comes from.
 */
export class EventRegistry {
  private readonly byName = new Map<string, RegisteredEvent>();
  private decoratedSeen = 0;
  private listedCount = 0;
  /** Names two collected classes claim, and the error a use of that name throws. */
  private readonly ambiguous = new Map<string, DuplicateEventNameError>();

  constructor(eventClasses: readonly EventClass[] = []) {
    this.register(...eventClasses);
    this.includeDecorated();
  }

  register(...eventClasses: EventClass[]): void {
    for (const eventClass of eventClasses) this.add(eventClass, true);
  }

  /** The events this registry's owner answers for: those it listed, or, listing none, every collected one. */
  own(): RegisteredEvent[] {
    const all = this.all();
    return this.listedCount === 0 ? all : all.filter((registered) => registered.listed);
  }

  /** Looks the name up, picking up classes decorated since the last look. */
  find(name: string): RegisteredEvent | undefined {
    const found = this.byName.get(name) ?? (this.includeDecorated(), this.byName.get(name));
    const clash = this.ambiguous.get(name);
    if (clash) throw clash;
    return found;
  }

  get(name: string): RegisteredEvent {
    const registered = this.find(name);
    if (!registered) throw new UnknownEventError(name);
    return registered;
  }

  all(): RegisteredEvent[] {
    this.includeDecorated();
    return [...this.byName.values()].filter((registered) => !this.ambiguous.has(registered.name));
  }

  private includeDecorated(): void {
    const decorated = getDecoratedEventClasses();
    for (const eventClass of decorated.slice(this.decoratedSeen)) this.add(eventClass as EventClass, false);
    this.decoratedSeen = decorated.length;
    const [clash] = this.ambiguous.values();
    if (clash && this.listedCount === 0) throw clash;
  }

  private add(eventClass: EventClass, listed: boolean): void {
    if (typeof eventClass !== 'function') {
      throw new TypeError(`Event list entries must be event classes, got ${String(eventClass)}`);
    }
    const name = eventNameOf(eventClass);
    assertStoredName(`event name of ${eventClass.name}`, name);
    const existing = this.byName.get(name);
    if (existing?.eventClass === eventClass) {
      if (listed && !existing.listed) this.listedCount++;
      existing.listed ||= listed;
      return;
    }
    if (existing) {
      // A collected class never displaces (nor clashes with) a class its owner listed under that name.
      if (existing.listed && !listed) return;
      if (existing.listed === listed) {
        const clash = new DuplicateEventNameError(
          name,
          describeOrigin(existing.eventClass, listed),
          describeOrigin(eventClass, listed),
        );
        if (listed) throw clash;
        this.ambiguous.set(name, clash);
        return;
      }
    }
    // Listing a class settles which of the collected classes of its name this owner means.
    this.ambiguous.delete(name);
    if (listed) this.listedCount++;
    const metadata = getQueueEventMetadata(eventClass);
    const { queueName, name: _name, ...options } = metadata ?? { queueName: queueOfUndecorated(eventClass) };
    // A queue that could never be stored stops startup, rather than failing every dispatch and poll.
    if (queueName !== undefined) assertStoredName(`queue name of ${name}`, queueName);
    // The flow options too: a key function that is none would fail every dispatch, a bad limit every claim.
    assertEventFlowOptions(eventClass.name, options);
    this.byName.set(name, { name, eventClass, queueName, options, listed });
  }
}

/** "EmailEvent (decorated at src/mail/events.ts:12)": enough to find each of two same-named classes. */
function describeOrigin(eventClass: EventClass, listed: boolean): string {
  const origin = getEventClassOrigin(eventClass);
  const where = origin ? `decorated at ${origin}` : 'origin unknown: not decorated with @QueueEvent()';
  return `${eventClass.name} (${listed ? 'listed, ' : ''}${where})`;
}

/**
 * The queue of a class that only overrides getQueueName() (larascript-events' style). It is read from the
 * prototype, without a payload; a getQueueName() that needs the payload yields no queue to poll
 * (list the queue under `queues` then).
 */
function queueOfUndecorated(eventClass: EventClass): string | undefined {
  try {
    const queueName: unknown = (eventClass.prototype as BaseEvent).getQueueName.call(
      Object.create(eventClass.prototype),
    );
    return typeof queueName === 'string' && queueName !== '' ? queueName : undefined;
  } catch {
    return undefined;
  }
}
