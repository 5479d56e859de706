import type { EventClass } from './interfaces/base-event.interface.js';
import { InvalidWorkerOptionsError } from './errors/worker.error.js';
import type { ILoggerService } from './interfaces/logger.interface.js';
import type { RetentionOptions } from './interfaces/job-state.interface.js';
import type { RecurringEventDefinition } from './interfaces/recurring-event.interface.js';
import { assertRecurringSchedule } from './recurring/cron-slots.js';
import type { DataSource } from 'typeorm';
import type { RateLimitOptions } from './interfaces/flow-control.interface.js';
import type { WorkerModuleOptions, WorkerQueueOptions } from './interfaces/worker-module-options.interface.js';
import {
  assertBoolean,
  assertPositiveInteger,
  assertRateLimitName,
  assertRateLimitOptions,
  assertRateLimitReference,
  assertHeartbeat,
  assertInteger,
  assertKnownKeys,
  assertMaxPayloadBytes,
  assertNumber,
  assertBatchSize,
  assertPlainObject,
  assertRetrySettings,
  assertRetention,
  assertStoredName,
  definedOnly,
  keepCompletedOf,
  MAX_TIMER_SECONDS,
} from './common/worker-options.validation.js';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_LEASE_SECONDS,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_PRUNE_INTERVAL_SECONDS,
  DEFAULT_THROUGHPUT_RETENTION_SECONDS,
  DEFAULT_RETRIES,
  DEFAULT_RUN_AFTER_SECONDS,
  DEFAULT_SHUTDOWN_GRACE_SECONDS,
  HEARTBEATS_PER_LEASE,
  MAX_DELAY_SECONDS,
  MAX_TIMER_MS,
} from './worker.defaults.js';
import { type ResolvedDatabaseOptions, resolveDatabaseOptions } from './storage/database-options.js';

/** The options a queue may go without (flow-control limits: none unless configured). */
type OptionalQueueKeys =
  'timeoutSeconds' | 'batchSize' | 'keepFailed' | 'globalConcurrency' | 'keyConcurrency' | 'rateLimit' | 'keyRateLimit';

export type ResolvedQueueOptions = Required<Omit<WorkerQueueOptions, OptionalQueueKeys | 'keepCompleted'>> &
  Pick<WorkerQueueOptions, OptionalQueueKeys> & {
    /** false: success deletes the row; else the history's retention ({} keeps everything). */
    keepCompleted: RetentionOptions | false;
  };

/** Module options validated and defaulted; what the module's providers read. */
export interface ResolvedWorkerConfig {
  database: ResolvedDatabaseOptions;
  /** The application's DataSource, when the module is to use it instead of opening one. */
  dataSource?: DataSource;
  queues: ReadonlyMap<string, ResolvedQueueOptions>;
  defaults: ResolvedQueueOptions;
  /** The module's named rate limiters (`rateLimits`), which queues and WorkerRateLimiter.take() share. */
  rateLimits: ReadonlyMap<string, RateLimitOptions>;
  events: EventClass[];
  recurring: RecurringEventDefinition[];
  autoStart: boolean;
  listen: boolean;
  leaseSeconds: number;
  heartbeatSeconds: number;
  shutdownGraceSeconds: number;
  maxPayloadBytes: number;
  logger?: ILoggerService;
  throughputRetentionSeconds: number;
  pruneIntervalSeconds: number;
  queueOptions(queueName: string): ResolvedQueueOptions;
}

const MODULE_KEYS = [
  'database',
  'dataSource',
  'queues',
  'defaults',
  'events',
  'recurring',
  'autoStart',
  'listen',
  'leaseSeconds',
  'heartbeatSeconds',
  'shutdownGraceSeconds',
  'maxPayloadBytes',
  'logger',
  'rateLimits',
  'throughputRetentionSeconds',
  'pruneIntervalSeconds',
] as const;
const QUEUE_KEYS = [
  'retries',
  'runAfterSeconds',
  'pollIntervalMs',
  'concurrency',
  'batchSize',
  'backoff',
  'timeoutSeconds',
  'keepCompleted',
  'keepFailed',
  'globalConcurrency',
  'keyConcurrency',
  'rateLimit',
  'keyRateLimit',
] as const;

