import type { WorkerProcessState } from '../../interfaces/worker-repository.interface.js';
import type { SqlSpelling, SqlStatement } from './statement.js';

/**
 * A worker process's row, the first time it beats or after its row vanished (pruned while the
 * process was paused): started_at is the one it registered with, heartbeat_at the database's now.
 */
export function insertWorkerProcessStatement(
  processes: string,
  state: WorkerProcessState,
  { nowSql }: Pick<SqlSpelling, 'nowSql'>,
): SqlStatement {
  return {
    sql:
      `INSERT INTO ${processes} (id, host, pid, queues, concurrency, running, started_at, heartbeat_at) ` +
      `VALUES (?, ?, ?, ?, ?, ?, ?, ${nowSql})`,
    parameters: [
      state.id,
      state.host,
      state.pid,
      JSON.stringify(state.queues),
      state.concurrency,
      state.running,
      state.startedAt,
    ],
  };
}
