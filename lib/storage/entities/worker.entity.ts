import { type DataSourceOptions, EntitySchema, type EntitySchemaColumnOptions, type ValueTransformer } from 'typeorm';

/** Instants are stored as epoch milliseconds: one comparable form on every database. */
const epochMs: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null) => (value === null ? null : Number(value)),
};

export const PENDING_WORKERS_TABLE = 'nestjs_workers';
export const FAILED_WORKERS_TABLE = 'nestjs_failed_workers';
export const WORKER_SCHEDULES_TABLE = 'nestjs_workers_schedules';
export const WORKER_HISTORY_TABLE = 'nestjs_workers_history';
export const WORKER_PROCESSES_TABLE = 'nestjs_workers_processes';
export const WORKER_THROUGHPUT_TABLE = 'nestjs_workers_throughput';
export const WORKER_QUEUES_TABLE = 'nestjs_workers_queues';
export const WORKER_SLOTS_TABLE = 'nestjs_workers_slots';
export const WORKER_RATE_LIMITS_TABLE = 'nestjs_workers_rate_limits';
export const WORKER_RATE_STARTS_TABLE = 'nestjs_workers_rate_starts';
export const WORKER_THROTTLES_TABLE = 'nestjs_workers_throttles';

/**
 * A pending event. `availableAt` is its due time, whatever happens to it; while leased,
 * `leaseToken` is set and `leaseExpiresAt` holds the lease, so a row whose lease expires is
 * claimable again in its original place (priority, due time), ahead of later backlog.
 */
export class WorkerEntity {
  /** A string from PostgreSQL and MySQL, a number from SQLite; the API always uses String(id). */
  id!: string | number;
  queueName!: string;
  eventName!: string;
  /** JSON text; null for an event without payload. */
  payload!: string | null;
  attempts!: number;
  retries!: number;
  /** Lower runs first among due rows of a queue (as in BullMQ and graphile-worker); default 0. */
  priority!: number;
  /** At most one pending (or running) row per queue holds a key: enforced by a unique index. */
  uniqueKey!: string | null;
  /** Last error (text with stack) while the event is being retried. */
  error!: string | null;
  availableAt!: number;
  lockedBy!: string | null;
  leaseToken!: string | null;
  /**
   * While leased: when the lease ends, on the database's clock (epoch ms). In no index, so a claim
   * changes no indexed column (on PostgreSQL it can be a HOT update).
   */
  leaseExpiresAt!: number | null;
  /** When the current (or last) attempt was claimed, on the database's clock. */
  startedAt!: number | null;
  /** The last value the running event reported with reportProgress() (JSON text), written with its heartbeat. */
  progress!: string | null;
  /** Flow control's key: keyConcurrency and keyRateLimit count the running and started rows per key. */
  concurrencyKey!: string | null;
  createdAt!: number;
  updatedAt!: number;
  /** larascript-events' soft delete: a row with deletedAt set is neither claimed nor listed. */
  deletedAt!: number | null;
}

/** An event whose attempts ran out (or that can never run); written in one transaction with the delete. */
export class FailedWorkerEntity {
  id!: string | number;
  queueName!: string;
  eventName!: string;
  payload!: string | null;
  attempts!: number;
  retries!: number;
  priority!: number;
  uniqueKey!: string | null;
  error!: string | null;
  failedAt!: number;
  /** The pending row's createdAt: when the event was first dispatched. */
  createdAt!: number;
  updatedAt!: number;
  deletedAt!: number | null;
  /** The pending row's id (the job's id, as getJob() knows it); null on rows failed before it was kept. */
  jobId!: string | number | null;
  /** The pending row's due time when its last attempt was claimed. */
  availableAt!: number | null;
  startedAt!: number | null;
  durationMs!: number | null;
  workerId!: string | null;
  progress!: string | null;
  /** The pending row's flow-control key: a retry from the failed store keeps it. */
  concurrencyKey!: string | null;
}

/**
 * A finished event kept by `keepCompleted`: moved from the pending table in one transaction with
 * its delete, under the pending row's id. `state` is 'completed' or 'cancelled'.
 */
export class WorkerHistoryEntity {
  id!: string | number;
  queueName!: string;
  eventName!: string;
  payload!: string | null;
  attempts!: number;
  retries!: number;
  priority!: number;
  uniqueKey!: string | null;
  state!: string;
  progress!: string | null;
  /** What execute() returned, as JSON text (null when it returned nothing). */
  result!: string | null;
  /** Why the result was not kept, or why the event was cancelled. */
  error!: string | null;
  createdAt!: number;
  availableAt!: number;
  startedAt!: number | null;
  finishedAt!: number;
  durationMs!: number | null;
  workerId!: string | null;
}

