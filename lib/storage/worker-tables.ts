import type { DataSource } from 'typeorm';
import {
  FailedWorkerEntity,
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
} from './entities/worker.entity.js';

/** Every entity of the queue tables, in the order WorkerTables names them. */
export const WORKER_ENTITIES = [
  WorkerEntity,
  FailedWorkerEntity,
  WorkerScheduleEntity,
  WorkerHistoryEntity,
  WorkerProcessEntity,
  WorkerThroughputEntity,
  WorkerQueueStateEntity,
  WorkerSlotEntity,
  WorkerRateLimitEntity,
  WorkerRateStartEntity,
  WorkerThrottleEntity,
] as const;

/** The queue tables as they are spelled in raw SQL on this DataSource (schema-qualified, quoted). */
export interface WorkerTables {
  pending: string;
  failed: string;
  /** The recurring events' last dispatched slots. */
  schedules: string;
  /** Completed and cancelled events kept by keepCompleted. */
  history: string;
  /** The worker processes that poll, with their last heartbeat. */
  processes: string;
  /** Outcome counts per minute, queue and event name. */
  throughput: string;
  /** Flow control: each queue's paused flag, and the lock row of its limited claims. */
  queues: string;
  /** Flow control: the jobs a limited claim took, while their leases live. */
  slots: string;
  /** Flow control: a rate limiter's lock row. */
  rateLimits: string;
  /** Flow control: the starts a rate limiter granted, in its window. */
  rateStarts: string;
  /** Throttled dispatches: the window of each key. */
  throttles: string;
}

const tablesBySource = new WeakMap<DataSource, WorkerTables>();

/** Read from the metadata once per DataSource: dispatches and claims use them on every call. */
export function workerTables(dataSource: DataSource): WorkerTables {
  let tables = tablesBySource.get(dataSource);
  if (!tables) tablesBySource.set(dataSource, (tables = readTables(dataSource)));
  return tables;
}

function readTables(dataSource: DataSource): WorkerTables {
  const quoted = (entity: (typeof WORKER_ENTITIES)[number]): string =>
    dataSource
      .getMetadata(entity)
      .tablePath.split('.')
      .map((part) => dataSource.driver.escape(part))
      .join('.');
  return {
    pending: quoted(WorkerEntity),
    failed: quoted(FailedWorkerEntity),
    schedules: quoted(WorkerScheduleEntity),
    history: quoted(WorkerHistoryEntity),
    processes: quoted(WorkerProcessEntity),
    throughput: quoted(WorkerThroughputEntity),
    queues: quoted(WorkerQueueStateEntity),
    slots: quoted(WorkerSlotEntity),
    rateLimits: quoted(WorkerRateLimitEntity),
    rateStarts: quoted(WorkerRateStartEntity),
    throttles: quoted(WorkerThrottleEntity),
  };
}

/** What the queue tables lack on a database: whole tables (TypeORM paths), and columns ("table.column"). */
export interface MissingWorkerSchema {
  tables: string[];
  columns: string[];
}

/**
 * The queue tables and columns that do not exist on the DataSource's database. TypeORM's getTable()
 * asks the catalog of each database (information_schema, sqlite_master) for the schema-qualified
 * name, so a table of the same name in another schema does not count. Columns are checked too: a
 * database that an earlier release created has the tables, but not the columns of later migrations.
 */
export async function missingWorkerSchema(dataSource: DataSource): Promise<MissingWorkerSchema> {
  const queryRunner = dataSource.createQueryRunner();
  try {
    const missing: MissingWorkerSchema = { tables: [], columns: [] };
    for (const entity of WORKER_ENTITIES) {
      const metadata = dataSource.getMetadata(entity);
      const table = await queryRunner.getTable(metadata.tablePath);
      if (!table) {
        missing.tables.push(metadata.tablePath);
        continue;
      }
      const present = new Set(table.columns.map((column) => column.name));
      for (const { databaseName } of metadata.columns) {
        if (!present.has(databaseName)) missing.columns.push(`${metadata.tablePath}.${databaseName}`);
      }
    }
    return missing;
  } finally {
    await queryRunner.release();
  }
}
