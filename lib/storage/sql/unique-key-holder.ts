import type { SqlStatement } from './statement.js';

/** The id of the pending row holding a queue's unique key (a plain read, no lock). */
export function uniqueKeyHolder(pending: string, queueName: string, uniqueKey: string | null): SqlStatement {
  return {
    sql: `SELECT id FROM ${pending} WHERE queue_name = ? AND unique_key = ?`,
    parameters: [queueName, uniqueKey],
  };
}