/** A worker process that polls: registered when it starts, refreshed with each heartbeat. */
export class WorkerProcessEntity {
  /** WorkerService.workerId: host, pid and a random suffix. */
  id!: string;
  host!: string;
  pid!: number;
  /** The queues it polls, a JSON array of names. */
  queues!: string;
  /** Events it may run at once, over all its queues. */
  concurrency!: number;
  /** Events running at its last heartbeat. */
  running!: number;
  startedAt!: number;
  heartbeatAt!: number;
}

/**
 * Outcomes per minute, queue and event name: each batch's outcome write adds its counts with one
 * upsert, so charts need no history rows.
 */
export class WorkerThroughputEntity {
  queueName!: string;
  /** Start of the minute, epoch ms on the database's clock. */
  minute!: number;
  eventName!: string;
  completed!: number;
  failed!: number;
  retried!: number;
  cancelled!: number;
  snoozed!: number;
  /** Sum of the durations of the events counted (ms). */
  durationMs!: number;
}

/**
 * A queue's shared state (flow control): whether it is paused, for every process on the database. Its
 * row is also the lock that serializes the claims of a queue with limits (globalConcurrency,
 * keyConcurrency, rate limits), so that a count and the claim that follows it cannot interleave.
 */
export class WorkerQueueStateEntity {
  queueName!: string;
  /** 1 while paused: no claim starts. */
  paused!: number;
  pausedAt!: number | null;
  updatedAt!: number;
}

/**
 * A claim of a queue with concurrency limits: one row per claimed job, written in the claim's
 * transaction. It holds a slot while the pending row still has this lease token under a live lease,
 * so a completed, retried or abandoned job frees its slot without any write of its own (the next
 * limited claim deletes the dead slots); the slots are the index of "what runs now" that the
 * pending table cannot have (an index on its lease columns would end HOT claims).
 */
export class WorkerSlotEntity {
  jobId!: string | number;
  queueName!: string;
  concurrencyKey!: string | null;
  leaseToken!: string;
}

/**
 * A rate limiter's lock row: a take from the limiter (a claim of a rate-limited queue, or
 * WorkerRateLimiter.take()) locks it, counts the starts in the window, and records its own.
 */
export class WorkerRateLimitEntity {
  name!: string;
}

/** One start granted by a rate limiter: `bucketKey` is '' for the limiter's whole budget, else the key. */
export class WorkerRateStartEntity {
  id!: string | number;
  name!: string;
  bucketKey!: string;
  startedAt!: number;
}

/** A throttled dispatch's window: dispatches of the key until `untilAt` resolve to `jobId`. */
export class WorkerThrottleEntity {
  queueName!: string;
  uniqueKey!: string;
  jobId!: string | number;
  untilAt!: number;
}

/**
 * The last slot of a recurring event that some replica dispatched: a replica dispatches a slot only
 * when it moves `lastSlotAt` forward, in the same transaction as the insert, so each slot runs once.
 */
export class WorkerScheduleEntity {
  name!: string;
  lastSlotAt!: number;
  updatedAt!: number;
}

type DatabaseType = DataSourceOptions['type'];

/**
 * The binary NO PAD collations, which compare names byte for byte (utf8mb4_bin is PAD SPACE: 'key '
 * equals 'key'). MySQL (8.0.17+) spells it utf8mb4_0900_bin, MariaDB (10.2+) utf8mb4_nopad_bin, and
 * neither knows the other's; type 'mysql' may be either server (see collationForServer).
 */
export const MYSQL_EXACT_COLLATION = 'utf8mb4_0900_bin';
export const MARIADB_EXACT_COLLATION = 'utf8mb4_nopad_bin';

function exactCollation(type: DatabaseType): string {
  return type === 'mariadb' ? MARIADB_EXACT_COLLATION : MYSQL_EXACT_COLLATION;
}

/** The exact collation of a server, from its `SELECT VERSION()` ('10.11.6-MariaDB-…' or '8.0.36'). */
export function collationForServer(version: string): string {
  return /mariadb/i.test(version) ? MARIADB_EXACT_COLLATION : MYSQL_EXACT_COLLATION;
}

