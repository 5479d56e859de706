import { InvalidWorkerOptionsError } from '../errors/worker.error.js';
import type { BackoffOption } from '../interfaces/backoff.interface.js';
import type { RateLimitOptions } from '../interfaces/flow-control.interface.js';
import type { RetentionOptions } from '../interfaces/job-state.interface.js';
import {
  MAX_BATCH_SIZE,
  MAX_DELAY_SECONDS,
  MAX_NAME_LENGTH,
  MAX_PAYLOAD_BYTES_LIMIT,
  MAX_RATE_LIMIT_NAME_LENGTH,
  MAX_TIMER_MS,
  MIN_RATE_INTERVAL_SECONDS,
} from '../worker.defaults.js';
import { flowOptionsMessages } from '../worker.messages.js';

export function assertNonEmptyString(field: string, value: unknown): void {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new InvalidWorkerOptionsError(field, `must be a non-empty string (got ${describe(value)})`);
  }
}

/**
 * The one rule for what is stored in (or compared with) a name column: queue names, event names,
 * unique keys, schedule names, and the filters that look them up. Those columns are varchar(255), which
 * counts characters (code points); PostgreSQL refuses NUL in text; and a lone surrogate cannot be
 * encoded as UTF-8, so the drivers replace it with U+FFFD and two different names would become one
 * ('x\ud800' and 'x\udc00'). Such names are refused here, before anything is stored or run.
 */
export function assertStoredName(field: string, value: unknown, maxLength = MAX_NAME_LENGTH): asserts value is string {
  assertNonEmptyString(field, value);
  const text = value as string;
  if (!(text as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw new InvalidWorkerOptionsError(
      field,
      `must be well-formed Unicode (got ${JSON.stringify(text)}, which has a lone surrogate)`,
    );
  }
  if (text.includes('\u0000'))
    throw new InvalidWorkerOptionsError(field, `must not contain NUL (\\u0000) (got ${JSON.stringify(text)})`);
  // text.length counts UTF-16 units, never fewer than the characters: only a long text needs counting.
  const length = text.length <= maxLength ? text.length : [...text].length;
  if (length > maxLength)
    throw new InvalidWorkerOptionsError(field, `must be at most ${maxLength} characters (got ${length})`);
}

export function assertInteger(field: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InvalidWorkerOptionsError(field, `must be an integer ≥ ${min} (got ${describe(value)})`);
  }
  if (value > max) throw new InvalidWorkerOptionsError(field, `must be at most ${max} (got ${describe(value)})`);
}

/**
 * Longest wait one Node timer takes (2^31 - 1 ms, 24.8 days): a longer setTimeout/setInterval fires
 * after 1 ms instead, so a timeout, heartbeat, poll interval or grace period beyond it is refused.
 */
export const MAX_TIMER_SECONDS = MAX_TIMER_MS / 1000;

/** Checks the maxPayloadBytes option wherever it is given (module options, EventService options). */
export function assertMaxPayloadBytes(field: string, value: unknown): void {
  assertInteger(field, value, 1, MAX_PAYLOAD_BYTES_LIMIT);
}

/** A claim's row count: at least 1, and a bounded IN list for the batch completion. */
export function assertBatchSize(field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_BATCH_SIZE) {
    throw new InvalidWorkerOptionsError(
      field,
      `must be an integer between 1 and ${MAX_BATCH_SIZE} (got ${describe(value)})`,
    );
  }
}

/** Ids are signed 64-bit columns. */
const MAX_ROW_ID = 9_223_372_036_854_775_807n;

/** Row ids are positive integers (as strings; numbers accepted); anything else can name no row. */
export function rowIdOf(id: unknown, what: string): string {
  const text = typeof id === 'number' ? String(id) : id;
  if (typeof text !== 'string' || !/^[1-9]\d{0,18}$/.test(text) || BigInt(text) > MAX_ROW_ID) {
    throw new InvalidWorkerOptionsError('id', `must be ${what}, a positive integer (got ${JSON.stringify(id)})`);
  }
  return text;
}

/** Priorities are stored as a 32-bit integer column. */
export function assertPriority(field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < -2147483648 || value > 2147483647) {
    throw new InvalidWorkerOptionsError(
      field,
      `must be an integer between -2147483648 and 2147483647 (got ${describe(value)})`,
    );
  }
}

