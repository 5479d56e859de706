import type { WorkerTables } from '../worker-tables.js';
import type { SqlSpelling, SqlStatement } from './statement.js';

/** The states a job can be in, as getJob() and findJobs() spell them (JobState). */
export type StoredJobState = 'delayed' | 'waiting' | 'running' | 'completed' | 'failed' | 'cancelled';

/** A top-level payload field compared for equality (PayloadFilterValue). */
export type PayloadFieldValue = string | number | boolean | null;

/**
 * How a database reads JSON and spells a typed NULL: the pieces the job queries need beyond
 * SqlSpelling. Each dialect provides them (WorkerDialect extends this).
 */
export interface JsonSpelling {
  /**
   * A condition that holds when the top-level field `key` of the row's `payload` column exists and
   * equals `value` with its JSON type (1 is not "1", true is not 1, null only matches an explicit
   * null). `key` is already checked (letters, digits, _ and -); a payload that does not parse matches
   * nothing where the database can tell.
   */
  payloadFieldEquals(key: string, value: PayloadFieldValue): SqlStatement;
  /**
   * A NULL of a column type, for a column one table of a UNION ALL lacks (PostgreSQL cannot match an
   * untyped NULL of a derived table with a bigint).
   */
  nullOf(type: 'text' | 'bigint'): string;
}

export type JobSpelling = Pick<SqlSpelling, 'nowSql'> & JsonSpelling;

/** The three places a job can be. */
export type JobSource = 'pending' | 'history' | 'failed';

/**
 * The state of a pending row, on the database's clock: running while its lease is live, cancelled
 * when soft-deleted (and not running), delayed until due, else waiting.
 */
function pendingState(nowSql: string): string {
  return (
    `CASE WHEN ${liveLease(nowSql)} THEN 'running' ` +
    `WHEN deleted_at IS NOT NULL THEN 'cancelled' WHEN available_at > ${nowSql} THEN 'delayed' ` +
    "ELSE 'waiting' END"
  );
}

/** A pending row leased to a worker whose lease has not run out on the database's clock. */
function liveLease(nowSql: string): string {
  return `lease_token IS NOT NULL AND lease_expires_at > ${nowSql}`;
}

/** The state column of each source, as an SQL expression. */
export function stateExpression(source: JobSource, spelling: JobSpelling): string {
  if (source === 'pending') return pendingState(spelling.nowSql);
  return source === 'history' ? 'state' : "'failed'";
}

/** The job's id column in each source: failed rows keep the pending id in job_id. */
export function idColumn(source: JobSource): string {
  return source === 'failed' ? 'job_id' : 'id';
}

/**
 * The columns of a job, the same names and order from each source, so the sources can be joined by
 * UNION ALL: `rank` orders the sources (pending, history, failed) for a lookup by id.
 */
export function jobColumns(source: JobSource, spelling: JobSpelling): string {
  const text = spelling.nullOf('text');
  const bigint = spelling.nullOf('bigint');
  const shared =
    'queue_name, event_name, payload, attempts, retries, priority, unique_key, progress, error, created_at';
  const state = `${stateExpression(source, spelling)} AS job_state`;
  switch (source) {
    case 'pending':
      return (
        `0 AS job_rank, id AS job_id, ${shared}, ${text} AS result, available_at AS due_at, started_at, ` +
        // A cancelled row finished when it was soft-deleted; a waiting or running one has not finished.
        `CASE WHEN deleted_at IS NOT NULL AND NOT (${liveLease(spelling.nowSql)}) THEN deleted_at END ` +
        'AS finished_at, ' +
        `${bigint} AS duration_ms, locked_by AS worker_id, ${state}`
      );
    case 'history':
      return (
        `1 AS job_rank, id AS job_id, ${shared}, result, available_at AS due_at, started_at, finished_at, ` +
        `duration_ms, worker_id, ${state}`
      );
    case 'failed':
      return (
        `2 AS job_rank, job_id, ${shared}, ${text} AS result, ` +
        // available_at is null on rows failed before it was kept: the event was due when dispatched then.
        'COALESCE(available_at, created_at) AS due_at, started_at, failed_at AS finished_at, duration_ms, ' +
        `worker_id, ${state}`
      );
  }
}

/** The table of each source. */
export function sourceTable(tables: WorkerTables, source: JobSource): string {
  return tables[source];
}

/**
 * Rows of a source that are jobs: a soft-deleted failed row is gone for the failed store, and a
 * failed row without job_id (failed before the id was kept) has no id getJob() could find it by.
 */
export function sourceCondition(source: JobSource): string {
  return source === 'failed' ? 'job_id IS NOT NULL AND deleted_at IS NULL' : '1 = 1';
}
