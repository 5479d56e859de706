export * from './decorators/index.js';
export * from './errors/index.js';
export * from './interfaces/index.js';
export { BaseEvent } from './events/base-event.js';
export { EventSnooze } from './events/event-snooze.js';
export type { DependencyResolver } from './events/event-dependencies.js';
export { EventService, type EventServiceOptions } from './dispatch/event.service.js';
export { WorkerService, type WorkerServiceSettings } from './processing/worker.service.js';
export { WorkerLifecycle } from './lifecycle/worker-lifecycle.js';
export { RecurringEventScheduler } from './recurring/recurring-event.scheduler.js';
export { type PruneReport, RetentionPruner } from './retention/retention.pruner.js';
export { FailedWorkerService, MAX_FAILED_PAGE_SIZE } from './failed/failed-worker.service.js';
export { WorkerJobsService, type WorkerJobsSettings } from './jobs/worker-jobs.service.js';
export { type PausedQueue, WorkerFlowService, type WorkerFlowSettings } from './flow/worker-flow.service.js';
export {
  MAX_RATE_LIMIT_KEY_LENGTH,
  type RateLimitTakeOptions,
  WorkerRateLimiter,
  type WorkerRateLimiterSettings,
} from './flow/worker-rate-limiter.js';
export { UnsupportedDatabaseError } from './storage/dialects/worker-dialect.js';
export {
  FAILED_WORKERS_TABLE,
  FailedWorkerEntity,
  PENDING_WORKERS_TABLE,
  WORKER_HISTORY_TABLE,
  WORKER_PROCESSES_TABLE,
  WORKER_QUEUES_TABLE,
  WORKER_RATE_LIMITS_TABLE,
  WORKER_RATE_STARTS_TABLE,
  WORKER_SCHEDULES_TABLE,
  WORKER_SLOTS_TABLE,
  WORKER_THROTTLES_TABLE,
  WORKER_THROUGHPUT_TABLE,
  workerEntitySchemas,
  type WorkerEntitySchemas,
  WorkerEntity,
  WorkerHistoryEntity,
  WorkerProcessEntity,
  WorkerQueueStateEntity,
  WorkerRateLimitEntity,
  WorkerRateStartEntity,
  WorkerScheduleEntity,
  WorkerSlotEntity,
  WorkerThrottleEntity,
  WorkerThroughputEntity,
} from './storage/entities/worker.entity.js';
export { MAX_JOB_PAGE_SIZE, MAX_PROGRESS_BYTES } from './worker.defaults.js';
export {
  AddNestjsWorkerJobControlMysql1764500000000,
  AddNestjsWorkerJobControlPostgres1764500000000,
  AddNestjsWorkerJobControlSqlite1764500000000,
  CreateNestjsWorkerTablesMysql1764400000000,
  CreateNestjsWorkerTablesPostgres1764400000000,
  CreateNestjsWorkerTablesSqlite1764400000000,
  workerMigrations,
} from './storage/migrations/index.js';
export { TypeOrmWorkerCreator } from './storage/typeorm-worker.creator.js';
export { TypeOrmWorkerModel } from './storage/typeorm-worker.model.js';
export { TypeOrmWorkerRepository } from './storage/typeorm-worker.repository.js';
export type { ResolvedQueueOptions, ResolvedWorkerConfig } from './worker.config.js';
export {
  ON_WORKER_EVENT_METADATA,
  POLL_INTERVAL_PREFIX,
  QUEUE_EVENT_METADATA,
  WORKER_CONFIG,
  WORKER_CREATOR,
  WORKER_DATA_SOURCE,
  WORKER_REPOSITORY,
} from './worker.constants.js';
export { WORKER_MODULE_OPTIONS } from './worker.module-definition.js';
export { WorkerModule } from './worker.module.js';
