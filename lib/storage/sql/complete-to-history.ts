import type { HistoryOutcome } from '../../interfaces/worker-repository.interface.js';
import type { WorkerTables } from '../worker-tables.js';
import { byLeaseToken, deleteLeasedRows, integerLiteral, type LeasedRow, lockLeasedRows } from './leased-rows.js';
import { type AtomicWork, chunked, type SqlSpelling, type SqlStatement, type StatementResult } from './statement.js';

/**
 * A finished event to keep in the history: how it ended as its worker saw it, its result (JSON text),
 * why the result was not kept or why it was cancelled, how long it ran, and the progress it reported
 * last (null: the row's own progress, as the heartbeat wrote it, is kept).
 */
export interface HistoryRow extends LeasedRow {
  state: 'completed' | 'cancelled';
  result: string | null;
  error: string | null;
  durationMs: number;
  progress: string | null;
  /** The error text of a row found cancelled while it ran (its worker did not know yet). */
  cancelledError: string;
}

/**
 * Moves finished rows to the history in one transaction: per lease token, the rows still held (and
 * those cancelled while they ran) are locked, copied by one INSERT … SELECT per chunk, with each
 * row's own values through CASE lists, and deleted by the fenced DELETE. A row another worker holds
 * now is neither copied nor deleted ('lease-lost'). The copy and the delete commit together: a row
 * is never in both tables, nor in neither, and the history's primary key (the pending id) refuses a
 * second copy.
 */
export function completeLeasedRowsToHistory(
  tables: WorkerTables,
  rows: HistoryRow[],
  spelling: Pick<SqlSpelling, 'maxParameters' | 'lockRowsClause' | 'nowSql'>,
): AtomicWork<Map<string, HistoryOutcome>> {
  return function* () {
    const byId = new Map(rows.map((row) => [row.id, row]));
    const outcomes = new Map<string, HistoryOutcome>();
    for (const [leaseToken, ids] of byLeaseToken(rows)) {
      const { held, cancelled } = yield* lockLeasedRows(tables, leaseToken, ids, spelling);
      const kept = ids.filter((id) => held.has(id) || cancelled.has(id));
      const copies = kept.map((id): HistoryRow => {
        const row = byId.get(id)!;
        // Cancelled while it ran, unknown to its worker: recorded as cancelled, with why.
        return cancelled.has(id) && row.state !== 'cancelled'
          ? { ...row, state: 'cancelled', error: row.cancelledError }
          : row;
      });
      yield* insertHistoryRows(tables, leaseToken, copies, spelling);
      yield* deleteLeasedRows(tables, leaseToken, kept, spelling.maxParameters);
      for (const id of ids) {
        const row = byId.get(id)!;
        outcomes.set(id, cancelled.has(id) ? 'cancelled' : held.has(id) ? row.state : 'lease-lost');
      }
    }
    return outcomes;
  };
}

/**
 * The history copies of locked rows of one lease (see completeLeasedRowsToHistory), for the
 * transactions that remove rows for other reasons too (a retry or failed move that finds its row
 * cancelled).
 */
export function* insertHistoryRows(
  tables: WorkerTables,
  leaseToken: string,
  rows: HistoryRow[],
  spelling: Pick<SqlSpelling, 'maxParameters' | 'nowSql'>,
): Generator<SqlStatement, void, StatementResult> {
  // Three text parameters per row (progress, result, error) plus the lease token.
  const perStatement = Math.min(ROWS_PER_INSERT, Math.floor((spelling.maxParameters - 1) / 3));
  for (const chunk of chunked(rows, perStatement)) yield historyInsertStatement(tables, leaseToken, chunk, spelling);
}

/**
 * Deletes the rows of one lease found cancelled while they ran, copying the kept ones (`history`) to
 * the history first, in the caller's transaction: what a retry or a failed move does with them.
 */
export function* removeCancelledRows(
  tables: WorkerTables,
  leaseToken: string,
  cancelled: Set<string>,
  byId: Map<string, { history?: HistoryRow }>,
  spelling: Pick<SqlSpelling, 'maxParameters' | 'nowSql'>,
): Generator<SqlStatement, void, StatementResult> {
  if (cancelled.size === 0) return;
  const kept: HistoryRow[] = [];
  for (const id of cancelled) {
    const history = byId.get(id)?.history;
    if (history) kept.push({ ...history, state: 'cancelled', error: history.error ?? history.cancelledError });
  }
  if (kept.length > 0) yield* insertHistoryRows(tables, leaseToken, kept, spelling);
  yield* deleteLeasedRows(tables, leaseToken, [...cancelled], spelling.maxParameters);
}

/**
 * Rows one history INSERT takes at most: each looks its values up in CASE lists as long as the
 * statement's rows (as the retry UPDATE does), so the work grows with the square of the rows.
 */
const ROWS_PER_INSERT = 500;

/**
 * INSERT INTO history … SELECT … FROM pending, fenced by the lease token. Ids, durations and states
 * are our own values, inlined as checked literals (a bind parameter in a THEN branch has no column
 * type to take on PostgreSQL); the texts are bind parameters. finished_at (and updated_at) is the
 * database's now, and worker_id the row's locked_by.
 */
function historyInsertStatement(
  tables: WorkerTables,
  leaseToken: string,
  rows: HistoryRow[],
  { nowSql }: Pick<SqlSpelling, 'nowSql'>,
): SqlStatement {
  const ids = rows.map((row) => integerLiteral(row.id, 'row id'));
  const durations = (row: HistoryRow): string => integerLiteral(Math.max(0, Math.round(row.durationMs)), 'durationMs');
  const cases = (value: (row: HistoryRow) => string): string =>
    `CASE id ${rows.map((row, index) => `WHEN ${ids[index]} THEN ${value(row)}`).join(' ')} END`;
  return {
    sql:
      `INSERT INTO ${tables.history} (id, queue_name, event_name, payload, attempts, retries, priority, ` +
      'unique_key, state, progress, result, error, created_at, available_at, started_at, finished_at, ' +
      'duration_ms, worker_id, updated_at) ' +
      'SELECT id, queue_name, event_name, payload, attempts, retries, priority, unique_key, ' +
      `${cases((row) => (row.state === 'cancelled' ? "'cancelled'" : "'completed'"))}, ` +
      `COALESCE(${cases(() => '?')}, progress), ${cases(() => '?')}, ${cases(() => '?')}, ` +
      `created_at, available_at, started_at, ${nowSql}, ` +
      `${cases(durations)}, locked_by, ${nowSql} ` +
      `FROM ${tables.pending} WHERE lease_token = ? AND id IN (${ids.join(', ')})`,
    parameters: [
      ...rows.map((row) => row.progress),
      ...rows.map((row) => row.result),
      ...rows.map((row) => row.error),
      leaseToken,
    ],
  };
}
