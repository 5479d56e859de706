import type { RecurringEventOptions } from '../interfaces/recurring-event.interface.js';
import { assertRecurringSchedule } from '../recurring/cron-slots.js';
import { RECURRING_EVENT_METADATA } from '../worker.constants.js';
import type { RecurringEventMetadata } from '../worker-metadata.accessor.js';

/**
 * Dispatches the decorated queued event on every slot of `cron` (5 fields, or 6 with seconds first),
 * once per slot however many replicas of the application run: each slot is recorded in the
 * database in the same transaction as the dispatch. Slots pass unnoticed while no replica runs.
 * Several decorators give several schedules (name each). A bad cron expression, time zone or option
 * throws InvalidWorkerOptionsError when the class is defined.
 */
export function RecurringEvent(cron: string, options: RecurringEventOptions = {}): ClassDecorator {
  return (target) => {
    const where = `@RecurringEvent() on ${target.name}`;
    assertRecurringSchedule(
      (key) =>
        key === 'cron' ? `${where}: cron` : key === 'options' ? `${where}: options` : `${where}: options.${key}`,
      cron,
      options,
    );
    const declared =
      (Reflect.getOwnMetadata(RECURRING_EVENT_METADATA, target) as RecurringEventMetadata[] | undefined) ?? [];
    Reflect.defineMetadata(RECURRING_EVENT_METADATA, [...declared, { ...options, cron }], target);
  };
}
