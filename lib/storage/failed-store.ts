import type { DataSource } from 'typeorm';
import { dialectFor } from './dialects/dialect-for.js';
import type { WorkerDialect } from './dialects/worker-dialect.js';
import type { FailedWorkerEntity } from './entities/worker.entity.js';
import {
  deleteFailedStatement,
  failedCountStatement,
  failedPageStatement,
  type FailedRowFilter,
  failedRowStatement,
  purgeFailedStatement,
  requeueFailed,
} from './sql/failed-store.js';
import type { RawWorkerRow } from './worker-row.js';
import { type WorkerTables, workerTables } from './worker-tables.js';

/**
 * The failed store's reads, deletes and retries (statements in sql/failed-store): the SQL behind
 * FailedWorkerService, which checks its input before calling these.
 */
export class FailedStore {
  private readonly dialect: WorkerDialect;
  private readonly tables: WorkerTables;

  constructor(dataSource: DataSource) {
    this.dialect = dialectFor(dataSource);
    this.tables = workerTables(dataSource);
  }

  /** A page of the failed rows that are not soft-deleted, newest first, and how many match in all. */
  async page(filter: FailedRowFilter, offset: number, limit: number): Promise<[FailedWorkerEntity[], number]> {
    const rows = await this.dialect.query(failedPageStatement(this.tables.failed, filter, offset, limit));
    const [counted] = await this.dialect.query(failedCountStatement(this.tables.failed, filter));
    return [rows.map(toFailedEntity), Number(counted?.failed_count ?? 0)];
  }

  /** The failed row of this id, unless there is none or it is soft-deleted. */
  async find(id: string): Promise<FailedWorkerEntity | undefined> {
    const [row] = await this.dialect.query(failedRowStatement(this.tables.failed, id));
    return row && (row.deleted_at === null || row.deleted_at === undefined) ? toFailedEntity(row) : undefined;
  }

  /** Deletes one failed row; resolves to whether there was one. */
  async delete(id: string): Promise<boolean> {
    return (await this.dialect.execute(deleteFailedStatement(this.tables.failed, id))).affected > 0;
  }

  /** Deletes the rows that failed before `before` (epoch ms); resolves to how many. */
  async purge(before: number): Promise<number> {
    return (await this.dialect.execute(purgeFailedStatement(this.tables.failed, before))).affected;
  }

  /**
   * Puts the failed rows matching `filter` back in line as new pending rows, in one transaction
   * (see requeueFailed); resolves to how many.
   */
  requeue(filter: FailedRowFilter): Promise<number> {
    return this.dialect.atomically(requeueFailed(this.tables, filter, this.dialect));
  }
}

/** A failed row as the entity reads it (instants as epoch-ms numbers, as its column transformers give them). */
function toFailedEntity(row: RawWorkerRow): FailedWorkerEntity {
  const text = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));
  const epochMs = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));
  return {
    id: row.id as string | number,
    queueName: String(row.queue_name),
    eventName: String(row.event_name),
    payload: text(row.payload),
    attempts: Number(row.attempts),
    retries: Number(row.retries),
    priority: Number(row.priority),
    uniqueKey: text(row.unique_key),
    error: text(row.error),
    failedAt: Number(row.failed_at),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    deletedAt: epochMs(row.deleted_at),
    jobId: text(row.job_id),
    availableAt: epochMs(row.available_at),
    startedAt: epochMs(row.started_at),
    durationMs: epochMs(row.duration_ms),
    workerId: text(row.worker_id),
    progress: text(row.progress),
    concurrencyKey: text(row.concurrency_key),
  };
}