/** Validates module options at startup; every error names the offending field. */
export function resolveWorkerConfig(options: WorkerModuleOptions | undefined): ResolvedWorkerConfig {
  const input: WorkerModuleOptions = options ?? {};
  const raw: unknown = input;
  assertPlainObject('WorkerModule options', raw);
  assertKnownKeys('', raw, MODULE_KEYS);

  const builtIn: ResolvedQueueOptions = {
    retries: DEFAULT_RETRIES,
    runAfterSeconds: DEFAULT_RUN_AFTER_SECONDS,
    pollIntervalMs: DEFAULT_POLL_INTERVAL_MS,
    concurrency: DEFAULT_CONCURRENCY,
    backoff: 'fixed',
    keepCompleted: false,
  };
  // Before the queues: their rateLimit and keyRateLimit may name these.
  const rateLimits = resolveRateLimits(input.rateLimits);
  const defaults =
    input.defaults === undefined ? builtIn : resolveQueue('defaults', input.defaults, builtIn, rateLimits);

  const queues = new Map<string, ResolvedQueueOptions>();
  if (input.queues !== undefined) {
    assertPlainObject('queues', input.queues);
    for (const [queueName, queueOptions] of Object.entries(input.queues)) {
      assertStoredName(`queues[${JSON.stringify(queueName)}] (queue name)`, queueName);
      queues.set(queueName, resolveQueue(`queues[${JSON.stringify(queueName)}]`, queueOptions, defaults, rateLimits));
    }
  }

  const events = input.events ?? [];
  if (!Array.isArray(events)) throw new InvalidWorkerOptionsError('events', 'must be an array of event classes');
  events.forEach((eventClass, index) => {
    if (typeof eventClass !== 'function') {
      throw new InvalidWorkerOptionsError(`events[${index}]`, 'must be an event class (a BaseEvent subclass)');
    }
  });

  const recurring = input.recurring ?? [];
  if (!Array.isArray(recurring))
    throw new InvalidWorkerOptionsError('recurring', 'must be an array of { event, cron, payload?, timeZone?, name? }');
  recurring.forEach((definition: unknown, index) => {
    const field = `recurring[${index}]`;
    const entry = definition as Partial<RecurringEventDefinition>;
    assertRecurringSchedule((key) => (key === 'options' ? field : `${field}.${key}`), entry?.cron, definition, [
      'event',
    ]);
    if (typeof entry.event !== 'function')
      throw new InvalidWorkerOptionsError(`${field}.event`, 'must be a queued event class (a BaseEvent subclass)');
  });

  const autoStart = input.autoStart ?? true;
  assertBoolean('autoStart', autoStart);
  const listen = input.listen ?? true;
  assertBoolean('listen', listen);
  const leaseSeconds = input.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
  assertNumber('leaseSeconds', leaseSeconds, 1, MAX_DELAY_SECONDS);
  const heartbeatSeconds = input.heartbeatSeconds ?? leaseSeconds / HEARTBEATS_PER_LEASE;
  assertHeartbeat(heartbeatSeconds, leaseSeconds);
  const shutdownGraceSeconds = input.shutdownGraceSeconds ?? DEFAULT_SHUTDOWN_GRACE_SECONDS;
  assertNumber('shutdownGraceSeconds', shutdownGraceSeconds, 0, MAX_TIMER_SECONDS);
  const maxPayloadBytes = input.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  assertMaxPayloadBytes('maxPayloadBytes', maxPayloadBytes);
  const throughputRetentionSeconds = input.throughputRetentionSeconds ?? DEFAULT_THROUGHPUT_RETENTION_SECONDS;
  assertNumber('throughputRetentionSeconds', throughputRetentionSeconds, 60, MAX_DELAY_SECONDS);
  const pruneIntervalSeconds = input.pruneIntervalSeconds ?? DEFAULT_PRUNE_INTERVAL_SECONDS;
  assertNumber('pruneIntervalSeconds', pruneIntervalSeconds, 0.01, MAX_TIMER_SECONDS);
  if (input.logger !== undefined) {
    const logger = input.logger as unknown as Record<string, unknown>;
    for (const method of ['log', 'error', 'warn']) {
      if (typeof logger?.[method] !== 'function')
        throw new InvalidWorkerOptionsError('logger', `must have a ${method}() method`);
    }
  }

  if (input.dataSource !== undefined) {
    if (input.database !== undefined)
      throw new InvalidWorkerOptionsError('dataSource', 'cannot be combined with database: give one of them');
    assertDataSourceLike(input.dataSource);
  }

  return {
    database: resolveDatabaseOptions(input.database),
    dataSource: input.dataSource,
    queues,
    defaults,
    rateLimits,
    events: [...events],
    recurring: [...recurring],
    autoStart,
    listen,
    leaseSeconds,
    heartbeatSeconds,
    shutdownGraceSeconds,
    maxPayloadBytes,
    logger: input.logger,
    throughputRetentionSeconds,
    pruneIntervalSeconds,
    queueOptions: (queueName) => queues.get(queueName) ?? defaults,
  };
}

