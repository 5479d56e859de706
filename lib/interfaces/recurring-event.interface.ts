import type { EventClass } from './base-event.interface.js';
import type { TSerializableValues } from './worker-attributes.interface.js';

/** How a recurring event is dispatched, besides its cron expression. */
export interface RecurringEventOptions {
  /** The payload each dispatch is built with (`new EventClass(payload)`). Default null. */
  payload?: TSerializableValues | null;
  /** IANA time zone the cron expression is read in (e.g. 'Europe/Paris'). Default: the process's. */
  timeZone?: string;
  /**
   * Identifies the schedule across replicas and restarts (its slots are recorded under this name).
   * Default: the event's registered name; needed when one event class has several schedules.
   */
  name?: string;
}

/** A recurring event given in the module's `recurring` option. */
export interface RecurringEventDefinition extends RecurringEventOptions {
  /** A queued event class (@QueueEvent(), or registered with `events`). */
  event: EventClass;
  /** Cron expression, 5 fields (minute precision) or 6 (seconds first), as `cron` / @nestjs/schedule read it. */
  cron: string;
}

/** A schedule as the scheduler runs it. */
export interface RecurringSchedule {
  name: string;
  cron: string;
  timeZone?: string;
  eventName: string;
  queueName: string;
  /** The next slot this process will try to dispatch; undefined while the scheduler is not running. */
  nextSlotAt?: Date;
}
