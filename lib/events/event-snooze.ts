import { InvalidSnoozeError } from '../errors/worker.error.js';
import { MAX_DELAY_SECONDS } from '../worker.defaults.js';

/**
 * What execute() returns to snooze (BaseEvent.snooze(seconds)): the event is due again `seconds`
 * from now on the database's clock, and this attempt does not count.
 */
export class EventSnooze {
  constructor(readonly seconds: number) {}
}

/** The seconds of a snooze, checked: a number from 0 to MAX_DELAY_SECONDS, else InvalidSnoozeError. */
export function snoozeSecondsOf(eventName: string, snooze: EventSnooze): number {
  const { seconds } = snooze as { seconds: unknown };
  if (typeof seconds !== 'number' || Number.isNaN(seconds))
    throw new InvalidSnoozeError(
      eventName,
      `must be a number (got ${typeof seconds === 'number' ? 'NaN' : typeof seconds})`,
    );
  if (seconds < 0) throw new InvalidSnoozeError(eventName, `must be at least 0 (got ${seconds})`);
  if (seconds > MAX_DELAY_SECONDS)
    throw new InvalidSnoozeError(eventName, `must be at most ${MAX_DELAY_SECONDS} (got ${seconds})`);
  return seconds;
}
