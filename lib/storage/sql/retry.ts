import type { RetryOutcome } from '../../interfaces/worker-repository.interface.js';
import type { WorkerTables } from '../worker-tables.js';
import { byLeaseToken, integerLiteral, type LeasedRow, lockLeasedRows } from './leased-rows.js';
import { type HistoryRow, removeCancelledRows, type RowsTableSpelling } from './complete-to-history.js';
import { type AtomicWork, chunked, type SqlSpelling, type SqlStatement } from './statement.js';

/**
 * A failed attempt to record as a retry: the row's last error, its attempts in force and when it is
 * due again (epoch ms). A snoozed attempt (`snoozed`) is put back the same way, but keeps its last
 * error and does not count (attempts - 1). `history`: where the row is found cancelled, it is kept
 * in the history as this.
 */
export interface RetriedRow extends LeasedRow {
  error: string;
  retries: number;
  availableAt: number;
  snoozed?: boolean;
  history?: HistoryRow;
}

/**
 * Records failed attempts as retries in one transaction: per lease token, the rows still held are
 * read and locked, then updated by one UPDATE (each row its own error, due time and retries through
 * CASE, a snoozed row its attempt taken back; lease columns cleared); rows cancelled while they ran
 * are deleted ('cancelled', copied to the history first where kept), rows another worker holds now
 * are not touched ('lease-lost').
 */
export function retryLeasedRows(
  tables: WorkerTables,
  rows: RetriedRow[],
  spelling: Pick<SqlSpelling, 'maxParameters' | 'lockRowsClause' | 'nowSql'> & RowsTableSpelling,
): AtomicWork<Map<string, RetryOutcome>> {
  return function* () {
    const byId = new Map(rows.map((row) => [row.id, row]));
    const outcomes = new Map<string, RetryOutcome>();
    for (const [leaseToken, ids] of byLeaseToken(rows)) {
      const { held, cancelled } = yield* lockLeasedRows(tables, leaseToken, ids, spelling);
      for (const chunk of chunked([...held], Math.min(RETRIES_PER_UPDATE, spelling.maxParameters - 2))) {
        yield retryStatement(
          tables,
          leaseToken,
          chunk.map((id) => byId.get(id)!),
          spelling.nowSql,
        );
      }
      yield* removeCancelledRows(tables, leaseToken, cancelled, byId, spelling);
      for (const id of ids) outcomes.set(id, held.has(id) ? 'retried' : cancelled.has(id) ? 'cancelled' : 'lease-lost');
    }
    return outcomes;
  };
}

/**
 * Rows one retry UPDATE takes at most: each row looks its values up in CASE lists as long as the
 * statement's rows, so the work grows with the square of the rows (one bind parameter each besides).
 */
const RETRIES_PER_UPDATE = 500;

/**
 * One UPDATE for many retried rows. The ids, due times and retries are our own integers, inlined as
 * checked literals: a bind parameter in a THEN branch has no column type to take on PostgreSQL
 * (it would be text, which the bigint and int columns refuse). Error texts stay bind parameters.
 */
function retryStatement(tables: WorkerTables, leaseToken: string, rows: RetriedRow[], nowSql: string): SqlStatement {
  const ids = rows.map((row) => integerLiteral(row.id, 'row id'));
  const cases = (column: string, value: (row: RetriedRow, index: number) => string): string =>
    `${column} = CASE id ${rows.map((row, index) => `WHEN ${ids[index]} THEN ${value(row, index)}`).join(' ')} ` +
    `ELSE ${column} END`;
  const failed = rows.filter((row) => !row.snoozed);
  const snoozed = rows.filter((row) => row.snoozed);
  // A snoozed row keeps its error (no parameter); only failed rows carry one.
  const errorCase =
    failed.length === 0
      ? ''
      : `error = CASE id ${failed.map((row) => `WHEN ${integerLiteral(row.id, 'row id')} THEN ?`).join(' ')} ` +
        'ELSE error END, ';
  const attemptsCase =
    snoozed.length === 0
      ? ''
      : `attempts = CASE WHEN id IN (${snoozed.map((row) => integerLiteral(row.id, 'row id')).join(', ')}) ` +
        'THEN attempts - 1 ELSE attempts END, ';
  return {
    sql:
      `UPDATE ${tables.pending} SET ${errorCase}${attemptsCase}` +
      `${cases('available_at', (row) => integerLiteral(row.availableAt, 'availableAt'))}, ` +
      `${cases('retries', (row) => integerLiteral(row.retries, 'retries'))}, ` +
      `locked_by = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = ${nowSql} ` +
      `WHERE lease_token = ? AND id IN (${ids.join(', ')}) AND deleted_at IS NULL`,
    parameters: [...failed.map((row) => row.error), leaseToken],
  };
}
