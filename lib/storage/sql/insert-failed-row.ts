import type { WorkerDialect } from '../dialects/worker-dialect.js';
import type { AtomicWork } from './statement.js';
import { insertRow } from './insert.js';

/**
 * INSERT of one failed row ({ column: value }) through the model API, resolving to its new id: from
 * RETURNING where the dialect returns ids as rows (PostgreSQL, SQLite), else from the insert id
 * (MySQL/MariaDB). Plain RETURNING, not the dialect's pendingInsert(): a failed row wakes no worker.
 */
export function insertFailedRow(
  failed: string,
  row: Record<string, unknown>,
  escape: (name: string) => string,
  { capabilities }: Pick<WorkerDialect, 'capabilities'>,
): AtomicWork<string | undefined> {
  const { sql, parameters } = insertRow(failed, row, escape);
  const returnsIds = capabilities.returnsInsertedIds;
  return function* () {
    const result = yield { sql: returnsIds ? `${sql} RETURNING id` : sql, parameters };
    const id = returnsIds ? result.rows[0]?.id : result.insertId;
    return id === undefined || id === null ? undefined : String(id);
  };
}
