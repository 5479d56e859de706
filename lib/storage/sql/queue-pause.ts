import type { AtomicWork, SqlStatement } from './statement.js';
import type { AddingUpsertSpelling } from './throughput.js';

/** The pieces of a dialect the pause statements use. */
export interface QueuePauseSpelling extends AddingUpsertSpelling {
  readonly nowSql: string;
}

/**
 * Pauses (paused 1) or resumes (paused 0) a queue for every process: its row of the queues table is
 * created when missing, then set, in one transaction, so the flag is committed before this resolves
 * and every claim that starts afterwards sees it. Times are the database's.
 */
export function setQueuePaused(
  queues: string,
  queueName: string,
  paused: boolean,
  spelling: QueuePauseSpelling,
): AtomicWork<void> {
  return function* () {
    if (paused) {
      // "Insert when missing" with the upsert every dialect already spells: on conflict it adds 0 to
      // paused, which leaves the existing row as it was. (A queue that has no row is not paused, so
      // resuming needs no row.)
      yield {
        sql: spelling.addingUpsert(
          queues,
          ['queue_name', 'paused', 'paused_at', 'updated_at'],
          `(?, 0, NULL, ${spelling.nowSql})`,
          ['queue_name'],
          ['paused'],
        ),
        parameters: [queueName],
      };
    }
    // paused_at is assigned first: MySQL/MariaDB evaluate SET left to right with the new values, and
    // the time of the first pause is kept when a paused queue is paused again.
    const pausedAt = paused ? `CASE WHEN paused = 1 THEN paused_at ELSE ${spelling.nowSql} END` : 'NULL';
    yield {
      sql:
        `UPDATE ${queues} SET paused_at = ${pausedAt}, paused = ?, updated_at = ${spelling.nowSql} ` +
        'WHERE queue_name = ?',
      parameters: [paused ? 1 : 0, queueName],
    };
  };
}

/** Whether one queue is paused: a row with paused 1 (no row: never paused). */
export function queuePausedStatement(queues: string, queueName: string): SqlStatement {
  return { sql: `SELECT paused, paused_at FROM ${queues} WHERE queue_name = ?`, parameters: [queueName] };
}

/** Every paused queue of the database, by name. */
export function pausedQueuesStatement(queues: string): SqlStatement {
  return {
    sql: `SELECT queue_name, paused_at FROM ${queues} WHERE paused = 1 ORDER BY queue_name`,
    parameters: [],
  };
}

/**
 * PostgreSQL's wake-up of the workers listening on `channel` for `queueName` (see postgres-wakeups):
 * run where StorageCapabilities.canListen, after the resume committed.
 */
export function wakeQueueStatement(channel: string, queueName: string): SqlStatement {
  return { sql: 'SELECT pg_notify(?, ?) AS woke', parameters: [channel, queueName] };
}
