import type { WorkerProcessState } from '../../interfaces/worker-repository.interface.js';
import type { SqlSpelling, SqlStatement } from './statement.js';

/**
 * A worker process's heartbeat: its row brought up to date by primary key, heartbeat_at on the
 * database's clock (so the pruner and listWorkers() compare it with the database's now, whatever
 * the worker's own clock says). Zero rows changed means the row is not there (see the insert).
 */
export function refreshWorkerProcessStatement(
  processes: string,
  state: WorkerProcessState,
  { nowSql }: Pick<SqlSpelling, 'nowSql'>,
): SqlStatement {
  return {
    sql: `UPDATE ${processes} SET queues = ?, concurrency = ?, running = ?, heartbeat_at = ${nowSql} ` + `WHERE id = ?`,
    parameters: [JSON.stringify(state.queues), state.concurrency, state.running, state.id],
  };
}
