import type { SqlStatement } from './statement.js';

/** A worker process's row, removed when it stops gracefully. */
export function deleteWorkerProcessStatement(processes: string, id: string): SqlStatement {
  return { sql: `DELETE FROM ${processes} WHERE id = ?`, parameters: [id] };
}