/** Queues named in the config plus the queues of registered event classes: what the module polls. */
export function knownQueueNames(
  config: ResolvedWorkerConfig,
  events: { getRegisteredEvents(): { queueName?: string }[] },
): string[] {
  const fromEvents = events.getRegisteredEvents().flatMap((event) => (event.queueName ? [event.queueName] : []));
  return [...new Set([...config.queues.keys(), ...fromEvents])];
}

function resolveQueue(
  field: string,
  value: unknown,
  fallback: ResolvedQueueOptions,
  rateLimits: ReadonlyMap<string, RateLimitOptions>,
): ResolvedQueueOptions {
  assertPlainObject(field, value);
  assertKnownKeys(field, value, QUEUE_KEYS);
  const given = definedOnly(value);
  const keepCompleted = keepCompletedOf(`${field}.keepCompleted`, given.keepCompleted);
  if (given.keepFailed !== undefined) assertRetention(`${field}.keepFailed`, given.keepFailed);
  const resolved = {
    ...fallback,
    ...given,
    keepCompleted: keepCompleted ?? fallback.keepCompleted,
  } as ResolvedQueueOptions;
  assertRetrySettings((setting) => `${field}.${setting}`, resolved, true);
  assertInteger(`${field}.pollIntervalMs`, resolved.pollIntervalMs, 10, MAX_TIMER_MS);
  assertInteger(`${field}.concurrency`, resolved.concurrency, 1);
  if (resolved.batchSize !== undefined) assertBatchSize(`${field}.batchSize`, resolved.batchSize);
  // Flow-control limits, checked where given (one inherited from defaults was checked there).
  if (given.globalConcurrency !== undefined)
    assertPositiveInteger(`${field}.globalConcurrency`, given.globalConcurrency);
  if (given.keyConcurrency !== undefined) assertPositiveInteger(`${field}.keyConcurrency`, given.keyConcurrency);
  for (const option of ['rateLimit', 'keyRateLimit'] as const) {
    const limit = given[option];
    if (limit === undefined) continue;
    assertRateLimitReference(`${field}.${option}`, limit, rateLimits);
    // A copy: the options object the application holds may change after startup.
    if (typeof limit === 'object') resolved[option] = { ...(limit as RateLimitOptions) };
  }
  return resolved;
}

/** The module's rateLimits: names checked (no ':', at most 200 characters), each a { limit, intervalSeconds }. */
function resolveRateLimits(value: unknown): ReadonlyMap<string, RateLimitOptions> {
  const rateLimits = new Map<string, RateLimitOptions>();
  if (value === undefined) return rateLimits;
  assertPlainObject('rateLimits', value);
  for (const [name, limit] of Object.entries(value)) {
    const field = `rateLimits[${JSON.stringify(name)}]`;
    assertRateLimitName(`${field} (limiter name)`, name);
    assertRateLimitOptions(field, limit);
    rateLimits.set(name, { limit: limit.limit, intervalSeconds: limit.intervalSeconds });
  }
  return rateLimits;
}

/** A TypeORM DataSource (checked by shape: the application may load its own copy of typeorm). */
function assertDataSourceLike(value: unknown): asserts value is DataSource {
  const candidate = value as { options?: { type?: unknown }; isInitialized?: unknown } | null;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.isInitialized !== 'boolean' ||
    !candidate.options
  ) {
    throw new InvalidWorkerOptionsError('dataSource', 'must be a TypeORM DataSource');
  }
}