export function assertNumber(field: string, value: unknown, min: number, max = Number.MAX_VALUE): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new InvalidWorkerOptionsError(field, `must be a finite number ≥ ${min} (got ${describe(value)})`);
  }
  if (value > max) throw new InvalidWorkerOptionsError(field, `must be at most ${max} (got ${describe(value)})`);
}

/**
 * The one rule for retry settings, wherever they are given (module config, runWorker, @QueueEvent):
 * retries counts total attempts (≥ 1), runAfterSeconds is a delay (≥ 0), backoff a known policy,
 * timeoutSeconds a positive limit. Optional settings are checked only when present.
 */
export function assertRetrySettings(
  fieldName: (setting: 'retries' | 'runAfterSeconds' | 'backoff' | 'timeoutSeconds') => string,
  settings: { retries?: unknown; runAfterSeconds?: unknown; backoff?: unknown; timeoutSeconds?: unknown },
  required: boolean,
): void {
  if (required || settings.retries !== undefined) assertInteger(fieldName('retries'), settings.retries, 1);
  if (required || settings.runAfterSeconds !== undefined) {
    assertNumber(fieldName('runAfterSeconds'), settings.runAfterSeconds, 0, MAX_DELAY_SECONDS);
  }
  if (settings.backoff !== undefined) assertBackoff(fieldName('backoff'), settings.backoff);
  if (settings.timeoutSeconds !== undefined) {
    assertNumber(fieldName('timeoutSeconds'), settings.timeoutSeconds, 0.001, MAX_TIMER_SECONDS);
  }
}

/** Checks a backoff option wherever it is given; `field` names it in the error. */
export function assertBackoff(field: string, value: unknown): asserts value is BackoffOption {
  if (value === 'fixed' || value === 'exponential' || typeof value === 'function') return;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const options = value as Record<string, unknown>;
    if (options.type === 'fixed') return assertKnownKeys(field, options, ['type']);
    if (options.type === 'exponential') {
      assertKnownKeys(field, options, ['type', 'maxSeconds', 'jitter']);
      if (options.maxSeconds !== undefined)
        assertNumber(`${field}.maxSeconds`, options.maxSeconds, 0, MAX_DELAY_SECONDS);
      if (options.jitter !== undefined) assertBoolean(`${field}.jitter`, options.jitter);
      return;
    }
    throw new InvalidWorkerOptionsError(
      `${field}.type`,
      `must be "fixed" or "exponential" (got ${JSON.stringify(options.type)})`,
    );
  }
  throw new InvalidWorkerOptionsError(
    field,
    'must be "fixed", "exponential", { type: "exponential", maxSeconds?, jitter? } ' +
      `or a function (attempt, error) => seconds (got ${JSON.stringify(value)})`,
  );
}

/** A heartbeat must come well inside the lease it renews, or the lease lapses between beats. */
export function assertHeartbeat(heartbeatSeconds: unknown, leaseSeconds: number, field = 'heartbeatSeconds'): void {
  assertNumber(field, heartbeatSeconds, 0.05, MAX_TIMER_SECONDS);
  if ((heartbeatSeconds as number) > leaseSeconds / 2) {
    throw new InvalidWorkerOptionsError(
      field,
      `must be at most half of leaseSeconds (${leaseSeconds}), got ${String(heartbeatSeconds)}`,
    );
  }
}

export function assertBoolean(field: string, value: unknown): void {
  if (typeof value !== 'boolean')
    throw new InvalidWorkerOptionsError(field, `must be true or false (got ${describe(value)})`);
}

export function assertPlainObject(field: string, value: unknown): asserts value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidWorkerOptionsError(field, `must be an object (got ${describe(value)})`);
  }
}

export function assertKnownKeys(field: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      const where = field ? `${field}.${key}` : key;
      throw new InvalidWorkerOptionsError(where, `is not an option (known: ${known.join(', ')})`);
    }
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  return Array.isArray(value) ? 'an array' : typeof value;
}

/** The keys of `value` whose value is not undefined: an option given as undefined takes its default. */
export function definedOnly(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined));
}

