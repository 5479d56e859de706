import type { FlowSpelling } from './flow-spelling.js';
import type { AtomicWork, SqlStatement } from './statement.js';

/**
 * Pauses (paused 1) or resumes (paused 0) a queue for every process: its row of the queues table is
 * created when missing, then set, in one transaction, so the flag is committed before this resolves
 * and every claim that starts afterwards sees it. Times are the database's.
 */
export function setQueuePaused(
  queues: string,
  queueName: string,
  paused: boolean,
  spelling: FlowSpelling,
): AtomicWork<void> {
  return function* () {
    if (paused) {
      // Inserted when missing (a limited queue's first claim may insert it at the same time: the upsert
      // never fails on the key). A queue that has no row is not paused, so resuming needs no row.
      yield {
        sql: spelling.upsertRows(
          queues,
          ['queue_name', 'paused', 'paused_at', 'updated_at'],
          `(?, 0, NULL, ${spelling.nowSql})`,
          ['queue_name'],
          [],
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
