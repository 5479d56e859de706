import type { DataSource } from 'typeorm';
import type { WorkerProcessDescription } from '../interfaces/job-state.interface.js';
import type { ThroughputCount } from '../interfaces/worker-repository.interface.js';
import { dialectFor } from './dialects/dialect-for.js';
import type { WorkerDialect } from './dialects/worker-dialect.js';
import { countJobsStatement, findJobsStatement, type JobFilter } from './sql/find-jobs.js';
import { getJobStatement } from './sql/get-job.js';
import type { StoredJobState } from './sql/job-rows.js';
import { liveWorkersStatement } from './sql/list-workers.js';
import { type ThroughputFilter, throughputSeriesStatement } from './sql/throughput-series.js';
import type { RawWorkerRow } from './worker-row.js';
import { type WorkerTables, workerTables } from './worker-tables.js';

/** A job as stored, wherever it is: JSON columns as their text, instants as epoch ms. */
export interface StoredJob {
  id: string;
  queueName: string;
  eventName: string;
  state: StoredJobState;
  payload: string | null;
  attempts: number;
  retries: number;
  priority: number;
  uniqueKey: string | null;
  progress: string | null;
  result: string | null;
  error: string | null;
  createdAt: number;
  dueAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  durationMs: number | null;
  workerId: string | null;
}

/** A worker process's row; `queues` is its JSON text. */
export interface StoredWorkerProcess extends Omit<WorkerProcessDescription, 'queues'> {
  queues: string;
  startedAt: number;
  heartbeatAt: number;
}

/** One minute's outcome counts of a queue and event name. */
export interface StoredThroughputMinute extends ThroughputCount {
  minute: number;
}

/**
 * The reads behind WorkerJobsService (statements in sql/get-job, sql/find-jobs, sql/list-workers,
 * sql/throughput-series), which checks its input before calling these.
 */
export class JobStore {
  private readonly dialect: WorkerDialect;
  private readonly tables: WorkerTables;

  constructor(dataSource: DataSource) {
    this.dialect = dialectFor(dataSource);
    this.tables = workerTables(dataSource);
  }

  async get(id: string): Promise<StoredJob | undefined> {
    const [row] = await this.dialect.query(getJobStatement(this.tables, this.dialect, id));
    return row ? toStoredJob(row) : undefined;
  }

  /** How many jobs match `filter`. */
  async count(filter: JobFilter): Promise<number> {
    const [row] = await this.dialect.query(countJobsStatement(this.tables, this.dialect, filter));
    return Number(row?.job_count ?? 0);
  }

  /** The jobs matching `filter`, newest first, from `offset` on. */
  async page(filter: JobFilter, offset: number, limit: number): Promise<StoredJob[]> {
    const rows = await this.dialect.query(findJobsStatement(this.tables, this.dialect, filter, offset, limit));
    return rows.map(toStoredJob);
  }

  async liveWorkers(leaseMs: number): Promise<StoredWorkerProcess[]> {
    const rows = await this.dialect.query(liveWorkersStatement(this.tables.processes, this.dialect, leaseMs));
    return rows.map((row) => ({
      id: String(row.id),
      host: String(row.host),
      pid: Number(row.pid),
      queues: String(row.queues),
      concurrency: Number(row.concurrency),
      running: Number(row.running),
      startedAt: Number(row.started_at),
      heartbeatAt: Number(row.heartbeat_at),
    }));
  }

  async throughput(filter: ThroughputFilter): Promise<StoredThroughputMinute[]> {
    const rows = await this.dialect.query(throughputSeriesStatement(this.tables.throughput, this.dialect, filter));
    return rows.map((row) => ({
      minute: Number(row.minute),
      queueName: String(row.queue_name),
      eventName: String(row.event_name),
      completed: Number(row.completed),
      failed: Number(row.failed),
      retried: Number(row.retried),
      cancelled: Number(row.cancelled),
      snoozed: Number(row.snoozed),
      durationMs: Number(row.duration_ms),
    }));
  }
}

/** A row of the job columns (sql/job-rows) as drivers return it (PostgreSQL: bigints as strings). */
function toStoredJob(row: RawWorkerRow): StoredJob {
  const text = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));
  const epochMs = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));
  return {
    id: String(row.job_id),
    queueName: String(row.queue_name),
    eventName: String(row.event_name),
    state: String(row.job_state) as StoredJobState,
    payload: text(row.payload),
    attempts: Number(row.attempts),
    retries: Number(row.retries),
    priority: Number(row.priority),
    uniqueKey: text(row.unique_key),
    progress: text(row.progress),
    result: text(row.result),
    error: text(row.error),
    createdAt: Number(row.created_at),
    dueAt: Number(row.due_at),
    startedAt: epochMs(row.started_at),
    finishedAt: epochMs(row.finished_at),
    durationMs: epochMs(row.duration_ms),
    workerId: text(row.worker_id),
  };
}