/** A retention ({ maxAgeSeconds?, maxCount? }): keepFailed, and keepCompleted's object form. */
export function assertRetention(field: string, value: unknown): asserts value is RetentionOptions {
  assertPlainObject(field, value);
  assertKnownKeys(field, value, ['maxAgeSeconds', 'maxCount']);
  const retention = value as RetentionOptions;
  if (retention.maxAgeSeconds !== undefined)
    assertNumber(`${field}.maxAgeSeconds`, retention.maxAgeSeconds, 1, MAX_DELAY_SECONDS);
  if (retention.maxCount !== undefined) assertInteger(`${field}.maxCount`, retention.maxCount, 0);
}

/**
 * keepCompleted as the code uses it: undefined (not set here: the next level decides), false (off),
 * or the retention to keep with ({} keeps everything).
 */
export function keepCompletedOf(field: string, value: unknown): RetentionOptions | false | undefined {
  if (value === undefined || value === false) return value;
  if (value === true) return {};
  if (typeof value !== 'object' || value === null)
    throw new InvalidWorkerOptionsError(
      field,
      `must be true, false or { maxAgeSeconds?, maxCount? } (got ${describe(value)})`,
    );
  assertRetention(field, value);
  return { ...definedOnly(value as Record<string, unknown>) };
}

/**
 * Whether a finished (completed or cancelled) event is kept in the history: its class's
 * keepCompleted wins over the run's (queue's); off by default.
 */
export function keepsCompleted(runOption: unknown, classOption: unknown): boolean {
  const classKeeps = keepCompletedOf('keepCompleted', classOption);
  if (classKeeps !== undefined) return classKeeps !== false;
  return (keepCompletedOf('keepCompleted', runOption) ?? false) !== false;
}

/** A flow-control limit of events running at once: globalConcurrency, keyConcurrency (queue or class). */
export function assertPositiveInteger(field: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidWorkerOptionsError(field, flowOptionsMessages.notPositiveInteger(describe(value)));
  }
}

const RATE_LIMIT_KEYS = ['limit', 'intervalSeconds'] as const satisfies readonly (keyof RateLimitOptions)[];

/** A rate limit's { limit, intervalSeconds }: a module rateLimits entry, or a queue's inline limit. */
export function assertRateLimitOptions(field: string, value: unknown): asserts value is RateLimitOptions {
  assertPlainObject(field, value);
  assertKnownKeys(field, value, RATE_LIMIT_KEYS);
  assertPositiveInteger(`${field}.limit`, value.limit);
  const interval = value.intervalSeconds;
  // The window is counted in whole milliseconds by the database: less than one is no window at all.
  if (typeof interval !== 'number' || !Number.isFinite(interval) || interval < MIN_RATE_INTERVAL_SECONDS) {
    throw new InvalidWorkerOptionsError(
      `${field}.intervalSeconds`,
      flowOptionsMessages.intervalTooShort(describe(interval)),
    );
  }
  if (interval > MAX_DELAY_SECONDS) {
    throw new InvalidWorkerOptionsError(
      `${field}.intervalSeconds`,
      flowOptionsMessages.intervalTooLong(MAX_DELAY_SECONDS, describe(interval)),
    );
  }
}

/**
 * A queue's rateLimit or keyRateLimit: an inline { limit, intervalSeconds }, or the name of an entry of
 * the module's `rateLimits` (whose budget application code shares through WorkerRateLimiter.take()).
 */
export function assertRateLimitReference(
  field: string,
  value: unknown,
  rateLimits: ReadonlyMap<string, RateLimitOptions>,
): void {
  if (typeof value === 'string') {
    if (!rateLimits.has(value))
      throw new InvalidWorkerOptionsError(field, flowOptionsMessages.unknownRateLimit(value, [...rateLimits.keys()]));
    return;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidWorkerOptionsError(field, flowOptionsMessages.notRateLimit(describe(value)));
  assertRateLimitOptions(field, value);
}

/**
 * The name of a module rateLimits entry: a stored name (it is the limiter's lock row), short enough to
 * leave room in the name column, and without ':', which take('name:key') puts between it and a key.
 */
export function assertRateLimitName(field: string, name: unknown): asserts name is string {
  assertStoredName(field, name, MAX_RATE_LIMIT_NAME_LENGTH);
  if (name.includes(':')) throw new InvalidWorkerOptionsError(field, flowOptionsMessages.rateLimitNameColon(name));
}
