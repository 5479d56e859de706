import { CronTime, validateCronExpression } from 'cron';
import { InvalidWorkerOptionsError } from '../errors/worker.error.js';
import { assertKnownKeys, assertNonEmptyString, assertPlainObject } from '../processing/worker-options.validation.js';

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
    throw new InvalidWorkerOptionsError(field('cron'), `must be a cron expression string (got ${JSON.stringify(cron)})`);
  }
  const { valid, error } = validateCronExpression(cron);
  if (!valid) throw new InvalidWorkerOptionsError(field('cron'), `is not a valid cron expression (${JSON.stringify(cron)}): ${error?.message ?? 'rejected'}`);
  const { timeZone, name } = options;
  if (name !== undefined) assertNonEmptyString(field('name'), name);
  if (timeZone === undefined) return;
  if (typeof timeZone !== 'string') throw new InvalidWorkerOptionsError(field('timeZone'), `must be an IANA time zone name (got ${JSON.stringify(timeZone)})`);
  try {
    new CronTime(cron, timeZone);
  } catch {
    throw new InvalidWorkerOptionsError(field('timeZone'), `is not a known time zone (got ${JSON.stringify(timeZone)})`);
  }
}

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
