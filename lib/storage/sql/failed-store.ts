import type { WorkerTables } from '../worker-tables.js';
import type { AtomicWork, SqlSpelling, SqlStatement } from './statement.js';
import { placeholders } from './statement.js';

/** Which failed rows a retry takes: by id, or by queue and event name (all when neither is given). */
export interface FailedRowFilter {
  id?: string;
  queueName?: string;
  eventName?: string;
}

export function failedRowCondition(filter: FailedRowFilter): { where: string; parameters: unknown[] } {
  const conditions = ['deleted_at IS NULL'];
  const parameters: unknown[] = [];
  for (const [column, value] of [
    ['id', filter.id],
    ['queue_name', filter.queueName],
    ['event_name', filter.eventName],
  ] as const) {
    if (value === undefined) continue;
    conditions.push(`${column} = ?`);
    parameters.push(value);
  }
  return { where: conditions.join(' AND '), parameters };
}

/** A page of the failed rows matching `filter`, newest first (the failed index is (queue_name, failed_at)). */
export function failedPageStatement(
  failed: string,
  filter: FailedRowFilter,
  offset: number,
  limit: number,
): SqlStatement {
  const { where, parameters } = failedRowCondition(filter);
  return {
    sql: `SELECT * FROM ${failed} WHERE ${where} ORDER BY failed_at DESC, id DESC LIMIT ? OFFSET ?`,
    parameters: [...parameters, limit, offset],
  };
}

/** How many failed rows match `filter` in all (the total beside a page). */
export function failedCountStatement(failed: string, filter: FailedRowFilter): SqlStatement {
  const { where, parameters } = failedRowCondition(filter);
  return { sql: `SELECT COUNT(*) AS failed_count FROM ${failed} WHERE ${where}`, parameters };
}

/** The failed row of this id (soft-deleted or not: the caller decides). */
export function failedRowStatement(failed: string, id: string): SqlStatement {
  return { sql: `SELECT * FROM ${failed} WHERE id = ?`, parameters: [id] };
}

export function deleteFailedStatement(failed: string, id: string): SqlStatement {
  return { sql: `DELETE FROM ${failed} WHERE id = ?`, parameters: [id] };
}

/** The rows that failed before `before` (epoch ms). */
export function purgeFailedStatement(failed: string, before: number): SqlStatement {
  return { sql: `DELETE FROM ${failed} WHERE failed_at < ?`, parameters: [before] };
}

/**
 * Puts failed rows back in line as new pending rows (attempts 0, no error, due now, same priority)
 * and removes them from the failed store in the same transaction. The rows are read with
 * `lockRowsClause`, so two retries of one row cannot both re-queue it. Returns how many rows were
 * re-queued.
 */
export function requeueFailed(
  tables: WorkerTables,
  filter: FailedRowFilter,
  { lockRowsClause, nowSql }: Pick<SqlSpelling, 'lockRowsClause' | 'nowSql'>,
): AtomicWork<number> {
  return function* () {
    const { where, parameters } = failedRowCondition(filter);
    const { rows } = yield {
      sql: `SELECT id FROM ${tables.failed} WHERE ${where} ORDER BY id${lockRowsClause}`,
      parameters,
    };
    if (rows.length === 0) return 0;
    const ids = rows.map((row) => row.id);
    const idList = placeholders(ids.length);
    // Without its unique key: a new event holding that key may be pending already, and the retry
    // must not be lost to it. Under its job id where the failed row has one, so getJob() follows the
    // job back into line (no pending row can hold that id: the job left the pending table when it
    // failed, and ids are never handed out twice); rows failed before job ids were kept get new ids.
    // With its concurrency key: the retry runs under the same per-key limits as the job did.
    const columns =
      'queue_name, event_name, payload, attempts, retries, priority, error, created_at, updated_at, ' +
      'available_at, concurrency_key';
    const values =
      `queue_name, event_name, payload, 0, retries, priority, NULL, ${nowSql}, ${nowSql}, ${nowSql}, ` +
      'concurrency_key';
    yield {
      sql:
        `INSERT INTO ${tables.pending} (id, ${columns}) SELECT job_id, ${values} FROM ${tables.failed} ` +
        `WHERE id IN (${idList}) AND job_id IS NOT NULL ORDER BY id`,
      parameters: ids,
    };
    yield {
      sql:
        `INSERT INTO ${tables.pending} (${columns}) SELECT ${values} FROM ${tables.failed} ` +
        `WHERE id IN (${idList}) AND job_id IS NULL ORDER BY id`,
      parameters: ids,
    };
    yield { sql: `DELETE FROM ${tables.failed} WHERE id IN (${idList})`, parameters: ids };
    return ids.length;
  };
}
