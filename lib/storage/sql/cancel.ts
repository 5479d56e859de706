import { EventCancelledError } from '../../errors/worker.error.js';
import type { RawWorkerRow } from '../worker-row.js';
import type { WorkerTables } from '../worker-tables.js';
import { HISTORY_COLUMNS, historyCopiedColumns } from './complete-to-history.js';
import type { AtomicWork, SqlSpelling, SqlStatement } from './statement.js';

/** Which pending row a cancel takes: by id, or by queue and unique key. */
export type CancelRowTarget = { id: string } | { queueName: string; uniqueKey: string };

/**
 * Cancels one pending row: a waiting one (never leased, or its lease expired) is deleted; a running
 * one is soft-deleted and loses its unique key, so no worker claims it again, its worker learns of
 * it at its next heartbeat, and the key is free for a new dispatch. A waiting row that `keep` says
 * so of (keepCompleted) is copied to the history as cancelled before its delete, in the same
 * transaction (a running one is recorded by its worker). Resolves to the row as it was, with
 * `was_running`, or undefined when no such row is pending.
 */
export function cancelRow(
  tables: WorkerTables,
  target: CancelRowTarget,
  { lockRowsClause, nowSql }: Pick<SqlSpelling, 'lockRowsClause' | 'nowSql'>,
  keep?: (queueName: string, eventName: string) => boolean,
): AtomicWork<RawWorkerRow | undefined> {
  return function* () {
    const byId = 'id' in target;
    const { rows } = yield {
      // Whether its lease is live is the database's call, like every lease decision.
      sql:
        `SELECT *, CASE WHEN lease_token IS NOT NULL AND lease_expires_at > ${nowSql} THEN 1 ELSE 0 END ` +
        'AS lease_live ' +
        `FROM ${tables.pending} WHERE ${byId ? 'id = ?' : 'queue_name = ? AND unique_key = ?'} ` +
        `AND deleted_at IS NULL${lockRowsClause}`,
      parameters: byId ? [target.id] : [target.queueName, target.uniqueKey],
    };
    const [found] = rows;
    if (!found) return undefined;
    const { lease_live: leaseLive, ...row } = found;
    const running = Number(leaseLive) === 1;
    if (!running && keep?.(String(row.queue_name), String(row.event_name)))
      yield cancelledHistoryStatement(tables, String(row.id), String(row.event_name), nowSql);
    yield running
      ? {
          sql:
            `UPDATE ${tables.pending} SET deleted_at = ${nowSql}, unique_key = NULL, updated_at = ${nowSql} ` +
            'WHERE id = ?',
          parameters: [row.id],
        }
      : { sql: `DELETE FROM ${tables.pending} WHERE id = ?`, parameters: [row.id] };
    return { ...row, was_running: running };
  };
}

/** The history copy of a waiting row being cancelled: state 'cancelled', why, finished now. */
function cancelledHistoryStatement(tables: WorkerTables, id: string, eventName: string, nowSql: string): SqlStatement {
  return {
    sql:
      `INSERT INTO ${tables.history} (${HISTORY_COLUMNS}) SELECT ${historyCopiedColumns('p')}, 'cancelled', ` +
      `p.progress, NULL, ?, p.created_at, p.available_at, p.started_at, ${nowSql}, NULL, p.locked_by, ${nowSql} ` +
      `FROM ${tables.pending} p WHERE p.id = ?`,
    parameters: [new EventCancelledError(id, eventName).message, id],
  };
}