/** The condition of the partial unique index (PostgreSQL, SQLite): rows without a key are not in it. */
export const KEYED_ROWS = '"unique_key" IS NOT NULL';

/** The queue tables' entity schemas for one database type, in the order of WorkerEntitySchemas. */
export type WorkerEntitySchemas = [
  EntitySchema<WorkerEntity>,
  EntitySchema<FailedWorkerEntity>,
  EntitySchema<WorkerScheduleEntity>,
  EntitySchema<WorkerHistoryEntity>,
  EntitySchema<WorkerProcessEntity>,
  EntitySchema<WorkerThroughputEntity>,
  EntitySchema<WorkerQueueStateEntity>,
  EntitySchema<WorkerSlotEntity>,
  EntitySchema<WorkerRateLimitEntity>,
  EntitySchema<WorkerRateStartEntity>,
  EntitySchema<WorkerThrottleEntity>,
];

/**
 * The tables for one database type. Built per type because a 64-bit auto-increment key is
 * spelled differently: SQLite's INTEGER PRIMARY KEY is already 64-bit, elsewhere it is bigint.
 */
export function workerEntitySchemas(type: DatabaseType): WorkerEntitySchemas {
  const id: EntitySchemaColumnOptions = {
    type: type === 'better-sqlite3' ? 'integer' : 'bigint',
    primary: true,
    generated: 'increment',
  };
  // MySQL's TEXT stops at 64 KiB; payloads and stack traces may be longer.
  const mysqlFamily = type === 'mysql' || type === 'mariadb';
  const text = mysqlFamily ? 'longtext' : 'text';
  // MySQL's default collations compare case-insensitively ('Mail' would be queue 'mail'), and even its
  // binary utf8mb4_bin pads with spaces ('mail ' would be 'mail'): names take a binary NO PAD collation.
  // PostgreSQL and SQLite compare text exactly already.
  const exact = mysqlFamily ? { charset: 'utf8mb4', collation: exactCollation(type) } : {};
  const shared = {
    queueName: { name: 'queue_name', type: 'varchar', length: 255, ...exact },
    eventName: { name: 'event_name', type: 'varchar', length: 255, ...exact },
    payload: { type: text, nullable: true },
    attempts: { type: 'int', default: 0 },
    retries: { type: 'int' },
    priority: { type: 'int', default: 0 },
    uniqueKey: { name: 'unique_key', type: 'varchar', length: 255, nullable: true, ...exact },
    error: { type: text, nullable: true },
    createdAt: { name: 'created_at', type: 'bigint', transformer: epochMs },
    updatedAt: { name: 'updated_at', type: 'bigint', transformer: epochMs },
    deletedAt: { name: 'deleted_at', type: 'bigint', nullable: true, transformer: epochMs },
  } satisfies Record<string, EntitySchemaColumnOptions>;
  const pending = new EntitySchema<WorkerEntity>({
    name: 'NestjsWorker',
    target: WorkerEntity,
    tableName: PENDING_WORKERS_TABLE,
    columns: {
      id,
      ...shared,
      availableAt: { name: 'available_at', type: 'bigint', transformer: epochMs },
      lockedBy: { name: 'locked_by', type: 'varchar', length: 255, nullable: true },
      leaseToken: { name: 'lease_token', type: 'varchar', length: 64, nullable: true },
      leaseExpiresAt: { name: 'lease_expires_at', type: 'bigint', nullable: true, transformer: epochMs },
      startedAt: { name: 'started_at', type: 'bigint', nullable: true, transformer: epochMs },
      progress: { type: text, nullable: true },
      // Flow control's key (keyConcurrency, keyRateLimit); in no index: the claim filters the rows it walks.
      concurrencyKey: { name: 'concurrency_key', type: 'varchar', length: 255, nullable: true, ...exact },
    },
    indices: [
      // "How many are due": one range, however many delayed rows wait behind it.
      { name: 'IDX_nestjs_workers_due', columns: ['queueName', 'availableAt', 'id'] },
      // The claim walks this index in its ORDER BY (priority, available_at, id): no sort, however long the queue.
      { name: 'IDX_nestjs_workers_claim', columns: ['queueName', 'priority', 'availableAt', 'id'] },
      // NULL keys never collide, so only keyed rows are deduplicated; where the database can, only
      // keyed rows are in it at all.
      {
        name: 'IDX_nestjs_workers_unique',
        columns: ['queueName', 'uniqueKey'],
        unique: true,
        ...(mysqlFamily ? {} : { where: KEYED_ROWS }),
      },
    ],
  });
  const failed = new EntitySchema<FailedWorkerEntity>({
    name: 'NestjsFailedWorker',
    target: FailedWorkerEntity,
    tableName: FAILED_WORKERS_TABLE,
    columns: {
      id,
      ...shared,
      failedAt: { name: 'failed_at', type: 'bigint', transformer: epochMs },
      jobId: { name: 'job_id', type: 'bigint', nullable: true },
      availableAt: { name: 'available_at', type: 'bigint', nullable: true, transformer: epochMs },
      startedAt: { name: 'started_at', type: 'bigint', nullable: true, transformer: epochMs },
      durationMs: { name: 'duration_ms', type: 'bigint', nullable: true, transformer: epochMs },
      workerId: { name: 'worker_id', type: 'varchar', length: 255, nullable: true },
      progress: { type: text, nullable: true },
      // Kept so that a retry from the failed store runs under the same per-key limits.
      concurrencyKey: { name: 'concurrency_key', type: 'varchar', length: 255, nullable: true, ...exact },
    },
    indices: [
      { name: 'IDX_nestjs_failed_workers_queue', columns: ['queueName', 'failedAt'] },
      // getJob() finds a failed job by the id it had while pending.
      { name: 'IDX_nestjs_failed_workers_job', columns: ['jobId'] },
    ],
  });
  const schedules = new EntitySchema<WorkerScheduleEntity>({
    name: 'NestjsWorkerSchedule',
    target: WorkerScheduleEntity,
    tableName: WORKER_SCHEDULES_TABLE,
    columns: {
      name: { type: 'varchar', length: 255, primary: true, ...exact },
      lastSlotAt: { name: 'last_slot_at', type: 'bigint', transformer: epochMs },
      updatedAt: { name: 'updated_at', type: 'bigint', transformer: epochMs },
    },
  });
  const history = new EntitySchema<WorkerHistoryEntity>({
    name: 'NestjsWorkerHistory',
    target: WorkerHistoryEntity,
    tableName: WORKER_HISTORY_TABLE,
    columns: {
      // The pending row's id, not a new one: getJob() finds the job under the id dispatch gave it.
      id: { type: id.type, primary: true },
      ...shared,
      state: { type: 'varchar', length: 16 },
      progress: { type: text, nullable: true },
      result: { type: text, nullable: true },
      availableAt: { name: 'available_at', type: 'bigint', transformer: epochMs },
      startedAt: { name: 'started_at', type: 'bigint', nullable: true, transformer: epochMs },
      finishedAt: { name: 'finished_at', type: 'bigint', transformer: epochMs },
      durationMs: { name: 'duration_ms', type: 'bigint', nullable: true, transformer: epochMs },
      workerId: { name: 'worker_id', type: 'varchar', length: 255, nullable: true },
    },
    indices: [
      // findJobs() pages a queue's history newest first (ids follow dispatch order).
      { name: 'IDX_nestjs_workers_history_queue', columns: ['queueName', 'id'] },
      // findJobs() by event name or by state, and their totals, read only the rows that match.
      { name: 'IDX_nestjs_workers_history_event', columns: ['queueName', 'eventName', 'id'] },
      { name: 'IDX_nestjs_workers_history_state', columns: ['queueName', 'state', 'id'] },
      // Pruning by age walks the oldest finished rows of a queue.
      { name: 'IDX_nestjs_workers_history_finished', columns: ['queueName', 'finishedAt'] },
      // "Was this key done already?" (deduplicating webhooks) and findJobs({ uniqueKey }).
      { name: 'IDX_nestjs_workers_history_key', columns: ['queueName', 'uniqueKey'] },
    ],
  });
  const processes = new EntitySchema<WorkerProcessEntity>({
    name: 'NestjsWorkerProcess',
    target: WorkerProcessEntity,
    tableName: WORKER_PROCESSES_TABLE,
    columns: {
      id: { type: 'varchar', length: 255, primary: true },
      host: { type: 'varchar', length: 255 },
      pid: { type: 'int' },
      queues: { type: text },
      concurrency: { type: 'int' },
      running: { type: 'int' },
      startedAt: { name: 'started_at', type: 'bigint', transformer: epochMs },
      heartbeatAt: { name: 'heartbeat_at', type: 'bigint', transformer: epochMs },
    },
  });
  const throughput = new EntitySchema<WorkerThroughputEntity>({
    name: 'NestjsWorkerThroughput',
    target: WorkerThroughputEntity,
    tableName: WORKER_THROUGHPUT_TABLE,
    columns: {
      queueName: { name: 'queue_name', type: 'varchar', length: 255, primary: true, ...exact },
      minute: { type: 'bigint', primary: true, transformer: epochMs },
      eventName: { name: 'event_name', type: 'varchar', length: 255, primary: true, ...exact },
      completed: { type: 'int', default: 0 },
      failed: { type: 'int', default: 0 },
      retried: { type: 'int', default: 0 },
      cancelled: { type: 'int', default: 0 },
      snoozed: { type: 'int', default: 0 },
      durationMs: { name: 'duration_ms', type: 'bigint', default: 0, transformer: epochMs },
    },
    // Pruning drops the oldest minutes of every queue.
    indices: [{ name: 'IDX_nestjs_workers_throughput_minute', columns: ['minute'] }],
  });
  const flowName = { type: 'varchar', length: 255, primary: true, ...exact } satisfies EntitySchemaColumnOptions;
  const queues = new EntitySchema<WorkerQueueStateEntity>({
    name: 'NestjsWorkerQueue',
    target: WorkerQueueStateEntity,
    tableName: WORKER_QUEUES_TABLE,
    columns: {
      queueName: { name: 'queue_name', ...flowName },
      paused: { type: 'int', default: 0 },
      pausedAt: { name: 'paused_at', type: 'bigint', nullable: true, transformer: epochMs },
      updatedAt: { name: 'updated_at', type: 'bigint', transformer: epochMs },
    },
  });
  const slots = new EntitySchema<WorkerSlotEntity>({
    name: 'NestjsWorkerSlot',
    target: WorkerSlotEntity,
    tableName: WORKER_SLOTS_TABLE,
    columns: {
      jobId: { name: 'job_id', type: id.type, primary: true },
      queueName: { name: 'queue_name', type: 'varchar', length: 255, ...exact },
      concurrencyKey: { name: 'concurrency_key', type: 'varchar', length: 255, nullable: true, ...exact },
      leaseToken: { name: 'lease_token', type: 'varchar', length: 64 },
    },
    // A limited claim counts the live slots of its queue, per key.
    indices: [{ name: 'IDX_nestjs_workers_slots_queue', columns: ['queueName', 'concurrencyKey'] }],
  });
  const rateLimits = new EntitySchema<WorkerRateLimitEntity>({
    name: 'NestjsWorkerRateLimit',
    target: WorkerRateLimitEntity,
    tableName: WORKER_RATE_LIMITS_TABLE,
    columns: { name: flowName },
  });
  const rateStarts = new EntitySchema<WorkerRateStartEntity>({
    name: 'NestjsWorkerRateStart',
    target: WorkerRateStartEntity,
    tableName: WORKER_RATE_STARTS_TABLE,
    columns: {
      id,
      name: { type: 'varchar', length: 255, ...exact },
      bucketKey: { name: 'bucket_key', type: 'varchar', length: 255, default: '', ...exact },
      startedAt: { name: 'started_at', type: 'bigint', transformer: epochMs },
    },
    // A take counts a limiter's starts in its window (per key); old starts are pruned by the same range.
    indices: [
      { name: 'IDX_nestjs_workers_rate_starts', columns: ['name', 'startedAt', 'bucketKey'] },
      // A take from one key's budget, and the count of the keys a claim read: a range per key.
      { name: 'IDX_nestjs_workers_rate_starts_key', columns: ['name', 'bucketKey', 'startedAt'] },
    ],
  });
  const throttles = new EntitySchema<WorkerThrottleEntity>({
    name: 'NestjsWorkerThrottle',
    target: WorkerThrottleEntity,
    tableName: WORKER_THROTTLES_TABLE,
    columns: {
      queueName: { name: 'queue_name', ...flowName },
      uniqueKey: { name: 'unique_key', ...flowName },
      jobId: { name: 'job_id', type: 'bigint' },
      untilAt: { name: 'until_at', type: 'bigint', transformer: epochMs },
    },
    // Pruning deletes the windows that ended, oldest first.
    indices: [{ name: 'IDX_nestjs_workers_throttles_until', columns: ['untilAt'] }],
  });
  return [pending, failed, schedules, history, processes, throughput, queues, slots, rateLimits, rateStarts, throttles];
}
