/**
 * Injection tokens and metadata keys (defaults and limits are in worker.defaults.ts).
 *
 * No `get…Token(name)` helpers as in nestjs/typeorm: instances of WorkerModule are told apart by the
 * Nest module that imports them, not by a name (see WorkerCoreModule), so each token below has one
 * spelling, and a helper without a name to take would only be a second one.
 */

/** Metadata key written by @QueueEvent(). */
export const QUEUE_EVENT_METADATA = 'nestjs-workers:queue-event';

/** Metadata key written by @OnWorkerEvent(). */
export const ON_WORKER_EVENT_METADATA = 'nestjs-workers:on-worker-event';

/** Metadata key written by @RecurringEvent(). */
export const RECURRING_EVENT_METADATA = 'nestjs-workers:recurring-event';

/** DI token of the validated, defaulted module configuration. */
export const WORKER_CONFIG = 'NESTJS_WORKERS_CONFIG';
/** DI token of the TypeORM DataSource the queue tables live in. */
export const WORKER_DATA_SOURCE = 'NESTJS_WORKERS_DATA_SOURCE';
/** DI token of the IWorkerRepository in use (replaceable). */
export const WORKER_REPOSITORY = 'NESTJS_WORKERS_REPOSITORY';
/** DI token of the IWorkerCreator in use (replaceable). */
export const WORKER_CREATOR = 'NESTJS_WORKERS_CREATOR';

/** Prefix of the interval names registered in @nestjs/schedule's SchedulerRegistry. */
export const POLL_INTERVAL_PREFIX = 'nestjs-workers:';
