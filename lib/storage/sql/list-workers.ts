import type { SqlSpelling, SqlStatement } from './statement.js';

/**
 * The worker processes whose last heartbeat is within `leaseMs` of the database's now (a process
 * silent for longer than a lease has lost its leases, and is gone), oldest first.
 */
export function liveWorkersStatement(
  processes: string,
  { nowSql }: Pick<SqlSpelling, 'nowSql'>,
  leaseMs: number,
): SqlStatement {
  return {
    sql: `SELECT * FROM ${processes} WHERE heartbeat_at > ${nowSql} - ? ORDER BY started_at, id`,
    parameters: [leaseMs],
  };
}
