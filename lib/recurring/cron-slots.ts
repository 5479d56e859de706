import { CronTime, validateCronExpression } from 'cron';
import { InvalidWorkerOptionsError } from '../errors/worker.error.js';
import { assertKnownKeys, assertPlainObject, assertStoredName } from '../common/worker-options.validation.js';

const RECURRING_OPTION_KEYS = ['payload', 'timeZone', 'name'] as const;

/**
 * Checks one recurring schedule wherever it is declared; `field(key)` names each setting in the
 * error. The cron expression and time zone are checked by the `cron` package (the parser
 * @nestjs/schedule uses), not by a parser of ours.
 */
export function assertRecurringSchedule(
  field: (key: 'options' | 'cron' | 'timeZone' | 'name') => string,
  cron: unknown,
  options: unknown,
  extraKeys: readonly string[] = [],
): void {
  assertPlainObject(field('options'), options);
  assertKnownKeys(field('options'), options, [...extraKeys, 'cron', ...RECURRING_OPTION_KEYS]);
  if (typeof cron !== 'string' || cron.trim() === '') {
    throw new InvalidWorkerOptionsError(
      field('cron'),
      `must be a cron expression string (got ${JSON.stringify(cron)})`,
    );
  }
  const { valid, error } = validateCronExpression(cron);
  if (!valid)
    throw new InvalidWorkerOptionsError(
      field('cron'),
      `is not a valid cron expression (${JSON.stringify(cron)}): ${error?.message ?? 'rejected'}`,
    );
  const { timeZone, name } = options;
  if (name !== undefined) {
    // name@<ISO slot> is each dispatch's unique key (at most 255 characters).
    assertStoredName(field('name'), name, MAX_SCHEDULE_NAME_LENGTH);
  }
  if (timeZone !== undefined) {
    if (typeof timeZone !== 'string')
      throw new InvalidWorkerOptionsError(
        field('timeZone'),
        `must be an IANA time zone name (got ${JSON.stringify(timeZone)})`,
      );
    try {
      new CronTime(cron, timeZone);
    } catch {
      throw new InvalidWorkerOptionsError(
        field('timeZone'),
        `is not a known time zone (got ${JSON.stringify(timeZone)})`,
      );
    }
  }
  try {
    new CronSlots(cron, timeZone as string | undefined).after(new Date());
  } catch (error) {
    // A valid expression can still name no instant at all (0 0 31 4 *: April has no 31st).
    throw new InvalidWorkerOptionsError(
      field('cron'),
      `never fires (${JSON.stringify(cron)}): ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/** Schedule names end up in unique keys `name@2026-11-30T03:00:00.000Z` of at most 255 characters. */
export const MAX_SCHEDULE_NAME_LENGTH = 200;

/** The slots of one cron expression: the instants it names, in its time zone. */
export class CronSlots {
  private readonly time: CronTime;

  constructor(
    cron: string,
    private readonly timeZone?: string,
  ) {
    this.time = new CronTime(cron, timeZone);
  }

  /** The first slot strictly after `instant`. */
  after(instant: Date): Date {
    return this.time.getNextDateFrom(instant, this.timeZone).toJSDate();
  }
}
