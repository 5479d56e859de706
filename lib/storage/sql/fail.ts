import type { FailedMoveOutcome } from '../../interfaces/worker-repository.interface.js';
import type { RawWorkerRow } from '../worker-row.js';
import type { WorkerTables } from '../worker-tables.js';
import { type HistoryRow, removeCancelledRows, type RowsTableSpelling } from './complete-to-history.js';
import { multiRowInserts } from './insert.js';
import { byLeaseToken, deleteLeasedRows, type LeasedRow, lockLeasedRows } from './leased-rows.js';
import type { AtomicWork, SqlSpelling } from './statement.js';

/**
 * A failed attempt whose row moves to the failed store: `failedRow` is its copy there ({ column:
 * value }); the job's own columns (its id, due time, start, worker, progress) are added from the
 * locked row, with how long the attempt ran and the progress it reported last (`progress`, else the
 * row's). `history`: where the row is found cancelled, it is kept in the history as this.
 */
export interface FailedRow extends LeasedRow {
  failedRow: Record<string, unknown>;
  durationMs?: number;
  progress?: string | null;
  history?: HistoryRow;
}

/** The pending row's columns a failed copy keeps (see jobColumnsOf). */
const JOB_COLUMNS = ['available_at', 'started_at', 'locked_by', 'progress', 'concurrency_key'] as const;

/**
 * Moves the rows of exhausted attempts to the failed store in one transaction: per lease token, the
 * rows still held are read and locked and deleted together with those cancelled while they ran
 * ('cancelled', copied to the history first where kept); then the failed copies of the held rows
 * ('moved'), with the job's columns read under the lock, are inserted in multi-row INSERTs.
 * A row another worker holds now is not touched ('lease-lost'). If any statement fails nothing
 * changes: a row is never in both tables, nor in neither.
 */
export function moveLeasedRowsToFailed(
  tables: WorkerTables,
  rows: FailedRow[],
  escape: (name: string) => string,
  spelling: Pick<SqlSpelling, 'maxParameters' | 'lockRowsClause' | 'nowSql'> & RowsTableSpelling,
): AtomicWork<Map<string, FailedMoveOutcome>> {
  return function* () {
    const outcomes = new Map<string, FailedMoveOutcome>();
    const byId = new Map(rows.map((row) => [row.id, row]));
    const read = new Map<string, RawWorkerRow>();
    for (const [leaseToken, ids] of byLeaseToken(rows)) {
      const locked = yield* lockLeasedRows(tables, leaseToken, ids, spelling, JOB_COLUMNS);
      const { held, cancelled } = locked;
      for (const [id, row] of locked.rows) read.set(id, row);
      yield* removeCancelledRows(tables, leaseToken, cancelled, byId, spelling);
      yield* deleteLeasedRows(tables, leaseToken, [...held], spelling.maxParameters);
      for (const id of ids) outcomes.set(id, held.has(id) ? 'moved' : cancelled.has(id) ? 'cancelled' : 'lease-lost');
    }
    const moved = rows
      .filter((row) => outcomes.get(row.id) === 'moved')
      .map((row) => ({ ...row.failedRow, ...jobColumnsOf(row, read.get(row.id)) }));
    if (moved.length > 0)
      for (const { statement } of multiRowInserts(tables.failed, moved, escape, spelling.maxParameters))
        yield statement;
    return outcomes;
  };
}

/**
 * The job's columns of a failed copy: the pending id, due time, start and worker, duration, progress
 * and concurrency key.
 */
function jobColumnsOf(row: FailedRow, locked: RawWorkerRow | undefined): Record<string, unknown> {
  const or = (value: unknown): unknown => (value === undefined ? null : value);
  return {
    job_id: row.id,
    available_at: or(locked?.available_at),
    started_at: or(locked?.started_at),
    worker_id: or(locked?.locked_by),
    duration_ms: row.durationMs === undefined ? null : Math.max(0, Math.round(row.durationMs)),
    progress: row.progress ?? or(locked?.progress),
    concurrency_key: or(locked?.concurrency_key),
  };
}
