import type { WorkerTables } from '../worker-tables.js';
import { idColumn, type JobSource, type JobSpelling, jobColumns, sourceCondition, sourceTable } from './job-rows.js';
import type { SqlStatement } from './statement.js';

const SOURCES: JobSource[] = ['pending', 'history', 'failed'];

/**
 * The job of this id wherever it is, in one statement: the pending row by primary key, the history
 * row by primary key, the failed row by job_id (its index). A job is in one place at a time (it is
 * moved in one transaction); should two rows ever hold the id, the pending one wins, then the
 * history, then the newest failed row.
 */
export function getJobStatement(tables: WorkerTables, spelling: JobSpelling, id: string): SqlStatement {
  const branches = SOURCES.map(
    (source) =>
      `SELECT ${jobColumns(source, spelling)} FROM ${sourceTable(tables, source)} ` +
      `WHERE ${idColumn(source)} = ? AND ${sourceCondition(source)}`,
  );
  return {
    sql: `${branches.join(' UNION ALL ')} ORDER BY job_rank, finished_at DESC LIMIT 1`,
    parameters: SOURCES.map(() => id),
  };
}
